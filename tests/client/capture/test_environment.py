"""``code``, ``env`` and ``packages`` sections, settings, and secret redaction."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.client.capture import CaptureSettings, collect
from mltrail.client.capture.environment import (
    ci_name,
    container_hint,
    env_info,
    packages,
    slurm_info,
)
from mltrail.client.capture.redact import redact_argv, strip_credentials
from mltrail.errors import ConfigurationError

ONLY_ENV = CaptureSettings(git=False, packages=False, hardware=False)


def test_secrets_in_env_are_redacted_even_when_allow_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLTRAIL_API_KEY", "k-live-123")
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", "postgresql://ml:hunter2@db:5432/runs")
    monkeypatch.setenv("MLTRAIL_PROJECT", "mnist")
    monkeypatch.setenv("TEAM_DB_Password", "pw-456")
    monkeypatch.setenv("TEAM_ACCESS_TOKEN", "tok-789")
    monkeypatch.setenv("TEAM_GCP_CREDENTIALS", "/secret/creds.json")
    monkeypatch.setenv("TEAM_DATA_ROOT", "/data")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-000")  # not allow-listed at all
    settings = CaptureSettings(git=False, packages=False, hardware=False, env_allow=("TEAM_*",))
    info = collect(settings)
    variables = info["env"]["variables"]
    assert variables["MLTRAIL_API_KEY"] == "***"
    assert variables["MLTRAIL_TRACKING_URI"] == "postgresql://db:5432/runs"
    assert variables["MLTRAIL_PROJECT"] == "mnist"
    assert variables["TEAM_DB_Password"] == "***"
    assert variables["TEAM_ACCESS_TOKEN"] == "***"
    assert variables["TEAM_GCP_CREDENTIALS"] == "***"
    assert variables["TEAM_DATA_ROOT"] == "/data"
    assert variables["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "AWS_SECRET_ACCESS_KEY" not in variables and "HOME" not in variables
    dumped = json.dumps(info)
    for secret in ("k-live-123", "hunter2", "pw-456", "tok-789", "aws-000", "creds.json"):
        assert secret not in dumped


def test_strip_credentials() -> None:
    assert strip_credentials("https://user:tok@host/x") == "https://host/x"
    assert strip_credentials("https://ghp_abc@github.com/o/r") == "https://github.com/o/r"
    assert strip_credentials("postgresql://u:p@ss@h:5432/db") == "postgresql://h:5432/db"
    assert strip_credentials("s3://bucket/k?X-Amz-Signature=abc&v=1") == (
        "s3://bucket/k?X-Amz-Signature=***&v=1"
    )
    assert strip_credentials("/plain/path:with@signs") == "/plain/path:with@signs"


def test_redact_argv() -> None:
    argv = ["train.py", "--api-key", "s1", "--hf-token=s2", "db.password=s3", "--lr", "0.1"]
    argv += ["--key-dim", "64", "--max-tokens", "512", "--url", "https://u:s4@h/x"]
    assert redact_argv(argv) == [
        "train.py", "--api-key", "***", "--hf-token=***", "db.password=***", "--lr", "0.1",
        "--key-dim", "64", "--max-tokens", "512", "--url", "https://h/x",
    ]  # fmt: skip


def test_code_section_of_a_real_script(make_repo: Callable[..., Path]) -> None:
    script = textwrap.dedent(
        """
        import json
        from mltrail.client.capture import CaptureSettings, collect
        info = collect(CaptureSettings(env=False, packages=False, hardware=False))
        print(json.dumps(info["code"]))
        """
    )
    repo = make_repo({"src/train.py": script})
    argv = ["src/train.py", "--lr", "0.1", "--api-key", "s3cr3t", "--name", "a b"]
    out = subprocess.run(
        [sys.executable, *argv], cwd=repo, check=True, capture_output=True, text=True
    ).stdout
    assert "s3cr3t" not in out
    code = json.loads(out)
    assert code["program"] == "src/train.py"
    assert code["module"] is None
    assert code["args"] == ["src/train.py", "--lr", "0.1", "--api-key", "***", "--name", "a b"]
    assert code["command"].endswith("src/train.py --lr 0.1 --api-key '***' --name 'a b'")
    assert code["python_executable"] == sys.executable
    assert code["cwd"] == str(repo)


def test_program_outside_a_repository_is_absolute(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "import json\nfrom mltrail.client.capture.environment import code_info\n"
        "print(json.dumps(code_info(None)))\n"
    )
    out = subprocess.run(
        [sys.executable, "run.py"], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout)["program"] == str(script.resolve())


def test_env_section() -> None:
    env = collect(ONLY_ENV)["env"]
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["implementation"] == sys.implementation.name.replace("cpython", "CPython")
    assert env["os"] and env["platform"].startswith(env["os"]) and env["hostname"]
    assert set(env) >= {"user", "container", "slurm", "ci", "variables"}


def test_slurm_ci_and_container_hints(tmp_path: Path) -> None:
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3", "SLURM_CPUS_ON_NODE": "8"}
    assert slurm_info(slurm) == {"SLURM_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3"}
    assert slurm_info({}) is None
    assert ci_name({"GITHUB_ACTIONS": "true", "CI": "true"}) == "github-actions"
    assert ci_name({"CI": "1"}) == "unknown"
    assert ci_name({"CI": "false"}) is None
    root = tmp_path / "root"
    (root / "proc" / "1").mkdir(parents=True)
    (root / "proc" / "1" / "cgroup").write_text("0::/\n")
    assert container_hint({}, root) is None
    assert container_hint({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, root) == "kubernetes"
    assert container_hint({"APPTAINER_CONTAINER": "/x.sif"}, root) == "apptainer"
    (root / "proc" / "1" / "cgroup").write_text("0::/system.slice/docker-ab12.scope\n")
    assert container_hint({}, root) == "docker"
    (root / "run").mkdir()
    (root / "run" / ".containerenv").touch()
    assert container_hint({}, root) == "podman"


def test_env_info_reads_the_given_environment() -> None:
    env = env_info(("SLURM_*",), {"SLURM_JOB_ID": "7", "GITLAB_CI": "true", "X": "y"})
    assert env["slurm"] == {"SLURM_JOB_ID": "7"}
    assert env["ci"] == "gitlab"
    assert env["variables"] == {"SLURM_JOB_ID": "7"}


def test_packages_match_importlib_metadata() -> None:
    expected: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        expected.setdefault(dist.metadata["Name"], dist.version)
    found = packages()
    assert found == expected
    assert list(found) == sorted(found, key=str.lower)
    assert found["psutil"] == importlib.metadata.version("psutil")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CaptureSettings.from_env() == CaptureSettings()
    monkeypatch.setenv("MLTRAIL_CAPTURE_GIT", "0")
    monkeypatch.setenv("MLTRAIL_CAPTURE_DIFF", "false")
    monkeypatch.setenv("MLTRAIL_CAPTURE_ENV", "off")
    monkeypatch.setenv("MLTRAIL_CAPTURE_PACKAGES", "no")
    monkeypatch.setenv("MLTRAIL_CAPTURE_HARDWARE", "0")
    monkeypatch.setenv("MLTRAIL_CAPTURE_UNTRACKED_CONTENT", "1")
    monkeypatch.setenv("MLTRAIL_CAPTURE_DIFF_MAX_BYTES", "2_000")
    monkeypatch.setenv("MLTRAIL_ENV_ALLOW", " HF_HOME, WANDB_* ,,")
    assert CaptureSettings.from_env() == CaptureSettings(
        git=False, diff=False, env=False, packages=False, hardware=False,
        untracked_content=True, max_diff_bytes=2000, env_allow=("HF_HOME", "WANDB_*"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("var", "value"),
    [("MLTRAIL_CAPTURE_GIT", "maybe"), ("MLTRAIL_CAPTURE_DIFF_MAX_BYTES", "-1"),
     ("MLTRAIL_CAPTURE_DIFF_MAX_BYTES", "1MB")],
)  # fmt: skip
def test_bad_settings_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError, match=var):
        CaptureSettings.from_env()


def test_collect_is_json_and_sections_switch_off() -> None:
    info = collect(CaptureSettings())
    assert json.loads(json.dumps(info)) == info
    assert list(info) == ["code", "env", "packages", "hardware"]  # no git here
    nothing = CaptureSettings(git=False, env=False, packages=False, hardware=False)
    assert list(collect(nothing)) == ["code"]


def test_importing_capture_stays_light() -> None:
    code = (
        "import sys, mltrail.client.capture, mltrail.client.capture.system, "
        "mltrail.client.capture.seeds\n"
        "print(sorted(m for m in ('psutil', 'pynvml', 'numpy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
