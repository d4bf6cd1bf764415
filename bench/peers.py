"""One virtualenv per peer tracker under bench/.venvs/<peer>, made with uv, reused when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What each peer venv installs. MLflow pinned to 3.x (SQLite backend needs SQLAlchemy,
# which it depends on); W&B and Aim unpinned.
PACKAGES = {
    "mlflow": ["mlflow>=3,<4"],
    "wandb": ["wandb"],
    "aim": ["aim"],
    "dvc": ["dvc>=3,<4"],
}
STAMP = ".bench-installed"
INSTALL_TIMEOUT_S = 600


@dataclass
class PeerEnv:
    peer: str
    python: Path | None
    reused: bool = False
    seconds: float = 0.0
    error: str | None = None


def _uv() -> list[str]:
    """The uv command: ``python3 -m uv`` as in the Makefile, else a uv on PATH."""
    for py in (shutil.which("python3"), sys.executable):
        if py and _ok([py, "-m", "uv", "--version"]):
            return [py, "-m", "uv"]
    uv = shutil.which("uv")
    if uv:
        return [uv]
    raise RuntimeError("uv not found: python3 -m pip install uv")


def _ok(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _base_python() -> str:
    """The interpreter the project's venv is built on, so peers run the same Python."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(Path(base).resolve())


def ensure_peer(peer: str, root: Path, log: Callable[[str], None]) -> PeerEnv:
    """Create (or reuse) bench/.venvs/<peer> with the peer installed; never raises."""
    venv = root / peer
    python = venv / "bin" / "python"
    # Bytecode is compiled at install (as pip does by default): with PYTHONDONTWRITEBYTECODE
    # set on these machines, a peer would otherwise recompile itself in every process.
    spec = " ".join(PACKAGES[peer]) + " +bytecode"
    stamp = venv / STAMP
    if python.exists() and stamp.exists() and stamp.read_text().strip() == spec:
        return PeerEnv(peer, python, reused=True)
    start = time.perf_counter()
    env = dict(os.environ, UV_LINK_MODE="copy", UV_PYTHON_DOWNLOADS="never")
    try:
        uv = _uv()
        log(f"installing {peer} into {venv} ({spec}) ...")
        steps = [
            [*uv, "venv", "-q", "--allow-existing", "--python", _base_python(), str(venv)],
            [*uv, "pip", "install", "-q", "--python", str(python), *PACKAGES[peer]],
            [str(python), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
        ]
        for cmd in steps:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT_S
            )
            if proc.returncode != 0 and "compileall" not in cmd:  # a few files may not compile
                tail = (proc.stderr or proc.stdout).strip()[-2000:]
                raise RuntimeError(f"{' '.join(cmd[len(uv) :])} failed: {tail}")
        stamp.write_text(spec + "\n")
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return PeerEnv(peer, None, seconds=time.perf_counter() - start, error=str(exc))
    return PeerEnv(peer, python, seconds=time.perf_counter() - start)
