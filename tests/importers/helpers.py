"""Writing a source with the real package, in a subprocess (their clients keep global
state: active runs, URIs, background services)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_python(code: str, *args: str, cwd: Path, **env: str) -> str:
    """Run ``code`` with ``args`` in ``cwd``; returns its stdout, fails with its stderr."""
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def shared_folder(factory: Any, name: str, make: Callable[[Path], str]) -> tuple[Path, str]:
    """A folder written once per test run by ``make(folder)`` (which returns a short text,
    kept beside it), shared by the xdist workers: a source written by a real package costs
    seconds (MLflow's SQLite migrations), and xdist groups do not keep tests together."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = factory.mktemp(name)
        return folder, make(folder)
    root = factory.getbasetemp().parent  # one per test run, shared by its workers
    folder, done = root / name, root / f"{name}.done"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir(exist_ok=True)
            done.write_text(make(folder))
    return folder, done.read_text()
