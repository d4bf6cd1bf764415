"""Offline and disabled modes; exit codes; console output storage; a restarted server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import mltrail
from mltrail.cli import app
from mltrail.client.recovery import replay_spools
from mltrail.config import local_dir
from mltrail.errors import ConfigConflictError, InvalidValueError
from mltrail.store import open_store
from tests.conftest import restart_pg


def test_offline_run_then_sync_exactly_once(store_uri: str, client: mltrail.Client) -> None:
    run = mltrail.init(project="p", uri=store_uri, mode="offline", config={"lr": 0.1},
                       tags=["off"], name="plane")  # fmt: skip
    for i in range(1000):
        run.log({"loss": 1.0 / (i + 1)}, step=i)
    run.summary["best"] = 0.5
    run.set_tag("team", "cv")
    with pytest.raises(ConfigConflictError):
        run.config["lr"] = 0.2
    assert run.summary["loss"] == 1.0 / 1000  # readable offline, from memory
    run.finish()
    assert client.list_runs() == []  # nothing reached the store
    spools = list((local_dir(store_uri) / "spool").glob("*.spool"))
    assert len(spools) == 1
    copy = spools[0].with_name("copy-of-" + spools[0].name)
    copy.write_bytes(spools[0].read_bytes())
    store = open_store(store_uri)
    (report,) = replay_spools(store, spools[0], include_offline=True)
    assert report.points >= 1000 and not report.problems  # + the system-metrics sample
    r = client.get_run(run.id)
    assert (r.name, r.status, r.config, r.tags) == ("plane", "finished", {"lr": 0.1},
                                                    {"off": "", "team": "cv"})  # fmt: skip
    assert r.summary["best"] == 0.5 and r.metrics["loss"].count == 1000
    # a second sync of the same content adds nothing
    (again,) = replay_spools(store, copy, include_offline=True)
    assert again.points == 0
    assert client.get_run(run.id).metrics["loss"].count == 1000


def test_offline_spools_are_not_pushed_implicitly(store_uri: str, client: mltrail.Client) -> None:
    off = mltrail.init(project="p", uri=store_uri, mode="offline")
    off.log({"a": 1.0})
    off.finish()
    online = mltrail.init(project="p", uri=store_uri)  # replays dead spools of this store
    online.finish()
    assert [r.id for r in client.list_runs()] == [online.id]


def test_sync_command_pushes_offline_runs(tmp_path: Path, store_uri: str) -> None:
    from typer.testing import CliRunner

    run = mltrail.init(project="p", uri=store_uri, mode="offline")
    run.log({"a": 1.0})
    run.finish()
    runner = CliRunner()
    result = runner.invoke(app, ["sync", "--tracking-uri", store_uri])
    assert result.exit_code == 0, result.output
    assert f"run {run.id}: " in result.output and " points from " in result.output
    assert mltrail.Client(store_uri).get_run(run.id).summary == {"a": 1.0}
    result = runner.invoke(app, ["sync", str(tmp_path / "missing"), "--tracking-uri", store_uri])
    assert result.exit_code != 0


def test_offline_cannot_resume(store_uri: str) -> None:
    with pytest.raises(InvalidValueError, match="offline runs cannot resume"):
        mltrail.init(uri=store_uri, mode="offline", run_id="x", resume="allow")
    with pytest.raises(InvalidValueError, match="mode="):
        mltrail.init(uri=store_uri, mode="sometimes")


def test_disabled_mode_is_a_null_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_MODE", "disabled")
    with mltrail.init(project="p", config={"a": {"b": 1}}, tags=["x"]) as run:
        run.log({"loss": 1.0})
        mltrail.log({"loss": 2.0})
        run.config.update({"c": 2})
        run.summary["best"] = 1
        run.set_tag("t", "v")
        run.notes = "n"
        assert run.config["a.b"] == 1 and run.config.c == 2 and run.summary == {"best": 1}
        assert isinstance(run, mltrail.Run)
    assert run.status == "finished" and mltrail.active_run() is None
    assert not (Path.cwd() / ".mltrail").exists()  # nothing written anywhere


def _run_script(tmp_path: Path, store_uri: str, body: str) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "job.py"
    path.write_text("import mltrail, sys\n" + f"URI = {store_uri!r}\n" + textwrap.dedent(body))
    env = {**os.environ, "MLTRAIL_FLUSH_INTERVAL": "0.05"}
    return subprocess.run([sys.executable, str(path)], env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize(
    ("body", "returncode", "status", "reason"),
    [
        ("sys.exit(0)", 0, "finished", None),
        ("sys.exit()", 0, "finished", None),
        ("sys.exit(3)", 3, "failed", "sys.exit(3)"),
        ("raise ValueError('bad lr')", 1, "failed", "ValueError: bad lr"),
    ],
)
def test_exit_paths(
    tmp_path: Path, store_uri: str, body: str, returncode: int, status: str, reason: Any
) -> None:
    proc = _run_script(tmp_path, store_uri, f"""
        run = mltrail.init(project="p", uri=URI)
        run.log({{"x": 1.0}})
        {body}
    """)  # fmt: skip
    assert proc.returncode == returncode, proc.stderr
    (r,) = mltrail.Client(store_uri).list_runs()
    assert (r.status, r.exit_reason) == (status, reason)
    if body.startswith("raise ValueError"):
        assert "Traceback" in r.metadata["traceback"] and "bad lr" in r.metadata["traceback"]


def test_with_block_exceptions_store_traceback(store_uri: str) -> None:
    with pytest.raises(RuntimeError), mltrail.init(project="p", uri=store_uri) as run:
        raise RuntimeError("nan loss")
    r = mltrail.Client(store_uri).get_run(run.id)
    assert r.status == "failed" and "RuntimeError: nan loss" in r.metadata["traceback"]
    with pytest.raises(SystemExit), mltrail.init(project="p", uri=store_uri) as ok:
        sys.exit(0)
    assert mltrail.Client(store_uri).get_run(ok.id).status == "finished"


def test_console_chunks_are_stored_in_order(store_uri: str) -> None:
    run = mltrail.init(project="p", uri=store_uri)
    run._write_console("epoch 1\n")
    run.flush()
    run._write_console("epoch 2\n")
    run.finish()
    store = open_store(store_uri)
    chunks = store.read_logs(run.id)
    assert "".join(t for _, t in chunks) == "epoch 1\nepoch 2\n"
    assert store.read_logs(run.id, after=chunks[0][0]) == chunks[1:]


def test_postgres_stopped_and_started_mid_run(
    pg_server: dict[str, Any], pg_url_factory: Any
) -> None:
    """The real server goes down and comes back; training never blocks, nothing is lost."""
    uri = pg_url_factory()
    run = mltrail.init(project="p", uri=uri)
    for i in range(2000):
        run.log({"x": float(i)})
    run.flush()
    with restart_pg(pg_server):
        t0 = time.perf_counter()
        for i in range(2000, 50_000):
            run.log({"x": float(i)})
        assert time.perf_counter() - t0 < 5  # logging does not wait for the database
        time.sleep(0.5)
        run.flush()
        assert run._writer.error is not None
    run.finish()
    r = mltrail.Client(uri).get_run(run.id)
    assert r.status == "finished" and r.metrics["x"].count == 50_000


def test_console_is_captured_while_printing_normally(
    store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = mltrail.init(project="p", uri=store_uri, console="on")
    print("epoch 1 loss 0.5")
    print("warning: lr high", file=sys.stderr)
    run.finish()
    print("after finish")
    out, err = capsys.readouterr()
    assert "epoch 1 loss 0.5" in out and "lr high" in err and "after finish" in out
    text = "".join(t for _, t in open_store(store_uri).read_logs(run.id))
    assert "epoch 1 loss 0.5\n" in text and "warning: lr high\n" in text
    assert "after finish" not in text
    off = mltrail.init(project="p", uri=store_uri, console="off")
    print("not captured")
    off.finish()
    assert open_store(store_uri).read_logs(off.id) == []
    with pytest.raises(InvalidValueError, match="console="):
        mltrail.init(project="p", uri=store_uri, console="loud")


def test_console_of_a_live_run_is_readable_from_the_cli(tmp_path: Path, store_uri: str) -> None:
    proc = _run_script(tmp_path, store_uri, """
        run = mltrail.init(project="p", uri=URI)
        for epoch in range(3):
            print(f"epoch {epoch} done", flush=True)
        print(run.id)
    """)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.decode().split()[-1]
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["runs", "logs", run_id, "--tracking-uri", store_uri])
    assert result.exit_code == 0
    assert "epoch 0 done\nepoch 1 done\nepoch 2 done\n" in result.output


def test_stale_heartbeat_shows_as_crashed(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = mltrail.init(project="p", uri=store_uri)
    run._writer.stop()  # a process that hangs without heartbeats
    monkeypatch.setenv("MLTRAIL_CRASH_AFTER", "0.2")
    time.sleep(0.3)
    assert mltrail.Client(store_uri).get_run(run.id).status == "crashed"
    monkeypatch.setenv("MLTRAIL_CRASH_AFTER", "300")
    assert mltrail.Client(store_uri).get_run(run.id).status == "running"
