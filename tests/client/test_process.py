"""Whole processes: exit paths, kills, concurrent writers, recovery from the spool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mltrail
from mltrail.client.recovery import encode_metrics, replay_spools
from mltrail.client.spool import KIND_METRICS, SpoolWriter
from mltrail.config import local_dir
from mltrail.series import Series
from mltrail.store import open_store


def _script(tmp_path: Path, body: str, store_uri: str, name: str = "job.py") -> list[str]:
    path = tmp_path / name
    path.write_text(f"import mltrail, os, sys, time\nURI = {store_uri!r}\n" + textwrap.dedent(body))
    return [sys.executable, str(path)]


def _env() -> dict[str, str]:
    return {**os.environ, "MLTRAIL_FLUSH_INTERVAL": "0.05"}


def _only_run(client: mltrail.Client) -> mltrail.entities.RunRecord:
    runs = client.list_runs()
    assert len(runs) == 1, runs
    return runs[0]


def test_normal_exit_without_finish_is_finished(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI)
        for i in range(5000):
            run.log({"x": float(i)})
    """, store_uri)  # fmt: skip
    subprocess.run(cmd, check=True, env=_env(), timeout=60)
    r = _only_run(client)
    assert r.status == "finished" and r.metrics["x"].count == 5000


def test_uncaught_exception_is_failed(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI)
        run.log({"x": 1.0})
        raise RuntimeError("diverged")
    """, store_uri)  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, timeout=60)
    assert proc.returncode == 1 and b"diverged" in proc.stderr
    r = _only_run(client)
    assert r.status == "failed" and r.exit_reason == "RuntimeError: diverged"
    assert r.summary == {"x": 1.0}


def test_sigterm_is_killed_and_drains(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI)
        for i in range(20000):
            run.log({"x": float(i)})
        print("ready", flush=True)
        time.sleep(60)
    """, store_uri)  # fmt: skip
    with subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM
    r = _only_run(client)
    assert r.status == "killed" and r.exit_reason == "SIGTERM"
    assert r.metrics["x"].count == 20000


def test_sigkill_then_next_process_recovers_and_marks_crashed(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI)
        for i in range(3000):
            run.log({"x": float(i)})
        run.flush()
        print(run.id, flush=True)
        time.sleep(60)
    """, store_uri)  # fmt: skip
    with subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().decode().strip()
        proc.kill()
        proc.wait(10)
    assert client.get_run(run_id).status == "running"  # nobody knows yet
    spools = list((local_dir(store_uri) / "spool").glob("*.spool"))
    assert len(spools) == 1  # left behind, its lock released by the kernel
    mltrail.init(project="p", uri=store_uri).finish()  # the next process recovers
    r = client.get_run(run_id)
    assert r.status == "crashed" and "died" in (r.exit_reason or "")
    assert r.metrics["x"].count == 3000
    assert not spools[0].exists()


def _victim(store_uri: str) -> None:
    """A run a process started (status running) and then lost."""
    open_store(store_uri).create_run(
        run_id="victim", project="p", name=None, user=None, group=None, job_type=None,
        parent_id=None, notes="", tags={}, metadata={}, started_at=time.time(),
    )  # fmt: skip


def _orphan_spool(store_uri: str, run_id: str, batches: int) -> Path:
    """A spool written by a 'process' that never reached the store, then died."""
    spool = SpoolWriter(local_dir(store_uri) / "spool", run_id, store_uri)
    for b in range(batches):
        s = Series.empty()
        for i in range(100):
            s.steps.append(b * 100 + i)
            s.values.append(float(b * 100 + i))
            s.timestamps.append(time.time())
        spool.append(KIND_METRICS, encode_metrics({"x": s}))
    path = spool.path
    spool.close(delete=False)
    return path


def test_replay_applies_uncommitted_records_exactly_once(
    store_uri: str, client: mltrail.Client
) -> None:
    _victim(store_uri)
    path = _orphan_spool(store_uri, "victim", batches=5)
    store = open_store(store_uri)
    reports = replay_spools(store, path.parent)
    assert [(r.run_id, r.records, r.points, r.problems) for r in reports] == [
        ("victim", 5, 500, [])
    ]
    assert not path.exists()
    r = client.get_run("victim")
    assert r.status == "crashed" and r.metrics["x"].count == 500
    assert replay_spools(store, path.parent) == []  # nothing twice


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_damaged_spool_tail_is_recovered_up_to_last_good_record(
    store_uri: str, client: mltrail.Client, damage: str
) -> None:
    _victim(store_uri)
    path = _orphan_spool(store_uri, "victim", batches=4)
    size = path.stat().st_size
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: size - 50])
    elif damage == "garbage":
        path.write_bytes(bytes(data) + b"\x07" * 13)
    else:
        data[size - 20] ^= 0xFF
        path.write_bytes(bytes(data))
    (report,) = replay_spools(open_store(store_uri), path.parent)
    assert report.points == 300 if damage != "garbage" else 400
    assert report.problems and report.dropped_bytes > 0
    assert path.with_suffix(".spool.bad").exists()  # kept for inspection
    r = client.get_run("victim")
    assert r.status == "crashed" and "spool damaged" in (r.exit_reason or "")
    assert r.metrics["x"].count == report.points


def test_eight_processes_log_to_one_store_at_once(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI, config={"worker": int(sys.argv[1])})
        for i in range(3000):
            run.log({"loss": 1.0 / (i + 1), "acc": i / 3000})
            if i % 500 == 0:
                run.config.update({f"checkpoint_{i}": i})
                run.set_tag(f"t{i}", "x")
        run.finish()
    """, store_uri)  # fmt: skip
    procs = [subprocess.Popen([*cmd, str(w)], env=_env(), stderr=subprocess.PIPE) for w in range(8)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    assert not any(b"locked" in e for e in errors)
    runs = client.list_runs("p")
    assert len(runs) == 8
    assert all(r.status == "finished" and r.metrics["loss"].count == 3000 for r in runs)


def test_fresh_store_opened_by_many_processes_at_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'fresh' / 'mltrail.db'}"
    else:
        uri = request.getfixturevalue("pg_url_factory")(empty=True)
    cmd = _script(tmp_path, """
        mltrail.init(project="p", uri=URI).finish()
    """, uri)  # fmt: skip
    procs = [subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    assert len(mltrail.Client(uri).list_runs()) == 6


def _set_connections(pg_url: str, allow: bool) -> None:
    """Let PostgreSQL refuse (and drop) or accept connections to one database."""
    import psycopg

    name = pg_url.rsplit("/", 1)[1]
    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_database_going_away_mid_run_loses_nothing(
    pg_url_factory: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL-only: the server refuses connections while the run logs."""
    uri = pg_url_factory()  # type: ignore[operator]
    run = mltrail.init(project="p", uri=uri)
    for i in range(1000):
        run.log({"x": float(i)})
    run.flush()
    _set_connections(uri, allow=False)
    for i in range(1000, 5000):
        run.log({"x": float(i)})
    time.sleep(0.3)  # the writer tries and fails; points go to the spool only
    run.flush()
    assert run._writer.error is not None and "failed" in str(run._writer.error)
    _set_connections(uri, allow=True)
    for i in range(5000, 6000):
        run.log({"x": float(i)})
    run.finish()  # the writer catches up from its spool
    r = mltrail.Client(uri).get_run(run.id)
    assert r.status == "finished" and r.metrics["x"].count == 6000
    hist = mltrail.Client(uri).metric_history(run.id, "x")
    assert [p.value for p in hist] == [float(i) for i in range(6000)]
    assert not list((local_dir(uri) / "spool").glob("*.spool"))


def test_database_down_at_finish_then_sync(pg_url_factory: object) -> None:
    uri = pg_url_factory()  # type: ignore[operator]
    run = mltrail.init(project="p", uri=uri)
    run.log({"x": 1.0})
    run.flush()
    _set_connections(uri, allow=False)
    for i in range(1, 100):
        run.log({"x": float(i)})
    run.finish()  # cannot reach the store: keeps the spool
    assert len(list((local_dir(uri) / "spool").glob("*.spool"))) == 1
    _set_connections(uri, allow=True)
    (report,) = replay_spools(open_store(uri), local_dir(uri) / "spool")
    r = mltrail.Client(uri).get_run(run.id)
    assert r.status == "finished" and r.metrics["x"].count == 100  # the finish record applied
    assert report.points >= 99  # 99 of x, plus the final system-metrics sample


def test_full_disk_for_the_spool_loses_nothing(tmp_path: Path, pg_url_factory: object) -> None:
    """The spool cannot grow (file size limit, as on a full disk): the store still gets it all."""
    uri = pg_url_factory()  # type: ignore[operator]
    cmd = _script(tmp_path, """
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = mltrail.init(project="p", uri=URI)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        for i in range(20000):
            run.log({"x": float(i)})
        run.finish()
    """, uri)  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert b"cannot write the spool" in proc.stderr
    r = _only_run(mltrail.Client(uri))
    assert r.status == "finished" and r.metrics["x"].count == 20000


def test_kill_9_in_the_middle_of_a_million_point_loop(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    """Every point the writer handed to the OS survives; the run ends crashed."""
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI)
        print(run.id, flush=True)
        for i in range(1_000_000):
            run.log({"loss": 1.0 / (i + 1)}, step=i)
            if i == 300_000:
                run.flush()  # from here on at least 300,001 points are with the OS
                print("flushed", flush=True)
    """, store_uri)  # fmt: skip
    with subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().decode().strip()
        assert proc.stdout.readline().strip() == b"flushed"
        time.sleep(0.3)  # let it run on; the kill lands mid-loop
        proc.kill()
        assert proc.wait(10) == -signal.SIGKILL
    from typer.testing import CliRunner

    from mltrail.cli import app

    result = CliRunner().invoke(app, ["sync", "--tracking-uri", store_uri])
    assert result.exit_code == 0, result.output
    r = client.get_run(run_id)
    assert r.status == "crashed"
    n = r.metrics["loss"].count
    assert 300_001 <= n < 1_000_000
    steps = [p.step for p in client.metric_history(run_id, "loss")]
    assert steps == list(range(n))  # a gap-free prefix: nothing the OS had is missing


def test_sigint_drains_ends_killed_and_keeps_the_exit_status(
    tmp_path: Path, store_uri: str, client: mltrail.Client
) -> None:
    cmd = _script(tmp_path, """
        run = mltrail.init(project="p", uri=URI)
        for i in range(10000):
            run.log({"x": float(i)})
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
    """, store_uri)  # fmt: skip
    with subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == -signal.SIGINT  # Python re-raises SIGINT after KeyboardInterrupt
    r = _only_run(client)
    assert (r.status, r.exit_reason, r.exit_code) == ("killed", "KeyboardInterrupt", 130)
    assert r.metrics["x"].count == 10000
