"""The child side of bench_search.py: one mode per process, one JSON line on stdout.

Standard library plus the tool under test (mltrail in the project's venv, MLflow in its
own). Every run's content comes from ``run_data(i)``, so each process, each tool and the
parent's ground truth see the same 100,000 (or 10,000) runs.

    python search_child.py init URI                      # schema + project
    python search_child.py api URI START STOP            # mltrail.init / log / finish
    python search_child.py store URI START STOP          # SqlStore methods, one run at a time
    python search_child.py bulk URI START STOP CHECK_I   # executemany into the store's tables
    python search_child.py query URI ANALYZE(0|1)        # search_runs / count_runs timings
    python search_child.py mlflow_create DB START STOP
    python search_child.py mlflow_bulk DB START STOP     # executemany into MLflow's tables
    python search_child.py mlflow_query DB
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import traceback
from typing import Any

PROJECT = "bench"
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw", "lamb")
TEAMS = ("cv", "nlp", "rl", "speech")
MODELS = ("resnet18", "resnet50", "vit-b16", "bert-base", "gpt2-small", "mlp")

# The query, and a simple one; both sorted by val_acc, first page of 50.
FULL_QUERY = (
    "metrics.val_acc > 0.9 and (params.optimizer = 'adam' or params.optimizer in "
    "('sgd','rmsprop')) and tags.team = 'cv' and status != 'crashed' and name like 'run-1%'"
)
SIMPLE_QUERY = "metrics.val_acc > 0.9"
ORDER = ["metrics.val_acc desc"]
PAGE = 50
REPEATS = 5

# MLflow has no OR: the AND part (optimizer = 'adam'). mltrail's "crashed" is stored as
# KILLED in MLflow (it has no crashed status), so "status != 'crashed'" maps to that.
MLFLOW_STATUS = {"finished": "FINISHED", "failed": "FAILED", "crashed": "KILLED"}
MLFLOW_AND_QUERY = (
    "metrics.val_acc > 0.9 and params.optimizer = 'adam' and tags.team = 'cv' "
    "and attributes.status != 'KILLED' and attributes.run_name LIKE 'run-1%'"
)
MLFLOW_IN_QUERY = (
    "metrics.val_acc > 0.9 and params.optimizer IN ('adam', 'sgd', 'rmsprop') "
    "and tags.team = 'cv' and attributes.status != 'KILLED' "
    "and attributes.run_name LIKE 'run-1%'"
)


def run_data(i: int) -> tuple[str, dict[str, Any], dict[str, str], dict[str, float], str]:
    """Run ``i``: name, 20 params, 3 tags, 10 final metric values, final status."""
    r = random.Random(i)
    params: dict[str, Any] = {
        "optimizer": OPTIMIZERS[r.randrange(len(OPTIMIZERS))],
        "lr": round(10 ** r.uniform(-5, -1), 8),
        "batch_size": r.choice((32, 64, 128, 256)),
        "epochs": r.randrange(1, 101),
        "dropout": round(r.uniform(0, 0.5), 3),
        "weight_decay": round(10 ** r.uniform(-6, -2), 8),
        "model": r.choice(MODELS),
        "seed": i,
        "warmup_steps": r.randrange(0, 5000),
        "momentum": round(r.uniform(0.8, 0.99), 3),
        "beta1": 0.9,
        "beta2": 0.999,
        "grad_clip": r.choice((0.5, 1.0, 5.0)),
        "scheduler": r.choice(("cosine", "linear", "step", "none")),
        "num_layers": r.randrange(2, 48),
        "hidden_size": r.choice((128, 256, 512, 768, 1024)),
        "label_smoothing": r.choice((0.0, 0.1)),
        "amp": r.random() < 0.5,
        "dataset": r.choice(("imagenet", "cifar10", "squad", "librispeech")),
        "augment": r.choice(("none", "light", "heavy")),
    }
    tags = {
        "team": TEAMS[r.randrange(len(TEAMS))],
        "stage": r.choice(("dev", "prod")),
        "owner": f"user{i % 50}",
    }
    val_acc = r.uniform(0.5, 1.0)
    val_loss = r.uniform(0.01, 2.0)
    metrics = {
        "val_acc": val_acc,
        "train_acc": min(1.0, val_acc + r.uniform(0, 0.05)),
        "test_acc": max(0.0, val_acc - r.uniform(0, 0.05)),
        "val_loss": val_loss,
        "train_loss": val_loss * r.uniform(0.5, 1.0),
        "val_f1": r.uniform(0.4, 1.0),
        "val_precision": r.uniform(0.4, 1.0),
        "val_recall": r.uniform(0.4, 1.0),
        "epoch_time_s": r.uniform(10, 600),
        "throughput": r.uniform(100, 10_000),
    }
    u = r.random()
    status = "crashed" if u < 0.03 else "failed" if u < 0.05 else "finished"
    return f"run-{i}", params, tags, metrics, status


def matches_full(i: int) -> bool:
    """The ground truth of FULL_QUERY for run ``i``."""
    name, params, tags, metrics, status = run_data(i)
    return (
        metrics["val_acc"] > 0.9
        and params["optimizer"] in ("adam", "sgd", "rmsprop")
        and tags["team"] == "cv"
        and status != "crashed"
        and name.startswith("run-1")
    )


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str), flush=True)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


# -- mltrail: creating runs ---------------------------------------------------------------


def mode_init(uri: str) -> dict[str, Any]:
    """Create the schema (and the project) before parallel writers start."""
    from mltrail.store import open_store

    t0 = time.perf_counter()
    store: Any = open_store(uri)
    store.get_or_create_project(PROJECT)
    store.close()
    return {"seconds": time.perf_counter() - t0}


def mode_api(uri: str, start: int, stop: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import mltrail

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(start, stop):
        name, params, tags, metrics, status = run_data(i)
        run = mltrail.init(project=PROJECT, uri=uri, config=params, tags=tags, name=name)
        run.log(metrics)
        run.finish(status)
    seconds = time.perf_counter() - t0
    return {"runs": stop - start, "seconds": seconds, "import_s": import_s}


def mode_store(uri: str, start: int, stop: int) -> dict[str, Any]:
    """One run at a time through the store's own methods (what a bulk import could use)."""
    from array import array

    from mltrail.series import Series
    from mltrail.store import open_store

    store: Any = open_store(uri)
    t0 = time.perf_counter()
    for i in range(start, stop):
        name, params, tags, metrics, status = run_data(i)
        run_id = f"s{i:010d}"
        now = time.time()
        store.create_run(
            run_id=run_id, project=PROJECT, name=name, user="bench", group=None,
            job_type=None, parent_id=None, notes="", tags=tags, metadata={}, started_at=now,
        )  # fmt: skip
        store.log_params(run_id, params)
        one = {
            k: Series(array("q", [0]), array("d", [v]), array("d", [now]))
            for k, v in metrics.items()
        }
        store.write_metrics(run_id, one)
        store.update_run(run_id, status=status, ended_at=time.time(), exit_code=0)
    seconds = time.perf_counter() - t0
    store.close()
    return {"runs": stop - start, "seconds": seconds}


def _bulk_rows(
    i: int, run_id: str, base: dict[str, Any], seq: int, now: float
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[Any], list[Any]]:
    """The rows SqlStore's create_run / log_params / write_metrics / update_run would write."""
    from array import array

    from mltrail.series import Series
    from mltrail.store.encoding import encode_param
    from mltrail.store.sql.chunks import pack
    from mltrail.store.sql.store import _merge_summary

    name, params, tags, metrics, status = run_data(i)
    run = dict(base)
    run.update(
        id=run_id, seq=seq, name=name, status=status, created_at=now, started_at=now,
        heartbeat_at=now, ended_at=now + 1.0, exit_code=0, exit_reason=None,
    )  # fmt: skip
    prow = []
    for k, v in params.items():
        text, num = encode_param(v)
        prow.append(
            {
                "run_id": run_id,
                "key": k,
                "value_json": text,
                "value_num": num,
                "value_text": v if isinstance(v, str) else text,
            }
        )
    trow = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
    chunks, summaries = [], []
    for k, v in metrics.items():
        series = Series(array("q", [0]), array("d", [v]), array("d", [now]))
        chunks.append(
            {
                "run_id": run_id, "key": k, "seq": 0, "first_step": 0, "last_step": 0,
                "num_points": 1, "ordered": True, "data": pack(series),
            }
        )  # fmt: skip
        summaries.append(_merge_summary(run_id, k, None, series, True))
    return run, prow, trow, chunks, summaries


_VOLATILE = {"created_at", "started_at", "heartbeat_at", "ended_at", "last_timestamp", "data"}


def _parity(conn: Any, s: Any, i: int, run_id: str, base: dict[str, Any]) -> list[str]:
    """Differences between what the store's methods wrote for run ``i`` and _bulk_rows(i)."""
    from sqlalchemy import select

    run, prow, trow, chunks, summaries = _bulk_rows(i, run_id, base, 0, 0.0)
    problems: list[str] = []
    expect = {"runs": [run], "params": prow, "tags": trow}
    expect.update({"metric_chunks": chunks, "metric_summary": summaries})
    for table_name, rows in expect.items():
        table = s.metadata.tables[table_name]
        key = table.c.id if table_name == "runs" else table.c.run_id
        stored = [dict(r._mapping) for r in conn.execute(select(table).where(key == run_id))]
        if len(stored) != len(rows):
            problems.append(f"{table_name}: {len(stored)} stored rows, bulk makes {len(rows)}")
            continue
        order = "id" if table_name == "runs" else "key"
        for got, want in zip(
            sorted(stored, key=lambda r: r[order]),
            sorted(rows, key=lambda r: r[order]),
            strict=True,
        ):
            for col in set(got) | set(want):
                if col in _VOLATILE or col in ("seq", "user", "metadata_json", "exit_reason"):
                    continue
                if col not in want:
                    problems.append(f"{table_name}.{col}: written by the store, not by bulk")
                elif got.get(col) != want[col]:
                    problems.append(f"{table_name}.{col}: store {got.get(col)!r} != {want[col]!r}")
    return problems


def mode_bulk(uri: str, start: int, stop: int, check_i: int) -> dict[str, Any]:
    """executemany (PostgreSQL: COPY) into the store's tables, 2,000 runs per transaction."""
    from sqlalchemy import func, select

    from mltrail.store import open_store
    from mltrail.store.sql import schema as s

    store: Any = open_store(uri)
    engine = store.engine
    with engine.begin() as conn:
        # A run the public API created is the template of the runs row (captured metadata).
        tmpl = conn.execute(select(s.runs).order_by(s.runs.c.created_at).limit(1)).first()
        if tmpl is None:
            raise RuntimeError("bulk load needs a run created through the API first")
        base = dict(tmpl._mapping)
        seq0 = conn.execute(select(func.max(s.runs.c.seq))).scalar_one() or 0
        problems = []
        if check_i >= 0:
            problems = _parity(conn, s, check_i, f"s{check_i:010d}", base)
    t0 = time.perf_counter()
    batch = 2000
    for lo in range(start, stop, batch):
        runs, prows, trows, crows, srows = [], [], [], [], []
        now = time.time()
        for i in range(lo, min(stop, lo + batch)):
            run, p, t, c, m = _bulk_rows(i, f"b{i:010d}", base, seq0 + 1 + i - start, now)
            runs.append(run)
            prows += p
            trows += t
            crows += c
            srows += m
        with engine.begin() as conn:
            # The DBAPI cursor of this transaction: SQLAlchemy's per-row parameter
            # processing costs more than the database does here.
            cur = conn.connection.cursor()
            for table, rows in (
                (s.runs, runs), (s.params, prows), (s.tags, trows),
                (s.metric_chunks, crows), (s.metric_summary, srows),
            ):  # fmt: skip
                cols = list(rows[0])
                names = ", ".join(f'"{c}"' for c in cols)
                if store.dialect == "postgresql":  # COPY: executemany is a round trip a row
                    with cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(tuple(r[c] for c in cols))
                    continue
                marks = ", ".join(["?"] * len(cols))
                cur.executemany(
                    f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
                    [tuple(r[c] for c in cols) for r in rows],
                )
            cur.close()
    seconds = time.perf_counter() - t0
    store.close()
    return {"runs": stop - start, "seconds": seconds, "parity_problems": problems}


# -- mltrail: queries -------------------------------------------------------------------


class _Recorder:
    """SQL statements (with parameters and time) the store runs inside ``capture()``."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.on = False
        self.statements: list[dict[str, Any]] = []
        self._t = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
        self._t = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
        if self.on:
            ms = (time.perf_counter() - self._t) * 1e3
            self.statements.append({"sql": stmt, "params": params, "ms": ms})


def _explain(engine: Any, dialect: str, stmt: str, params: Any) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + stmt, params).all()
    if dialect == "sqlite":
        return [f"{r[0]}|{r[1]}| {r[3]}" for r in rows]
    return [str(r[0]) for r in rows]


def _timed(fn: Any) -> tuple[Any, list[float]]:
    out, samples = None, []
    for _ in range(1 + REPEATS):
        t = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t)
    return out, samples


def _next_pages(client: Any, query: str, cursor: str) -> dict[str, Any]:
    """Page 2 through ``next_cursor``, and page 101 (the cursor holds an offset)."""
    from mltrail.store.sql.search import encode_cursor

    out: dict[str, Any] = {}
    for label, cur in (("page2", cursor), ("page101_offset_5000", encode_cursor(100 * PAGE))):

        def fetch(c: str = cur) -> Any:
            return client.search_runs(
                project=PROJECT, query=query, order_by=ORDER, limit=PAGE, cursor=c
            )

        try:
            value, samples = _timed(fetch)
        except Exception as exc:
            out[label] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        out[label] = {"ok": True, "rows": len(value), "median_ms": _median_ms(samples[1:])}
    return out


def mode_query(uri: str, analyze: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    import mltrail

    client = mltrail.Client(uri)
    open_s = time.perf_counter() - t0
    store: Any = client.store
    engine, dialect = store.engine, store.dialect
    out: dict[str, Any] = {"open_client_s": open_s, "dialect": dialect, "analyzed": analyze}
    if analyze:
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        out["analyze_s"] = time.perf_counter() - t
    if dialect == "postgresql":
        with engine.connect() as conn:
            out["pg_last_analyze"] = {
                r[0]: [str(r[1]), str(r[2])]
                for r in conn.exec_driver_sql(
                    "SELECT relname, last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                    "WHERE relname IN ('runs','params','tags','metric_summary')"
                )
            }
    rec = _Recorder(engine)
    for label, query in (("full", FULL_QUERY), ("simple", SIMPLE_QUERY)):
        res: dict[str, Any] = {"query": query, "order_by": ORDER, "limit": PAGE}

        def page(q: str = query) -> Any:
            return client.search_runs(project=PROJECT, query=q, order_by=ORDER, limit=PAGE)

        def count(q: str = query) -> Any:
            return client.count_runs(project=PROJECT, query=q)

        for what, fn in (("page", page), ("count", count)):
            try:
                value, samples = _timed(fn)
            except Exception as exc:
                res[what] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                res[what]["traceback"] = traceback.format_exc()[-3000:]
                continue
            entry: dict[str, Any] = {
                "ok": True,
                "first_ms": samples[0] * 1e3,
                "median_ms": _median_ms(samples[1:]),
                "samples_ms": [x * 1e3 for x in samples[1:]],
            }
            if what == "page":
                entry["rows"] = len(value)
                entry["names"] = [r.name for r in value]
                entry["val_acc"] = [r.metrics["val_acc"].last for r in value]
                entry["has_next_cursor"] = bool(getattr(value, "next_cursor", None))
                if entry["has_next_cursor"]:
                    entry["page2"] = _next_pages(client, query, value.next_cursor)
            else:
                entry["value"] = int(value)
            # One more call with its SQL recorded, each statement timed and EXPLAINed.
            rec.statements, rec.on = [], True
            try:
                fn()
            finally:
                rec.on = False
            stmts = []
            for st in rec.statements:
                item = {"ms": st["ms"], "sql": st["sql"][:4000]}
                try:
                    item["plan"] = _explain(engine, dialect, st["sql"], st["params"])
                except Exception as exc:
                    item["plan_error"] = f"{type(exc).__name__}: {exc}"[:500]
                stmts.append(item)
            entry["statements"] = stmts
            res[what] = entry
        out[label] = res
    return out


# -- MLflow ---------------------------------------------------------------------------------


def _mlflow_client(db: str) -> Any:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def _experiment(client: Any) -> str:
    exp = client.get_experiment_by_name(PROJECT)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(client.create_experiment(PROJECT))
    except Exception:  # the other process made it first
        return str(client.get_experiment_by_name(PROJECT).experiment_id)


def mode_mlflow_create(db: str, start: int, stop: int) -> dict[str, Any]:
    """create_run + one log_batch (params, metrics, tags) + set_terminated per run."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    t0 = time.perf_counter()
    client = _mlflow_client(db)
    exp_id = _experiment(client)
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(start, stop):
        name, params, tags, metrics, status = run_data(i)
        run = client.create_run(exp_id, run_name=name)
        ms = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, ms, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
            synchronous=True,
        )
        client.set_terminated(run.info.run_id, MLFLOW_STATUS[status])
    seconds = time.perf_counter() - t0
    return {
        "runs": stop - start,
        "seconds": seconds,
        "setup_s": setup_s,
        "version": mlflow.__version__,
    }


def mode_mlflow_bulk(db: str, start: int, stop: int) -> dict[str, Any]:
    """executemany into MLflow's SQLite tables, rows shaped like a client-made run's."""
    import sqlite3

    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    tmpl = con.execute("SELECT * FROM runs ORDER BY start_time LIMIT 1").fetchone()
    if tmpl is None:
        raise RuntimeError("bulk load needs a run created through MlflowClient first")
    base, old_id = dict(tmpl), tmpl["run_uuid"]
    extra_tags = {
        r["key"]: r["value"]
        for r in con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (old_id,))
        if r["key"].startswith("mlflow.") and r["key"] != "mlflow.runName"
    }
    t0 = time.perf_counter()
    batch = 2000
    for lo in range(start, stop, batch):
        runs, params, tags, metrics = [], [], [], []
        ms = int(time.time() * 1000)
        for i in range(lo, min(stop, lo + batch)):
            name, p, t, m, status = run_data(i)
            rid = f"{i:032x}"
            row = dict(base)
            row.update(
                run_uuid=rid, name=name, status=MLFLOW_STATUS[status], start_time=ms,
                end_time=ms + 1000, artifact_uri=base["artifact_uri"].replace(old_id, rid),
            )  # fmt: skip
            runs.append(row)
            params += [(k, str(v), rid) for k, v in p.items()]
            tags += [(k, v, rid) for k, v in {**extra_tags, **t, "mlflow.runName": name}.items()]
            metrics += [(k, v, ms, 0, 0, rid) for k, v in m.items()]
        cols = list(base)
        con.executemany(
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r[c] for c in cols) for r in runs],
        )
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            metrics,
        )
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            metrics,
        )
        con.commit()
    seconds = time.perf_counter() - t0
    con.close()
    return {"runs": stop - start, "seconds": seconds}


def mode_mlflow_query(db: str) -> dict[str, Any]:
    import mlflow

    t0 = time.perf_counter()
    client = _mlflow_client(db)
    exp_id = _experiment(client)
    out: dict[str, Any] = {"open_client_s": time.perf_counter() - t0, "version": mlflow.__version__}
    queries = (
        ("and_part", MLFLOW_AND_QUERY),
        ("in_equivalent", MLFLOW_IN_QUERY),
        ("simple", "metrics.val_acc > 0.9"),
    )
    for label, query in queries:
        res: dict[str, Any] = {"filter_string": query, "order_by": ["metrics.val_acc DESC"]}

        def page(q: str = query) -> Any:
            return client.search_runs(
                [exp_id], filter_string=q, order_by=["metrics.val_acc DESC"], max_results=PAGE
            )

        def count(q: str = query) -> int:
            # MLflow has no count: every matching run is fetched, 50,000 per page at most.
            n, token = 0, None
            while True:
                got = client.search_runs(
                    [exp_id], filter_string=q, max_results=50_000, page_token=token
                )
                n += len(got)
                token = got.token
                if not token:
                    return n

        for what, fn in (("page", page), ("count_by_listing", count)):
            try:
                value, samples = _timed(fn)
            except Exception as exc:
                res[what] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
                continue
            entry: dict[str, Any] = {
                "ok": True,
                "first_ms": samples[0] * 1e3,
                "median_ms": _median_ms(samples[1:]),
                "samples_ms": [x * 1e3 for x in samples[1:]],
            }
            if what == "page":
                entry["rows"] = len(value)
                entry["names"] = [r.info.run_name for r in value]
            else:
                entry["value"] = value
            res[what] = entry
        out[label] = res
    return out


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    try:
        if mode == "init":
            result = mode_init(args[0])
        elif mode == "api":
            result = mode_api(args[0], int(args[1]), int(args[2]))
        elif mode == "store":
            result = mode_store(args[0], int(args[1]), int(args[2]))
        elif mode == "bulk":
            result = mode_bulk(args[0], int(args[1]), int(args[2]), int(args[3]))
        elif mode == "query":
            result = mode_query(args[0], args[1] == "1")
        elif mode == "mlflow_create":
            result = mode_mlflow_create(args[0], int(args[1]), int(args[2]))
        elif mode == "mlflow_bulk":
            result = mode_mlflow_bulk(args[0], int(args[1]), int(args[2]))
        elif mode == "mlflow_query":
            result = mode_mlflow_query(args[0])
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    except Exception as exc:
        _emit(
            {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}"[:3000],
                "traceback": traceback.format_exc()[-4000:],
            }
        )
        return 1
    _emit({"ok": True, "loadavg_1m": round(os.getloadavg()[0], 2), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
