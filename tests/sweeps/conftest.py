"""Fixtures for sweeps: fast runs, a sweep factory, helper agent processes, a local Ray.

Runs in these tests capture no git/environment/hardware and sample no system metrics
(both slow, both tested elsewhere); agents renew their trials' leases every second
(``MLTRAIL_SWEEP_LEASE=6``) unless a test shortens it to see a crash reaped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mltrail.entities import Trial
from mltrail.sweeps import list_trials, sweep

AGENT_SCRIPT = Path(__file__).with_name("agent_script.py")


@pytest.fixture(autouse=True)
def _fast_runs(_isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    for section in ("GIT", "DIFF", "ENV", "PACKAGES", "HARDWARE"):
        monkeypatch.setenv(f"MLTRAIL_CAPTURE_{section}", "0")
    monkeypatch.setenv("MLTRAIL_SWEEP_LEASE", "6")


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    """A SQLite store, for tests whose subject is not the backend."""
    return f"sqlite:///{tmp_path / 'store' / 'mltrail.db'}"


def make_sweep(uri: str, config: dict[str, Any], **kwargs: Any) -> str:
    """A sweep in project ``sw`` of the store at ``uri``."""
    kwargs.setdefault("project", "sw")
    return sweep(config, uri=uri, **kwargs)


def start_agent(
    uri: str, sweep_id: str, *, behaviour: str = "quick", count: int = 0, **env: str
) -> subprocess.Popen[bytes]:
    """``agent_script.py`` (a real agent process) on the sweep; see its docstring."""
    full = {**os.environ, "MLTRAIL_TRACKING_URI": uri, **env}
    argv = [sys.executable, str(AGENT_SCRIPT), sweep_id, behaviour, str(count)]
    return subprocess.Popen(argv, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def start_together(uri: str, sweep_id: str, n: int, gate: Path) -> list[subprocess.Popen[bytes]]:
    """``n`` agent processes that start claiming at the same moment (once all are up)."""
    gate.mkdir()
    procs = [start_agent(uri, sweep_id, SWEEP_TEST_GATE=str(gate)) for _ in range(n)]
    deadline = time.monotonic() + 60
    while len(list(gate.glob("ready-*"))) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    (gate / "go").touch()
    return procs


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def wait_for(
    uri: str, sweep_id: str, check: Callable[[list[Trial]], bool], timeout: float = 60
) -> list[Trial]:
    deadline = time.monotonic() + timeout
    while True:
        trials = list_trials(sweep_id, uri=uri)
        if check(trials):
            return trials
        assert time.monotonic() < deadline, f"timed out; trials: {trials}"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One local Ray for the session (tests that use it share an xdist group)."""
    import tempfile

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: socket paths <= 107 bytes
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024**2,
        _temp_dir=temp,
        log_to_driver=False,
    )
    yield
    ray.shutdown()
