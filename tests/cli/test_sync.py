"""``mltrail sync``: replay spools that dead processes left behind, mark silent runs crashed."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mltrail
from mltrail.config import local_dir
from tests.cli.conftest import Invoke, MakeRun, RunMain
from tests.cli.helpers import loads, mltrail_process, ok, subprocess_env

JOB = """
import os, sys, threading, time
import mltrail
from mltrail.config import local_dir

if ALSO_FLUSHED:  # a run whose points all reach the store before the process dies
    flushed = mltrail.init(project="p", name="flushed", uri=URI)
    for i in range(POINTS):
        flushed.log({"loss": 1.0 / (i + 1)})
    flushed.flush()
    print(flushed.id, flush=True)
run = mltrail.init(project="p", name="victim", uri=URI)
print(run.id, flush=True)
sys.stdin.readline()  # the test blocks the store's writes now
for i in range(POINTS):
    run.log({"loss": 1.0 / (i + 1)})
(spool,) = (local_dir(URI) / "spool").glob(run.id + ".*.spool")
size = spool.stat().st_size
threading.Thread(target=run.flush, daemon=True).start()  # spool, then wait for the store
while spool.stat().st_size == size:
    time.sleep(0.005)
time.sleep(0.05)
os._exit(0)  # no finish, no atexit hooks: as if killed
"""


@contextmanager
def _store_writes_blocked(store_uri: str) -> Iterator[None]:
    """Hold the lock metric writes need, so a writer waits (reads still work)."""
    if store_uri.startswith("sqlite:///"):
        con = sqlite3.connect(store_uri[len("sqlite:///") :], isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            yield
            con.execute("ROLLBACK")
        finally:
            con.close()
    else:
        import psycopg

        with psycopg.connect(store_uri) as pg:
            pg.execute("LOCK TABLE metric_chunks IN EXCLUSIVE MODE")
            yield
            pg.rollback()


def _dead_process(
    store_uri: str, tmp_path: Path, points: int, also_flushed: bool = False
) -> list[str]:
    """A process logs ``points`` values and dies without finishing; returns its run ids.

    The store's writes are blocked meanwhile, so the points reach the process's spool
    but not the store. ``also_flushed`` first makes a run whose points did reach it.
    """
    script = tmp_path / "job.py"
    script.write_text(
        f"URI = {store_uri!r}\nPOINTS = {points}\nALSO_FLUSHED = {also_flushed}\n"
        + textwrap.dedent(JOB)
    )
    env = subprocess_env(MLTRAIL_FLUSH_INTERVAL="3600")  # only the explicit flushes write
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        run_ids = [proc.stdout.readline().strip() for _ in range(1 + also_flushed)]
        with _store_writes_blocked(store_uri):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.wait(60) == 0
    assert len(_spools(store_uri)) == len(run_ids)
    return run_ids


def _spools(store_uri: str) -> list[Path]:
    return sorted((local_dir(mltrail.Client(store_uri).uri) / "spool").glob("*.spool"))


def test_nothing_to_sync(make_run: MakeRun, cli: Invoke, store_uri: str) -> None:
    assert ok(cli("sync")).strip() == "nothing to sync"
    assert loads(ok(cli("sync", "--json"))) == {"replayed": [], "marked_crashed": []}
    with make_run() as run:
        run.log({"loss": 1.0})
    live = make_run()  # its spool is locked by this live process: not sync's business
    live.log({"loss": 1.0})
    live.flush()
    assert len(_spools(store_uri)) == 1
    assert ok(cli("sync")).strip() == "nothing to sync"
    assert mltrail.Client(store_uri).get_run(live.id).status == "running"
    live.finish()


def test_sync_replays_the_spools_of_a_dead_process(
    store_uri: str, tmp_path: Path, cli: Invoke
) -> None:
    """End to end: what only the spool has reaches the store, nothing is applied twice,
    and the runs the dead process left 'running' are crashed."""
    flushed, victim = _dead_process(store_uri, tmp_path, points=100, also_flushed=True)
    client = mltrail.Client(store_uri)
    assert client.get_run(victim).status == "running" and client.get_run(victim).metrics == {}
    assert client.get_run(flushed).metrics["loss"].count == 100
    proc = mltrail_process("sync", "--tracking-uri", store_uri)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sorted(proc.stdout.splitlines()) == sorted(
        [f"run {victim}: 100 points from 1 records", f"run {flushed}: 0 points from 0 records"]
    )
    for run_id, recovered in [(victim, 100), (flushed, 0)]:
        r = client.get_run(run_id)
        assert r.status == "crashed" and r.ended_at is not None
        assert r.exit_reason == f"the process died without finishing; recovered {recovered} points"
        assert r.metrics["loss"].count == 100 and r.summary == {"loss": 1.0 / 100}
    assert _spools(store_uri) == []
    assert ok(cli("sync")) == "nothing to sync\n"


def test_sync_reports_a_damaged_spool(store_uri: str, tmp_path: Path, cli: Invoke) -> None:
    (run_id,) = _dead_process(store_uri, tmp_path, points=5)
    (spool,) = _spools(store_uri)
    spool.write_bytes(spool.read_bytes() + b"torn write")  # a record cut short at the end
    data = loads(ok(cli("sync", "--json")))
    (report,) = data["replayed"]
    assert report["run_id"] == run_id and report["spool_id"] == spool.stem
    assert (report["records"], report["points"], report["dropped_bytes"]) == (1, 5, 10)
    assert len(report["problems"]) == 1 and "offset" in report["problems"][0]
    assert data["marked_crashed"] == []
    assert spool.with_suffix(".spool.bad").exists()  # kept for inspection
    r = mltrail.Client(store_uri).get_run(run_id)
    assert r.status == "crashed" and r.metrics["loss"].count == 5
    assert "spool damaged" in (r.exit_reason or "")
    assert loads(ok(cli("sync", "--json"))) == {"replayed": [], "marked_crashed": []}


def test_sync_moves_aside_a_file_that_is_not_a_spool(store_uri: str, cli: Invoke) -> None:
    folder = local_dir(mltrail.Client(store_uri).uri) / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    junk = folder / "[bold]junk.spool"  # the name once went through Rich markup
    junk.write_bytes(b"not a spool at all")
    out = " ".join(ok(cli("sync")).split())
    assert out.startswith("run ?: 0 points from 0 records (")
    assert "[bold]junk.spool is not an mltrail spool file" in out
    assert out.endswith("moved aside to [bold]junk.spool.bad; 0 bytes unreadable)")
    assert not junk.exists() and junk.with_suffix(".spool.bad").exists()


def test_sync_marks_runs_without_heartbeat_crashed(
    make_run: MakeRun, cli: Invoke, store_uri: str
) -> None:
    first = make_run()
    assert ok(cli("sync", "--crash-after", "3600")) == "nothing to sync\n"  # heard from lately
    out = ok(cli("sync", "--crash-after", "0"))
    assert out == f"run {first.id}: no heartbeat, marked crashed\n"
    second = make_run()
    data = loads(ok(cli("sync", "--crash-after", "0", "--json")))
    assert data == {"replayed": [], "marked_crashed": [second.id]}
    for run in (first, second):
        r = mltrail.Client(store_uri).get_run(run.id)
        assert r.status == "crashed" and "no heartbeat" in (r.exit_reason or "")
        run.finish()


def test_sync_path_pushes_offline_spools_to_any_store_exactly_once(
    store_uri: str, tmp_path: Path, cli: Invoke, run_main: RunMain
) -> None:
    """``sync PATH``: a spool file, a spool folder or an .mltrail folder from elsewhere."""
    with mltrail.init(project="p", uri=store_uri, mode="offline", config={"lr": 0.1}) as run:
        run.log({"loss": 0.5})
        run.log({"loss": 0.25})
    (spool,) = _spools(store_uri)
    copies = [tmp_path / "a" / "spool", tmp_path / "b" / ".mltrail" / "spool"]
    for folder in copies:
        folder.mkdir(parents=True)
        shutil.copy(spool, folder / spool.name)
    spool.unlink()
    assert ok(cli("sync")) == "nothing to sync\n"  # offline spools live where they were put
    out = ok(cli("sync", str(copies[0] / spool.name)))  # a file
    assert out.startswith(f"run {run.id}: 2 points from ")
    data = loads(ok(cli("sync", str(copies[1].parent), "--json")))  # an .mltrail folder
    assert [(r["run_id"], r["points"]) for r in data["replayed"]] == [(run.id, 0)]  # not twice
    r = mltrail.Client(store_uri).get_run(run.id)
    assert (r.status, r.config, r.metrics["loss"].count) == ("finished", {"lr": 0.1}, 2)
    code, out, err = run_main("sync", str(tmp_path / "missing"), "--tracking-uri", store_uri)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"error: {tmp_path / 'missing'} does not exist",
        "hint: give a spool file, a spool folder or an .mltrail folder",
    ]
