"""The SQL store on both backends."""

from __future__ import annotations

import math
import time
from array import array

import pytest
from sqlalchemy import func, select

from mltrail.errors import ConfigConflictError, RunAlreadyExists, RunNotFound
from mltrail.series import Series
from mltrail.store import open_store
from mltrail.store.encoding import encode_param
from mltrail.store.sql import schema as s
from mltrail.store.sql.chunks import MAX_CHUNK, OPEN_CHUNK
from mltrail.store.sql.store import SqlStore


def _series(steps: list[int], values: list[float]) -> Series:
    now = time.time()
    return Series(array("q", steps), array("d", values), array("d", [now] * len(steps)))


def _new_run(store: SqlStore, run_id: str = "r1", **kw: object) -> None:
    args: dict[str, object] = dict(
        run_id=run_id, project="p", name=None, user="u", group=None, job_type=None,
        parent_id=None, notes="", tags={}, metadata={}, started_at=time.time(),
    )  # fmt: skip
    args.update(kw)
    store.create_run(**args)  # type: ignore[arg-type]


@pytest.fixture
def store(store_uri: str) -> SqlStore:
    st = open_store(store_uri)
    assert isinstance(st, SqlStore)
    return st


def _chunk_rows(store: SqlStore, run_id: str, key: str) -> int:
    with store.engine.connect() as conn:
        q = (
            select(func.count())
            .select_from(s.metric_chunks)
            .where((s.metric_chunks.c.run_id == run_id) & (s.metric_chunks.c.key == key))
        )
        return int(conn.execute(q).scalar_one())


def test_create_and_get_run(store: SqlStore) -> None:
    _new_run(store, tags={"team": "cv"}, notes="hello")
    r = store.get_run("r1")
    assert (r.id, r.project, r.status, r.notes, r.tags) == (
        "r1",
        "p",
        "running",
        "hello",
        {"team": "cv"},
    )
    assert r.name  # generated
    assert [p.name for p, _ in store.list_projects()] == ["p"]


def test_create_run_returns_what_get_run_reads(store: SqlStore) -> None:
    """create_run builds its record instead of reading it back: the two must agree."""
    meta = {"git": {"dirty": False}, "odd": {1, 2}, "n": 1.5}  # a set is stored as str
    rec = store.create_run(
        run_id="r1", project="p", name="named", user="u", group="g", job_type="train",
        parent_id=None, notes="n", tags={"b": "2", "a": "1"}, metadata=meta,
        started_at=time.time(),
    )  # fmt: skip
    assert rec == store.get_run("r1")
    _new_run(store, "r2", parent_id="r1", started_at=time.time() - 10**6)  # long dead
    rec = store.get_run("r2")
    assert rec.status == "crashed" and rec.name  # generated from the run's number
    _new_run(store, "r3", project="new")  # a new project, made in the same transaction
    assert store.get_run("r3").project == "new"


def test_runs_are_numbered_per_project(store: SqlStore) -> None:
    for i in range(3):
        _new_run(store, f"a{i}", project="a")
    _new_run(store, "b0", project="b")
    with store.engine.connect() as conn:
        seqs = dict(conn.execute(select(s.runs.c.id, s.runs.c.seq)).all())
    assert seqs == {"a0": 1, "a1": 2, "a2": 3, "b0": 1}


def test_log_params_to_a_missing_run(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.log_params("ghost", {"lr": 0.1})
    _new_run(store)
    store.log_params("r1", {"lr": 0.1})
    store.log_params("r1", {"lr": 0.1})  # unchanged: nothing written, no error
    assert store.get_run("r1").config == {"lr": 0.1}


def test_duplicate_run_id_is_a_clear_error(store: SqlStore) -> None:
    _new_run(store)
    with pytest.raises(RunAlreadyExists, match="already exists"):
        _new_run(store)


def test_missing_run_and_parent(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.get_run("nope")
    with pytest.raises(RunNotFound, match="parent"):
        _new_run(store, parent_id="ghost")


def test_params_are_immutable_unless_allowed(store: SqlStore) -> None:
    _new_run(store)
    store.log_params("r1", {"lr": 0.01, "opt": "adam"})
    store.log_params("r1", {"lr": 0.01})  # same value: fine
    with pytest.raises(ConfigConflictError, match="'lr'"):
        store.log_params("r1", {"lr": 0.1})
    store.log_params("r1", {"lr": 0.1}, allow_change=True)
    assert store.get_run("r1").config == {"lr": 0.1, "opt": "adam"}


def test_param_numbers_for_search() -> None:
    assert encode_param("0.01") == ('"0.01"', 0.01)
    assert encode_param(5) == ("5", 5.0)
    assert encode_param(True) == ("true", None)
    assert encode_param("adam") == ('"adam"', None)


def test_metrics_nan_inf_roundtrip_and_summary(store: SqlStore) -> None:
    _new_run(store)
    values = [1.0, math.nan, math.inf, -math.inf, 0.5]
    store.write_metrics("r1", {"loss": _series([0, 1, 2, 3, 4], values)})
    h = store.metric_history("r1", "loss")
    assert list(h.steps) == [0, 1, 2, 3, 4]
    assert math.isnan(h.values[1]) and h.values[2] == math.inf and h.values[3] == -math.inf
    m = store.metric_summaries("r1")["loss"]
    assert (m.last, m.min, m.max, m.count, m.last_step) == (0.5, -math.inf, math.inf, 5, 4)
    store.write_metrics("r1", {"loss": _series([5], [math.nan])})
    m = store.metric_summaries("r1")["loss"]
    assert math.isnan(m.last) and m.last_step == 5 and m.min == -math.inf


def test_duplicate_steps_last_write_wins_and_out_of_order(store: SqlStore) -> None:
    _new_run(store)
    store.write_metrics("r1", {"acc": _series([5, 1, 3], [0.5, 0.1, 0.3])})
    store.write_metrics("r1", {"acc": _series([3, 0], [0.33, 0.0])})
    h = store.metric_history("r1", "acc")
    assert list(h.steps) == [0, 1, 3, 5]
    assert list(h.values) == [0.0, 0.1, 0.33, 0.5]
    m = store.metric_summaries("r1")["acc"]
    assert m.last == 0.5 and m.last_step == 5  # the value at the highest step


def test_series_are_chunked_never_a_row_per_point(store: SqlStore) -> None:
    _new_run(store)
    # many small batches extend the open tail chunk instead of adding rows
    for i in range(50):
        store.write_metrics("r1", {"k": _series([i], [float(i)])})
    assert _chunk_rows(store, "r1", "k") == 1
    # one big batch is split at MAX_CHUNK
    n = MAX_CHUNK * 2 + 10
    store.write_metrics("r1", {"k": _series(list(range(50, 50 + n)), [1.0] * n)})
    rows = _chunk_rows(store, "r1", "k")
    assert rows <= 3 + 1
    assert len(store.metric_history("r1", "k")) == 50 + n
    assert OPEN_CHUNK < MAX_CHUNK


def test_ten_thousand_keys_in_one_run(store: SqlStore) -> None:
    _new_run(store)
    batch = {f"layer{i}/grad_norm": _series([0], [float(i)]) for i in range(10_000)}
    store.write_metrics("r1", batch)
    summaries = store.metric_summaries("r1")
    assert len(summaries) == 10_000
    assert summaries["layer9999/grad_norm"].last == 9999.0


def test_unicode_keys(store: SqlStore) -> None:
    _new_run(store)
    key = "损失/验证 ✓ é" + "x" * 200
    store.write_metrics("r1", {key: _series([0], [1.0])})
    store.log_params("r1", {"模型": "残差网络"})
    r = store.get_run("r1")
    assert key in r.metrics and r.config["模型"] == "残差网络"


def test_spool_offsets(store: SqlStore) -> None:
    _new_run(store)
    assert store.spool_offset("sp") == 0
    store.write_metrics("r1", {"a": _series([0], [1.0])}, spool_id="sp", spool_offset=123)
    assert store.spool_offset("sp") == 123
    store.forget_spool("sp")
    assert store.spool_offset("sp") == 0


def test_mark_stale_runs_crashed(store: SqlStore) -> None:
    _new_run(store, run_id="old", started_at=time.time() - 1000)
    _new_run(store, run_id="fresh")
    assert store.mark_stale_runs_crashed(time.time() - 500) == ["old"]
    assert store.get_run("old").status == "crashed"
    assert store.get_run("fresh").status == "running"
