"""What ran and where: the entry point and command line, the interpreter, the host,
scheduler and CI hints, allow-listed environment variables, installed packages.

Nothing here starts a process: ``platform.platform()`` and ``platform.processor()``
are avoided because they may run ``uname -p``.

>>> code_info(None)["python_executable"] == sys.executable
True
"""

from __future__ import annotations

import getpass
import os
import platform
import shlex
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mltrail.client.capture.redact import redact_argv, redact_env

__all__ = [
    "DEFAULT_ENV_ALLOW",
    "ci_name",
    "code_info",
    "container_hint",
    "env_info",
    "packages",
    "slurm_info",
]

DEFAULT_ENV_ALLOW: tuple[str, ...] = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "PYTHONHASHSEED",
    "LANG",
    "LC_ALL",
    "TZ",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "CONDA_PREFIX",
    "SLURM_*",
    "MLTRAIL_*",
)
_SLURM_KEYS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_NODELIST",
    "SLURM_NNODES",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_CLUSTER_NAME",
)
_CI_VARS = (  # first match wins; "CI" alone means some CI we do not know by name
    ("GITHUB_ACTIONS", "github-actions"),
    ("GITLAB_CI", "gitlab"),
    ("CIRCLECI", "circleci"),
    ("BUILDKITE", "buildkite"),
    ("TF_BUILD", "azure-pipelines"),
    ("JENKINS_URL", "jenkins"),
    ("TRAVIS", "travis"),
    ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("TEAMCITY_VERSION", "teamcity"),
    ("CODEBUILD_BUILD_ID", "aws-codebuild"),
    ("DRONE", "drone"),
    ("APPVEYOR", "appveyor"),
    ("CI", "unknown"),
)


def code_info(root: Path | None) -> dict[str, Any]:
    """Entry point (relative to the git ``root`` when inside it) and command line."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = getattr(main, "__file__", None)
    if program is None and sys.argv and sys.argv[0] not in ("", "-c", "-"):
        program = sys.argv[0]
    if program is not None:
        path = Path(os.path.abspath(program))
        program = str(path)
        if root is not None and path.is_relative_to(root):
            program = path.relative_to(root).as_posix()
    return {
        "program": program,
        "module": getattr(spec, "name", None),
        "args": redact_argv(sys.argv),
        "command": shlex.join(redact_argv(getattr(sys, "orig_argv", sys.argv))),
        "cwd": os.getcwd(),
        "python_executable": sys.executable,
    }


def env_info(
    allow: Iterable[str] = DEFAULT_ENV_ALLOW, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Interpreter, OS, host, container/SLURM/CI hints, allow-listed variables."""
    env = os.environ if environ is None else environ
    uname = platform.uname()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": uname.system,
        "os_release": uname.release,
        "distribution": _distribution(),
        "platform": f"{uname.system}-{uname.release}-{uname.machine}",
        "machine": uname.machine,
        "hostname": socket.gethostname(),
        "user": _user(),
        "container": container_hint(env),
        "slurm": slurm_info(env),
        "ci": ci_name(env),
        "variables": redact_env(env, allow),
    }


def _distribution() -> str | None:
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]}"
    if sys.platform == "win32":
        return f"Windows {platform.version()}"
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return None
    return release.get("PRETTY_NAME") or release.get("NAME")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def container_hint(environ: Mapping[str, str], root: Path = Path("/")) -> str | None:
    """kubernetes, apptainer, podman, docker, another runtime's name, or None."""
    if "KUBERNETES_SERVICE_HOST" in environ:
        return "kubernetes"
    if "APPTAINER_CONTAINER" in environ or "SINGULARITY_CONTAINER" in environ:
        return "apptainer"
    if (root / "run" / ".containerenv").exists():
        return "podman"
    if (root / ".dockerenv").exists():
        return "docker"
    if environ.get("container"):  # set by systemd-nspawn, lxc, podman
        return environ["container"]
    try:
        cgroup = (root / "proc" / "1" / "cgroup").read_text()
    except OSError:
        return None
    for marker, name in (("kubepods", "kubernetes"), ("docker", "docker"), ("lxc", "lxc")):
        if marker in cgroup:
            return name
    return None


def slurm_info(environ: Mapping[str, str]) -> dict[str, str] | None:
    """Job, array and step identifiers when running under SLURM."""
    found = {k: environ[k] for k in _SLURM_KEYS if k in environ}
    return found or None


def ci_name(environ: Mapping[str, str]) -> str | None:
    """Name of the CI service this runs on, when detectable."""
    for var, name in _CI_VARS:
        if environ.get(var, "").lower() not in ("", "0", "false"):
            return name
    return None


def packages() -> dict[str, str]:
    """``{name: version}`` of every installed distribution, sorted by name.

    Discovery is ``importlib.metadata.distributions()``; only the two header lines are
    read from each ``METADATA`` file (parsing the whole file as e-mail costs ~1 ms a
    package). Where a distribution is installed twice, the first on ``sys.path`` wins,
    as for ``import``.
    """
    import importlib.metadata

    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
        if not text:
            continue
        name, version = _name_version(text)
        if name and version and name not in found:
            found[name] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _name_version(text: str) -> tuple[str | None, str | None]:
    name = version = None
    for line in text.splitlines():
        if not line:  # end of the headers
            break
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        if name and version:
            break
    return name, version
