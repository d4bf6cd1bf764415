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
    assert store.count_runs("p", query) == len(expected)


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


def _more_runs(store: SqlStore) -> None:
    """Ties, infinities, a NaN-only series and a run without the metric."""
    _run(store, "r5", name="tie", created=1.81e9, tags={"team": "cv"},
         metrics={"val_acc": [0.5, 0.95], "loss": [0.2]})  # fmt: skip
    _run(store, "r6", name="inf", created=1.82e9, metrics={"val_acc": [math.inf]})
    _run(store, "r7", name="ninf", created=1.83e9, metrics={"val_acc": [2.0, -math.inf]})
    _run(store, "r8", name="nan", created=1.84e9, metrics={"val_acc": [math.nan]})
    _run(store, "r9", name="other", created=1.85e9, metrics={"loss": [0.1]})


def _reference(store: SqlStore, query: str, order: list[str], limit: int, offset: int) -> list[str]:
    """The page as compile_where + compile_order give it: no join, a lookup per run."""
    from sqlalchemy import select

    from mltrail.store.sql import schema as s
    from mltrail.store.sql.search import compile_order, compile_where

    q = select(s.runs.c.id).order_by(*compile_order(order, store.dialect))
    where = compile_where(query, store.dialect)
    if where is not None:
        q = q.where(where)
    with store.engine.connect() as conn:
        return [r.id for r in conn.execute(q.limit(limit).offset(offset))]


@pytest.mark.parametrize(
    "query",
    [
        "metrics.val_acc > 0.8",
        "metrics.val_acc >= 0.9 and tags.team = 'cv'",
        "metrics.val_acc != 0.9",
        "metrics.val_acc < 100 and metrics.val_acc > -100",
        "max(metrics.val_acc) > 0.5",
        "metrics.val_acc > 0.8 and not metrics.val_acc > 0.95",
        "metrics.val_acc > 0.8 and not max(metrics.val_acc) > 0.95",
        "metrics.val_acc > 0.8 or params.lr > 0",
        "count(metrics.val_acc) >= 1 and metrics.loss < 1",
        "metrics.val_acc in (0.95, 0.9)",
        "metrics.val_acc is not null and status != 'crashed'",
    ],
)
@pytest.mark.parametrize(
    "order",
    [
        ["metrics.val_acc desc"],
        ["metrics.val_acc"],
        ["max(metrics.val_acc) desc", "name"],
        ["metrics.val_acc desc", "max(metrics.val_acc)"],
        ["count(metrics.val_acc)", "metrics.val_acc desc"],
        ["name desc"],
    ],
)
def test_sorted_search_gives_the_plain_answer(
    store: SqlStore, query: str, order: list[str]
) -> None:
    """A metric sort key joined to runs (compile_search) changes no page, nor its order."""
    _more_runs(store)
    everything = _reference(store, query, order, 100, 0)
    for limit, offset in ((100, 0), (3, 0), (3, 2), (2, 5)):
        got = [r.id for r in store.search_runs("p", query, order_by=order, limit=limit,
                                               offset=offset)]  # fmt: skip
        assert got == everything[offset : offset + limit], (limit, offset)
    assert store.count_runs("p", query) == len(everything)


def _page_statement(store: SqlStore, query: str, order: list[str]) -> tuple[str, Any]:
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
        seen.append((stmt, params))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.search_runs("p", query, order_by=order, limit=50)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    return next((st, p) for st, p in seen if "ORDER BY" in st)


@pytest.mark.parametrize("analyzed", [False, True])
def test_sorted_search_reads_the_metric_index_in_order(store: SqlStore, analyzed: bool) -> None:
    """The issue's page: runs come off ix_metric_summary_key_last_run in sort order, so
    the scan stops after a page; with table statistics (ANALYZE) too."""
    query = (
        "metrics.val_acc > 0.9 and (params.optimizer = 'adam' or params.optimizer in "
        "('sgd','rmsprop')) and tags.team = 'cv' and status != 'crashed' and name like 'r%'"
    )
    if analyzed:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    stmt, params = _page_statement(store, query, ["metrics.val_acc desc"])
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).all()
            plan = " | ".join(str(r[-1]) for r in rows)
            assert "INDEX ix_metric_summary_key_last_run (key=? AND last_value>?)" in plan, plan
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan  # only "FOR RIGHT PART OF"
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: what it *can* do
            conn.exec_driver_sql("SET enable_sort = off")
            rows = conn.exec_driver_sql("EXPLAIN " + stmt, params).all()
            plan = " | ".join(str(r[0]) for r in rows)
            assert "Backward using ix_metric_summary_key_last_run" in plan, plan
