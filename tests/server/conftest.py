"""A real mltrail server (``mltrail server`` in a subprocess, uvicorn on loopback).

``serve(store_uri, objects=..., auth=..., workers=...)`` starts one and returns its
URL; every server a test starts is stopped at teardown. ``server_url`` is one server
per test on each metadata backend (SQLite, PostgreSQL) with local objects.
A server that does not come up is a test failure, never a skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.objects.conftest import make_s3_store, s3_endpoint

__all__ = ["make_s3_store", "s3_endpoint"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``serve(store_uri, *, objects=None, auth=False, workers=1, env=None) -> url``."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        store_uri: str,
        *,
        objects: str | None = None,
        auth: bool = False,
        workers: int = 1,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> str:
        port = _free_port()
        log = tmp_path / f"server-{port}.log"
        cmd = [sys.executable, "-m", "mltrail", "server", "--store", store_uri,
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
        if objects:
            cmd += ["--objects", objects]
        if auth:
            cmd.append("--auth")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
        full_env.update(env or {})
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
            )
        procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mltrail server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                _stop(proc)
                pytest.fail(f"mltrail server not ready after {timeout} s:\n{log.read_text()}")
            time.sleep(0.05)

    yield start
    for proc, _ in procs:
        _stop(proc)


@pytest.fixture
def server_url(serve: Callable[..., str], store_uri: str, tmp_path: Path) -> str:
    """A server on a fresh store of each backend, objects in a local folder."""
    return serve(store_uri, objects=str(tmp_path / "server-objects"))
