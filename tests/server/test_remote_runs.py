"""Runs logged through a server: ``MLTRAIL_TRACKING_URI=http://...`` for init, the
CLI and sync; a server that dies mid-run; a server down at start; two replicas."""

from __future__ import annotations

import json
import math
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

import mltrail
from mltrail.store import close_all, open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``mltrail server`` on a fixed port that the test can kill and start again."""

    def __init__(self, store_uri: str, objects: Path, log: Path) -> None:
        self.store_uri, self.objects, self.log = store_uri, objects, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
        cmd = [sys.executable, "-m", "mltrail", "server", "--store", self.store_uri,
               "--objects", str(self.objects), "--port", str(self.port)]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"server not ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, in-flight requests are lost."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def restartable(store_uri: str, tmp_path: Path) -> Iterator[Server]:
    server = Server(store_uri, tmp_path / "objects", tmp_path / "server.log")
    server.start()
    yield server
    server.kill()


def _cli(url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
    env.update(MLTRAIL_TRACKING_URI=url, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        capture_output=True, text=True, env=env, timeout=120, cwd=cwd,
    )  # fmt: skip


def _values(url: str, run_id: str, key: str) -> list[float]:
    return [p.value for p in mltrail.Client(url).metric_history(run_id, key)]


def test_server_killed_mid_run_loses_nothing(restartable: Server, tmp_path: Path) -> None:
    url = restartable.url
    # run A: the server comes back before finish(): the writer catches up by itself
    a = mltrail.init(project="crash", uri=url, config={"lr": 0.1})
    # run B: finished while the server is down: `mltrail sync` pushes the rest
    b = mltrail.init(project="crash", uri=url)
    for i in range(500):
        a.log({"x": float(i)})
        b.log({"y": float(i)})
    a.flush()
    b.flush()
    restartable.kill()
    start = time.perf_counter()
    for i in range(500, 3000):
        a.log({"x": float(i)})
        b.log({"y": float(i)})
    assert time.perf_counter() - start < 1.0  # logging never waited for the network
    time.sleep(0.3)  # the writers try, fail and spool
    assert a._writer.error is not None
    b.finish()  # server down: the spool is kept
    assert b._spool.path.exists()
    restartable.start()
    a.finish()
    assert a._writer.caught_up and not a._spool.path.exists()
    assert _values(url, a.id, "x") == [float(i) for i in range(3000)]
    record = mltrail.Client(url).get_run(a.id)
    assert record.status == "finished" and record.metrics["x"].count == 3000
    # B: nothing lost after sync, nothing doubled by syncing twice
    close_all()
    done = _cli(url, "sync", "--json", cwd=Path.cwd())
    assert done.returncode == 0, done.stderr
    pushed = json.loads(done.stdout)["replayed"]
    assert [r["run_id"] for r in pushed] == [b.id]
    assert _values(url, b.id, "y") == [float(i) for i in range(3000)]
    rb = mltrail.Client(url).get_run(b.id)
    assert rb.status == "finished" and rb.metrics["y"].count == 3000
    again = _cli(url, "sync", "--json", cwd=Path.cwd())
    assert json.loads(again.stdout)["replayed"] == []
    assert mltrail.Client(url).get_run(b.id).metrics["y"].count == 3000


def test_server_down_at_start_logs_offline_then_syncs(
    serve: Callable[..., str], store_uri: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    run = mltrail.init(project="off", uri=dead, config={"lr": 0.5}, tags=["t"])
    for i in range(1000):
        run.log({"loss": 1 / (i + 1)})
    run.finish()
    err = capfd.readouterr().err
    assert "cannot reach the mltrail server" in err and "mltrail sync" in err
    assert err.count("cannot reach") == 1  # warned once, then quiet
    url = serve(store_uri, objects=str(tmp_path / "objects"))
    # the spool was written for the dead URL: sync it into the live server by path
    done = _cli(url, "sync", str(Path.cwd() / ".mltrail" / "spool"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["replayed"][0]["points"] >= 1000
    record = mltrail.Client(url).get_run(run.id)
    assert record.project == "off" and record.config == {"lr": 0.5} and record.status == "finished"
    assert record.tags == {"t": ""} and record.metrics["loss"].count == 1000


def test_cli_against_a_server(server_url: str) -> None:
    with mltrail.init(project="cli", uri=server_url, name="first", config={"lr": 0.01}) as run:
        for i in range(10):
            run.log({"acc": i / 10, "loss": math.nan if i == 3 else 1.0})
    listed = _cli(server_url, "runs", "ls", "--project", "cli", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [run.id]
    table = _cli(server_url, "runs", "ls", "--project", "cli", "--where", "metrics.acc > 0.5")
    assert table.returncode == 0 and run.id in table.stdout and "first" in table.stdout
    bad = _cli(server_url, "runs", "ls", "--where", "metrics.acc >> 1")
    assert bad.returncode != 0 and "position" in (bad.stderr + bad.stdout)
    shown = _cli(server_url, "runs", "show", run.id)
    assert shown.returncode == 0 and "lr" in shown.stdout and "acc" in shown.stdout
    projects = _cli(server_url, "projects", "ls", "--json")
    assert projects.returncode == 0, projects.stderr
    assert {p["name"]: p["runs"] for p in json.loads(projects.stdout)} == {"cli": 1}


def test_two_servers_on_one_postgres_store(
    serve: Callable[..., str], pg_url_factory: Callable[..., str], tmp_path: Path
) -> None:
    """Replicas hold no state: alternate requests between two servers on one store."""
    store_uri = pg_url_factory()
    objects = str(tmp_path / "objects")
    one, two = serve(store_uri, objects=objects), serve(store_uri, objects=objects)
    first, second = open_store(one), open_store(two)
    first.create_run(
        run_id="shared", project="rep", name=None, user="u", group=None, job_type=None,
        parent_id=None, notes="", tags={}, metadata={}, started_at=time.time(),
    )  # fmt: skip
    second.log_params("shared", {"lr": 0.3})
    run = mltrail.init(project="rep", uri=one, run_id="shared", resume="must")
    for i in range(100):
        run.log({"m": float(i)})
    run.flush()
    # heartbeat and tags through the other replica while the run writes through the first
    second.set_tags("shared", {"via": "two"})
    run.finish()
    for store in (first, second):
        record = store.get_run("shared")
        assert record.config == {"lr": 0.3} and record.tags == {"via": "two"}
        assert record.metrics["m"].count == 100 and record.status == "finished"
    assert mltrail.Client(two).count_runs("rep", "params.lr = 0.3 and tags.via = 'two'") == 1
    assert list(second.metric_history("shared", "m").values) == [float(i) for i in range(100)]
