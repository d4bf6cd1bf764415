"""Tracking over HTTP: every /api/v1 tracking route through the remote store, against a
real ``mltrail server`` on SQLite and PostgreSQL, compared with the embedded store."""

from __future__ import annotations

import gzip
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import mltrail
from mltrail.entities import MetricPoint
from mltrail.errors import (
    ConfigConflictError,
    InvalidValueError,
    ProjectNotFound,
    QuerySyntaxError,
    RequestTooLarge,
    RunAlreadyExists,
    RunNotFound,
)
from mltrail.series import Series
from mltrail.store import open_store
from mltrail.store.http import HttpStore
from mltrail.store.http.tracking import BATCH_TYPE, decode_batch, encode_batch
from mltrail.store.sql.store import SqlStore


def _series(points: list[tuple[int, float]], t0: float = 1000.0) -> Series:
    s = Series.empty()
    for i, (step, value) in enumerate(points):
        s.steps.append(step)
        s.values.append(value)
        s.timestamps.append(t0 + i)
    return s


def _new_run(store: Any, run_id: str, project: str = "p", **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        run_id=run_id, project=project, name=None, user="ann", group="g", job_type="train",
        parent_id=None, notes="hello", tags={"team": "cv"},
        metadata={"host": "h", "odd": float("nan")}, started_at=time.time(),
    )  # fmt: skip
    args.update(kw)
    return store.create_run(**args)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_batch_frame_round_trips_and_refuses_garbage() -> None:
    cols = {"loss": _series([(0, 1.5), (1, math.nan), (2, math.inf)]), "a/b": _series([(5, -0.0)])}
    back = decode_batch(encode_batch(cols))
    assert list(back) == ["loss", "a/b"]
    assert list(back["loss"].steps) == [0, 1, 2]
    assert all(map(_same, back["loss"].values, [1.5, math.nan, math.inf]))
    frame = encode_batch(cols)
    for bad in (b"", b"XXXX\x01", frame[:-3], frame + b"\0"):
        with pytest.raises(InvalidValueError):
            decode_batch(bad)


def test_every_store_method_remote_matches_embedded(server_url: str, store_uri: str) -> None:
    """The same calls through HttpStore and SqlStore give the same answers."""
    remote = open_store(server_url)
    local = SqlStore(store_uri)
    assert isinstance(remote, HttpStore)
    try:
        for store, rid in ((local, "emb1"), (remote, "rem1")):
            rec = _new_run(store, rid)
            assert rec.id == rid and rec.project == "p" and rec.status == "running"
            assert math.isnan(rec.metadata["odd"])
            with pytest.raises(RunAlreadyExists):
                _new_run(store, rid)
            store.log_params(rid, {"lr": 0.01, "layers": [1, 2], "name": "resnet",
                                   "weird": float("inf")})  # fmt: skip
            with pytest.raises(ConfigConflictError):
                store.log_params(rid, {"lr": 0.02})
            store.log_params(rid, {"lr": 0.02}, allow_change=True)
            store.set_tags(rid, {"stage": "dev", "gone": "x"})
            store.delete_tag(rid, "gone")
            store.set_summary(rid, {"best": float("-inf"), "note": "NaN", "n": math.nan})
            store.merge_metadata(rid, {"extra": {"k": 1}, "v": float("inf")})
            store.update_run(rid, notes="changed", heartbeat_at=2e9)
            store.append_logs(rid, "line 1\n")
            store.append_logs(rid, "line 2\n")
            store.write_metrics(
                rid,
                {"loss": _series([(0, 1.0), (1, math.nan), (2, 0.5)]),
                 "sys/x": _series([(0, math.inf)])},
                spool_id=f"{rid}.abc",
                spool_offset=100,
            )  # fmt: skip
            # a retried batch (same spool offset) is not applied twice
            store.write_metrics(
                rid, {"loss": _series([(0, 1.0)])}, spool_id=f"{rid}.abc", spool_offset=100
            )
            store.write_metrics(rid, {"loss": _series([(3, -1.0)], t0=2000)})
            store.update_run(rid, status="finished", exit_code=0, ended_at=2e9 + 1)
        a, b = local.get_run("emb1"), remote.get_run("rem1")
        for field in ("project", "status", "exit_code", "ended_at", "heartbeat_at", "user",
                      "group", "job_type", "notes", "tags"):  # fmt: skip
            assert getattr(a, field) == getattr(b, field), field
        assert b.tags == {"stage": "dev", "team": "cv"}
        assert a.config == b.config == {"layers": [1, 2], "lr": 0.02, "name": "resnet",
                                        "weird": math.inf}  # fmt: skip
        assert b.summary_overrides["best"] == -math.inf and b.summary_overrides["note"] == "NaN"
        assert math.isnan(b.summary_overrides["n"]) and math.isnan(a.summary_overrides["n"])
        assert b.metadata["v"] == math.inf and b.metadata["extra"] == {"k": 1}
        assert set(a.metrics) == set(b.metrics) == {"loss", "sys/x"}
        for key in a.metrics:
            ma, mb = a.metrics[key], b.metrics[key]
            assert (ma.count, ma.last_step, ma.min, ma.max) == (
                mb.count,
                mb.last_step,
                mb.min,
                mb.max,
            )
            assert _same(ma.last, mb.last)
        assert b.metrics["loss"].count == 4 and b.metrics["sys/x"].max == math.inf
        assert remote.metric_summaries("rem1") == b.metrics
        ha, hb = local.metric_history("emb1", "loss"), remote.metric_history("rem1", "loss")
        assert list(ha.steps) == list(hb.steps) == [0, 1, 2, 3]
        assert all(map(_same, ha.values, hb.values))
        assert list(hb.timestamps) == [1000.0, 1001.0, 1002.0, 2000.0]
        assert len(remote.metric_history("rem1", "missing")) == 0
        assert remote.read_logs("rem1") == [(1, "line 1\n"), (2, "line 2\n")]
        assert remote.read_logs("rem1", after=1) == [(2, "line 2\n")]
        assert remote.spool_offset("rem1.abc") == 100
        remote.commit_spool("rem1.abc", "rem1", 250)
        assert local.spool_offset("rem1.abc") == 250
        remote.forget_spool("rem1.abc")
        assert remote.spool_offset("rem1.abc") == 0
        assert remote.spool_offset("nosuchrun.x") == 0
        # list, search, count, projects
        assert {r.id for r in remote.list_runs("p")} == {"emb1", "rem1"}
        assert [r.id for r in remote.list_runs(limit=1)] == [local.list_runs(limit=1)[0].id]
        found = remote.search_runs("p", "metrics.loss < 0", order_by=["name desc"])
        assert {r.id for r in found} == {"emb1", "rem1"}
        assert remote.count_runs("p", "tags.stage = 'dev' and params.lr = 0.02") == 2
        assert remote.count_runs(None, "status = 'running'") == 0
        page = remote.search_runs(None, None, order_by="created asc", limit=1, offset=1)
        assert [r.id for r in page] == ["rem1"]
        assert remote.get_or_create_project("other").name == "other"
        listed = {p.name: n for p, n in remote.list_projects()}
        assert listed == {"p": 2, "other": 0}
        _new_run(local, "stale1", started_at=1.0)
        assert remote.mark_stale_runs_crashed(time.time() - 60) == ["stale1"]
        assert remote.get_run("stale1").status == "crashed"
    finally:
        local.close()


def test_errors_come_back_as_our_classes(server_url: str) -> None:
    remote = open_store(server_url)
    with pytest.raises(RunNotFound):
        remote.get_run("nope")
    with pytest.raises(RunNotFound):
        remote.metric_summaries("nope")
    with pytest.raises(RunNotFound):
        remote.read_logs("nope")
    with pytest.raises(RunNotFound):
        remote.set_tags("nope", {"a": "b"})
    with pytest.raises(ProjectNotFound):
        remote.search_runs("no-such-project")
    with pytest.raises(InvalidValueError):
        remote.update_run("nope", colour="red")
    with pytest.raises(QuerySyntaxError, match="position"):
        remote.count_runs(None, "metrics.loss <<")
    r = httpx.get(server_url + "/api/v1/runs", params={"query": "params.lr = = 1"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "query_syntax_error"
    with pytest.raises(QuerySyntaxError) as exc_info:
        from mltrail.query import parse

        parse("params.lr = = 1")
    assert err["message"] == exc_info.value.message


def test_metric_history_downsampled_on_the_server(server_url: str) -> None:
    remote = open_store(server_url)
    _new_run(remote, "big")
    n = 100_000
    s = Series.empty()
    s.steps.extend(range(n))
    s.values.extend(math.sin(i / 500) for i in range(n))
    s.timestamps.extend(float(i) for i in range(n))
    s.values[50_000] = 10.0  # a spike downsampling must keep
    s.values[70_000] = math.nan
    remote.write_metrics("big", {"y": s})
    client = mltrail.Client(server_url)
    full = client.metric_history("big", "y")
    assert len(full) == n and full[50_000] == MetricPoint(50_000, 10.0, 50_000.0)
    few = client.metric_history("big", "y", max_points=500)
    assert 10 < len(few) <= 500
    assert few[0].step == 0 and few[-1].step == n - 1
    assert any(p.value == 10.0 for p in few) and any(math.isnan(p.value) for p in few)
    assert [p.step for p in few] == sorted(p.step for p in few)
    # the JSON form carries the same points (NaN as a string)
    r = httpx.get(f"{server_url}/api/v1/runs/big/metrics/y", params={"max_points": 500})
    assert r.status_code == 200
    points = r.json()
    assert len(points) == len(few) and "NaN" in [p["value"] for p in points]
    r = httpx.get(f"{server_url}/api/v1/runs/big/metrics/y", params={"max_points": 0})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    with pytest.raises(InvalidValueError):
        client.metric_history("big", "y", max_points=0)


def test_metric_route_gzip_binary_and_limits(
    serve: Callable[..., str], store_uri: str, tmp_path: Path
) -> None:
    url = serve(
        store_uri, objects=str(tmp_path / "objects"), env={"MLTRAIL_SERVER_MAX_BODY": str(1 << 20)}
    )
    remote = open_store(url)
    _new_run(remote, "r1")
    frame = encode_batch({"k": _series([(i, float(i)) for i in range(1000)])})
    api = f"{url}/api/v1/runs/r1/metrics"
    r = httpx.post(api, content=gzip.compress(frame),
                   headers={"Content-Type": BATCH_TYPE, "Content-Encoding": "gzip"})  # fmt: skip
    assert r.status_code == 204, r.text
    assert remote.metric_summaries("r1")["k"].count == 1000
    r = httpx.post(api, content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    r = httpx.post(api, content=b"MLTM\x01junk")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value"
    # another run's spool cannot be moved through this run
    r = httpx.post(api, content=frame, params={"spool_id": "r2.x", "spool_offset": 5})
    assert r.status_code == 400
    # 2 MiB inflated from a few KiB: over the 1 MiB limit, refused
    bomb = gzip.compress(b"\0" * (2 << 20))
    r = httpx.post(api, content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    big = {"k": _series([(i, float(i)) for i in range(50_000)])}  # 1.2 MB raw
    with pytest.raises(RequestTooLarge):
        remote.write_metrics("r1", {"k": _series([(0, 0.0)]), **big})
    assert remote.metric_summaries("r1")["k"].count == 1000


def test_remote_run_reads_back_like_an_embedded_run(
    server_url: str, store_uri: str, tmp_path: Path
) -> None:
    """The same script logged embedded and through the server: equal records."""

    def script(uri: str) -> str:
        run = mltrail.init(project="same", uri=uri, config={"lr": 0.1, "opt": {"b": 2}},
                           tags=["x"], notes="n")  # fmt: skip
        for i in range(2000):
            run.log({"loss": 1 / (i + 1), "odd": math.nan if i % 7 == 0 else float(i)})
        run.log({"inf": math.inf}, step=5)
        run.summary["final"] = -math.inf
        run.set_tag("k", "v")
        run.finish()
        return run.id

    local_id = script(store_uri)
    remote_id = script(server_url)
    client = mltrail.Client(store_uri)
    a, b = client.get_run(local_id), mltrail.Client(server_url).get_run(remote_id)
    assert (a.config, a.tags, a.notes, a.status) == (b.config, b.tags, b.notes, b.status)
    assert (
        a.summary_overrides == b.summary_overrides == {"final": "-inf"}
    )  # as run.summary keeps it
    user_keys = {"loss", "odd", "inf"}
    assert user_keys <= set(b.metrics)
    for key in user_keys:
        ma, mb = a.metrics[key], b.metrics[key]
        assert (ma.count, ma.last_step, ma.min, ma.max) == (mb.count, mb.last_step, mb.min, mb.max)
        assert _same(ma.last, mb.last)
        pa = client.metric_history(local_id, key)
        pb = client.metric_history(remote_id, key)  # the server wrote them into this store
        assert [p.step for p in pa] == [p.step for p in pb]
        assert all(map(_same, [p.value for p in pa], [p.value for p in pb]))
