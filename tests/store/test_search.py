"""The query language against SQLite and PostgreSQL: same answers on both."""

from __future__ import annotations

import math
import time
from array import array
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import mltrail
from mltrail.errors import InvalidValueError, QuerySyntaxError, RunNotFound
from mltrail.series import Series
from mltrail.store import open_store
from mltrail.store.sql.store import SqlStore

ISSUE_QUERY = (
    "metrics.val_acc > 0.9 and (params.optimizer = 'adam' or params.optimizer in "
    "('sgd', 'rmsprop')) and tags.team = 'cv' and not tags.archived and status != 'crashed' "
    "and created > '2026-01-01' and name like 'resnet%' and max(metrics.val_acc) >= 0.95 "
    "and config.model.depth >= 50 and git.dirty = false"
)


def _run(store: SqlStore, rid: str, *, name: str, status: str = "finished",
         params: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
         metrics: dict[str, list[float]] | None = None, meta: dict[str, Any] | None = None,
         created: float | None = None) -> None:  # fmt: skip
    store.create_run(run_id=rid, project="p", name=name, user="ann", group=None,
                     job_type=None, parent_id=None, notes="", tags=tags or {},
                     metadata=meta or {}, started_at=time.time())  # fmt: skip
    if params:
        store.log_params(rid, params)
    for key, values in (metrics or {}).items():
        n = len(values)
        series = Series(array("q", range(n)), array("d", values), array("d", [1.0] * n))
        store.write_metrics(rid, {key: series})
    store.update_run(rid, status=status, heartbeat_at=time.time())
    if created is not None:
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE runs SET created_at = :c WHERE id = :i"),
                         {"c": created, "i": rid})  # fmt: skip


@pytest.fixture
def store(store_uri: str) -> SqlStore:
    st_ = open_store(store_uri)
    assert isinstance(st_, SqlStore)
    clean = {"git": {"dirty": False, "branch": "main"}, "hardware": {"cpu": {"logical": 8}}}
    _run(st_, "r1", name="resnet-a", created=1.80e9,
         params={"lr": 0.01, "optimizer": "adam", "model.depth": 50, "amp": True},
         tags={"team": "cv"}, metrics={"val_acc": [0.9, 0.96, 0.95], "loss": [1, 0.5]},
         meta=clean)  # fmt: skip
    _run(st_, "r2", name="resnet-b", status="crashed", created=1.79e9,
         params={"lr": "0.1", "optimizer": "sgd", "model.depth": 18, "amp": False},
         tags={"team": "nlp", "archived": ""}, metrics={"val_acc": [0.85]},
         meta={"git": {"dirty": True}})  # fmt: skip
    _run(st_, "r3", name="vgg", created=1.78e9,
         params={"lr": 0.001, "optimizer": "rmsprop"},
         tags={"team": "cv"}, metrics={"val_acc": [0.9, math.nan]}, meta=clean)  # fmt: skip
    _run(st_, "r4", name="odd%name", status="running", created=1.70e9)
    return st_


def ids(store: SqlStore, query: str, **kw: Any) -> list[str]:
    return sorted(r.id for r in store.search_runs("p", query, **kw))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["r1", "r2", "r3", "r4"]),
        ("metrics.val_acc > 0.9", ["r1"]),  # r3's last value is NaN: matches nothing
        ("max(metrics.val_acc) >= 0.9", ["r1", "r3"]),
        ("min(metrics.val_acc) < 0.9", ["r2"]),
        ("count(metrics.val_acc) = 2", ["r3"]),
        ("params.lr > 0.005", ["r1", "r2"]),  # '0.1' logged as a string counts as 0.1
        ("params.lr = '0.1'", ["r2"]),
        ("config.model.depth >= 50", ["r1"]),
        ("params.`model.depth` < 50", ["r2"]),
        ("params.amp = true", ["r1"]),
        ("params.amp != true", ["r2"]),
        ("params.optimizer in ('sgd', 'rmsprop')", ["r2", "r3"]),
        ("params.optimizer not in ('sgd', 'rmsprop')", ["r1"]),
        ("tags.team = 'cv'", ["r1", "r3"]),
        ("tags.team != 'cv'", ["r2"]),  # needs the tag
        ("not tags.team = 'cv'", ["r2", "r4"]),  # also runs without it
        ("tags.archived", ["r2"]),
        ("not tags.archived", ["r1", "r3", "r4"]),
        ("tags.team is null", ["r4"]),
        ("params.lr is not null", ["r1", "r2", "r3"]),
        ("status = 'finished' or status = 'running'", ["r1", "r3", "r4"]),
        ("status != 'crashed' and not (name like 'resnet%')", ["r3", "r4"]),
        ("name like 'RESNET%'", []),  # like is case-sensitive on both backends
        ("name ilike 'RESNET%'", ["r1", "r2"]),
        ("name like 'odd\\%%'", ["r4"]),  # an escaped % matches itself
        ("created > '2026-01-01'", ["r1", "r2", "r3"]),
        ("created < 1750000000", ["r4"]),
        ("git.dirty = false", ["r1", "r3"]),
        ("git.dirty = true", ["r2"]),
        ("git.branch = 'main' and system.cpu.logical >= 8", ["r1", "r3"]),
        ("user = 'ann' and project = 'p'", ["r1", "r2", "r3", "r4"]),
        (ISSUE_QUERY, ["r1"]),
    ],
)
def test_queries(store: SqlStore, query: str, expected: list[str]) -> None:
    assert ids(store, query) == expected


def test_order_by_missing_last_and_pagination(store: SqlStore, store_uri: str) -> None:
    got = [r.id for r in store.search_runs("p", None, order_by=["metrics.val_acc desc"])]
    assert got == ["r1", "r2", "r3", "r4"]  # NaN/missing values last
    got = [r.id for r in store.search_runs("p", None, order_by="params.lr asc")]
    assert got == ["r3", "r1", "r2", "r4"]
    client = mltrail.Client(store_uri)
    pages, cursor = [], None
    while True:
        page = client.search_runs("p", order_by=["name"], limit=3, cursor=cursor)
        pages.append([r.name for r in page])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [["odd%name", "resnet-a", "resnet-b"], ["vgg"]]
    assert client.count_runs("p", "tags.team = 'cv'") == 2
    with pytest.raises(InvalidValueError, match="cursor"):
        client.search_runs("p", cursor="garbage!")


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("metrics.acc >", "expected a value"),
        ("staus = 'x'", "did you mean 'status'"),
        ("metrics.acc = 'high'", "metrics are numbers"),
        ("metrics.acc like 'x%'", "metrics are numbers"),
        ("created > 'yesterday'", "not a date"),
        ("'; DROP TABLE runs; --", "unterminated string"),
    ],
)
def test_bad_queries_are_clear(store: SqlStore, query: str, match: str) -> None:
    with pytest.raises(QuerySyntaxError, match=match):
        store.search_runs("p", query)
    assert store.count_runs("p") == 4  # nothing touched


def test_unknown_project(store: SqlStore) -> None:
    with pytest.raises(KeyError):
        store.search_runs("nope", "status = 'finished'")
    with pytest.raises(RunNotFound):
        store.get_run("nope")


_tokens = st.sampled_from(
    ["metrics.a", "params.b", "tags.c", "git.d", "status", "name", "created", "=", "!=", "<",
     ">=", "and", "or", "not", "(", ")", "in", "like", "is", "null", "'x'", "'%'", "1", "-2.5",
     "true", "max(metrics.a)", ",", "'; drop table runs; --", "`we ird`", "\\", "\"q\""]
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.lists(_tokens, max_size=12).map(" ".join), st.text(max_size=60)))
def test_any_input_gives_a_result_or_a_syntax_error(store: SqlStore, query: str) -> None:
    try:
        store.search_runs("p", query)
        store.count_runs("p", query)
    except QuerySyntaxError:
        pass
    assert store.count_runs("p") == 4


def test_no_full_scan_of_metric_tables(store: SqlStore) -> None:
    """The issue's query uses the summary's primary key, never scans metric tables."""
    from mltrail.store.sql import schema as s
    from mltrail.store.sql.search import compile_where

    q = (
        s.runs.select()
        .where(compile_where(ISSUE_QUERY, store.dialect))  # type: ignore[arg-type]
        .limit(50)
    )
    sql = str(q.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "SCAN metric_summary" not in plan and "SCAN metric_chunks" not in plan, plan
            assert "metric_summary USING" in plan, plan
        else:
            conn.execute(text("SET enable_seqscan = off"))  # tiny tables: ask what it *can* do
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
            assert "Seq Scan on metric_summary" not in plan, plan
            assert "Seq Scan on metric_chunks" not in plan, plan


def test_search_as_a_data_frame(store: SqlStore, store_uri: str) -> None:
    frame = mltrail.Client(store_uri).search_runs(
        "p", "tags.team = 'cv'", order_by="metrics.val_acc desc", as_frame=True
    )
    assert list(frame["id"]) == ["r1", "r3"]
    assert frame.loc[0, "params.optimizer"] == "adam" and frame.loc[0, "metrics.val_acc"] == 0.95
