"""Search at scale: 100,000 runs x 20 params x 10 metrics, in SQLite and PostgreSQL.

    .venv/bin/python bench/bench_search.py            # writes bench/results/search.json
    .venv/bin/python bench/bench_search.py --quick    # 10,000 runs: search-quick.json
    make bench BENCH_ARGS="--quick --only search"   # run.py's --quick sets MLTRAIL_BENCH_QUICK

Issue #6's targets, per backend: the first page (50) of the issue's query in <= 100 ms,
``count_runs`` of it in <= 300 ms, and creating the 100,000 runs through the public API
in <= 60 s.

Every run's content comes from ``workloads/search_child.run_data(i)`` (seeded per run):
20 params, tags ``team``/``stage``/``owner``, one final value for each of 10 metrics,
3 % crashed and 2 % failed. The parent computes the ground truth from the same function
and checks every count and first page against it.

How the runs are made, per backend (every step a fresh process, timed by the parent):

1. ``api``: ``mltrail.init(config=..., tags=..., name=...)``, ``run.log(10 metrics)``,
   ``run.finish()``, 2 processes in parallel, with capture off
   (``MLTRAIL_CAPTURE_PACKAGES=0 MLTRAIL_CAPTURE_GIT=0 MLTRAIL_SYSTEM_INTERVAL=0
   MLTRAIL_CONSOLE=off``). The public API is too slow to make 100,000 runs inside the
   benchmark's time, so it makes the first N (10,000; 500 with --quick;
   ``MLTRAIL_BENCH_SEARCH_API_RUNS`` sets it) and 100,000 runs' time is extrapolated
   from its rate (and says so).
2. ``api_default_capture``: the same with mltrail's default capture, in this repository
   (git, packages, console), fewer runs.
3. ``store_methods``: ``SqlStore.create_run / log_params / write_metrics / update_run``,
   one run at a time, one process.
4. ``bulk``: the rest, ``executemany`` into the store's tables (2,000 runs per
   transaction), rows built with the store's own encoders; checked against a run the
   store methods wrote (``parity_problems`` must be empty).

Queries run in a fresh process through ``mltrail.Client``: the first call and the median
of 5 more, for the first page and the count (and page 2 through ``next_cursor``, and
page 101), on the data as loaded and again after
``ANALYZE``. Each statement the store runs is timed and its plan stored (``EXPLAIN QUERY
PLAN`` / ``EXPLAIN (ANALYZE, BUFFERS)``). A statement's ``ms`` is its DBAPI ``execute``
call: SQLite computes most rows while they are fetched, after it, so there the call's
total (``median_ms``) is the figure to read. Nothing is ANALYZEd by mltrail itself: the
plans do not depend on statistics (``tests/store/test_search.py`` checks both ways);
PostgreSQL's autovacuum analyzes on its own schedule (``pg_last_analyze`` says when).

MLflow (its venv, SQLite backend) gets the same runs, 10,000 of them: the first 300
(200 with --quick) made through ``MlflowClient.create_run + log_batch + set_terminated``
(its rate reported), the rest inserted into its tables with the same shape. Its filter
language has no OR and no IN for params, so it runs the AND part
(``params.optimizer = 'adam'``). It has no count: ``count_by_listing`` fetches every match.

PostgreSQL: a throwaway cluster as in tests/conftest.py (``initdb``/``pg_ctl`` as the
postgres user, fsync off, a free port on 127.0.0.1), stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CHILD = BENCH_DIR / "workloads" / "search_child.py"
WORK_ROOT = BENCH_DIR / ".work"
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "workloads"))

import search_child as sc  # noqa: E402

TARGETS = {"page_ms": 100.0, "count_ms": 300.0, "create_100k_s": 60.0}
LEAN_ENV = {
    "MLTRAIL_CAPTURE_PACKAGES": "0",
    "MLTRAIL_CAPTURE_GIT": "0",
    "MLTRAIL_SYSTEM_INTERVAL": "0",
    "MLTRAIL_CONSOLE": "off",
}
CHILD_TIMEOUT_S = 3600


def sizes(quick: bool) -> dict[str, int]:
    """Runs per step; MLTRAIL_BENCH_SEARCH_API_RUNS overrides the public-API count."""
    if quick:
        n = {"runs": 10_000, "api": 500, "api_default": 100, "store": 500,
             "mlflow": 10_000, "mlflow_client": 200}  # fmt: skip
    else:
        n = {"runs": 100_000, "api": 10_000, "api_default": 300, "store": 1_000,
             "mlflow": 10_000, "mlflow_client": 300}  # fmt: skip
    api = os.environ.get("MLTRAIL_BENCH_SEARCH_API_RUNS")
    if api:
        n["api"] = min(int(api), n["runs"] - n["api_default"] - n["store"])
    return n


def log(msg: str) -> None:
    print(f"[search {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _mltrail_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _env(lean: bool, local: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
    env["MLTRAIL_DIR"] = str(local)  # spool files (PostgreSQL has no folder of its own)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if lean:
        env.update(LEAN_ENV)
    return env


def _parse(proc_out: str, proc_err: str, rc: int) -> dict[str, Any]:
    for line in reversed(proc_out.strip().splitlines()):
        if line.startswith("{"):
            try:
                result: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                break
            if not result.get("ok"):
                result["stderr_tail"] = proc_err[-2000:]
            return result
    return {"ok": False, "error": f"exit {rc}, no JSON line", "stderr_tail": proc_err[-3000:]}


def child(python: str, *args: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """One child process; its JSON line, plus the parent's wall time."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [python, str(CHILD), *args],
            capture_output=True, text=True, env=env, cwd=cwd, timeout=CHILD_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {CHILD_TIMEOUT_S} s"}
    result = _parse(proc.stdout, proc.stderr, proc.returncode)
    result["wall_s"] = time.perf_counter() - t0
    return result


def parallel(
    python: str, mode: str, uri: str, start: int, stop: int, procs: int, *,
    env: dict[str, str], cwd: Path,
) -> dict[str, Any]:  # fmt: skip
    """``procs`` children on contiguous slices of [start, stop); wall time of them all."""
    bounds = [start + (stop - start) * k // procs for k in range(procs + 1)]
    t0 = time.perf_counter()
    pipe = subprocess.PIPE
    running = [
        subprocess.Popen(
            [python, str(CHILD), mode, uri, str(lo), str(hi)],
            stdout=pipe,
            stderr=pipe,
            text=True,
            env=env,
            cwd=cwd,
        )
        for lo, hi in itertools.pairwise(bounds)
    ]
    parts = []
    for p in running:
        try:
            out, err = p.communicate(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        parts.append(_parse(out, err, p.returncode))
    wall = time.perf_counter() - t0
    n = stop - start
    result: dict[str, Any] = {
        "ok": all(p.get("ok") for p in parts),
        "runs": n,
        "processes": procs,
        "wall_s": wall,
        "runs_per_s": n / wall if wall else None,
        "children": parts,
    }
    if result["ok"]:  # inside the children: without interpreter start and imports
        result["in_process_runs_per_s"] = n / max(p["seconds"] for p in parts)
    else:
        result["error"] = "; ".join(str(p.get("error")) for p in parts if not p.get("ok"))
    return result


# -- ground truth --------------------------------------------------------------------------


def ground_truth(n: int, n_mlflow: int) -> dict[str, Any]:
    full, simple, mlflow_and, mlflow_simple = [], [], 0, 0
    for i in range(n):
        name, params, tags, metrics, status = sc.run_data(i)
        acc = metrics["val_acc"]
        if acc > 0.9:
            simple.append((acc, name))
            if i < n_mlflow:
                mlflow_simple += 1
        if sc.matches_full(i):
            full.append((acc, name))
        if (
            i < n_mlflow
            and acc > 0.9
            and params["optimizer"] == "adam"
            and tags["team"] == "cv"
            and status != "crashed"
            and name.startswith("run-1")
        ):
            mlflow_and += 1
    full.sort(reverse=True)
    simple.sort(reverse=True)
    return {
        "full": {"count": len(full), "page": [nm for _, nm in full[: sc.PAGE]]},
        "simple": {"count": len(simple), "page": [nm for _, nm in simple[: sc.PAGE]]},
        "mlflow_and_part_count": mlflow_and,
        "mlflow_simple_count": mlflow_simple,
    }


def check(query_result: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Counts and first pages against the ground truth."""
    out: dict[str, Any] = {}
    for label in ("full", "simple"):
        res = query_result.get(label, {})
        page, count = res.get("page", {}), res.get("count", {})
        out[label] = {
            "count_correct": count.get("value") == truth[label]["count"],
            "page_correct": page.get("names") == truth[label]["page"],
        }
    return out


# -- PostgreSQL ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg(*cmd: str) -> None:
    argv = [str(PGBIN / cmd[0]), *cmd[1:]]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextmanager
def postgres() -> Iterator[dict[str, Any]]:
    """A throwaway cluster on loopback (as tests/conftest.py), with a database ``bench``."""
    if not (PGBIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL server binaries not found in {PGBIN} (set PGBIN)")
    base = Path(tempfile.mkdtemp(prefix="mltpg-bench-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", _free_port()
    started = False
    try:
        _pg(
            "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        opts = (
            f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        _pg("pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "30",
            "-o", opts, "start")  # fmt: skip
        started = True
        _pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench")
        version = subprocess.run(
            [str(PGBIN / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()
        yield {
            "uri": f"postgresql://postgres@127.0.0.1:{port}/bench",
            "version": version,
            "settings": "fsync=off synchronous_commit=off full_page_writes=off",
        }
    finally:
        if started:
            _pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


# -- the benchmark -------------------------------------------------------------------------


def bench_backend(
    backend: str, uri: str, n: dict[str, int], local: Path, truth: dict[str, Any]
) -> dict[str, Any]:
    py = _mltrail_python()
    lean, default = _env(True, local), _env(False, local)
    cwd = local.parent
    out: dict[str, Any] = {"uri": uri.split("@")[-1] if "@" in uri else uri}
    out["init"] = child(py, "init", uri, env=lean, cwd=cwd)
    if not out["init"].get("ok"):
        return out
    a, c, s = n["api"], n["api_default"], n["store"]
    log(f"{backend}: {a} runs through the public API (capture off, 2 processes)")
    api = parallel(py, "api", uri, 0, a, 2, env=lean, cwd=cwd)
    api["env"] = LEAN_ENV
    if api["ok"]:
        rate = api["runs_per_s"]
        api["extrapolated_100k_s"] = 100_000 / rate
        api["extrapolated"] = a < 100_000
    out["create_api"] = api
    log(f"{backend}:   {api.get('runs_per_s') or 0:.1f} runs/s; {c} with default capture")
    dflt = parallel(py, "api", uri, a, a + c, 2, env=default, cwd=REPO)
    dflt["env"] = "mltrail defaults (git, packages, console, system metrics), cwd = this repo"
    if dflt["ok"]:
        dflt["extrapolated_100k_s"] = 100_000 / dflt["runs_per_s"]
    out["create_api_default_capture"] = dflt
    log(f"{backend}:   {dflt.get('runs_per_s') or 0:.1f} runs/s; {s} through store methods")
    store = child(py, "store", uri, str(a + c), str(a + c + s), env=lean, cwd=cwd)
    if store.get("ok"):
        store["runs_per_s"] = store["runs"] / store["seconds"]
    out["create_store_methods"] = store
    log(f"{backend}:   {store.get('runs_per_s') or 0:.1f} runs/s; bulk-loading the rest")
    bulk = child(py, "bulk", uri, str(a + c + s), str(n["runs"]), str(a + c), env=lean, cwd=cwd)
    if bulk.get("ok"):
        bulk["runs_per_s"] = bulk["runs"] / bulk["seconds"]
        if bulk["parity_problems"]:
            bulk["ok"] = False
            bulk["error"] = "bulk rows differ from the store's: " + "; ".join(
                bulk["parity_problems"]
            )
    out["create_bulk"] = bulk
    if not all(out[k].get("ok") for k in ("create_api", "create_store_methods", "create_bulk")):
        log(f"{backend}: creating runs failed; queries skipped")
        return out
    log(f"{backend}:   {bulk.get('runs_per_s') or 0:.0f} runs/s; queries")
    for label, analyze in (("query", "0"), ("query_after_analyze", "1")):
        q = child(py, "query", uri, analyze, env=lean, cwd=cwd)
        if q.get("ok"):
            q["correct"] = check(q, truth)
        out[label] = q
    return out


def bench_mlflow(work: Path, n: dict[str, int], truth: dict[str, Any]) -> dict[str, Any]:
    from peers import ensure_peer

    env_info = ensure_peer("mlflow", BENCH_DIR / ".venvs", log)
    if env_info.python is None:
        return {"ok": False, "error": f"mlflow venv: {env_info.error}"}
    py = str(env_info.python)
    folder = work / "mlflow"
    folder.mkdir()
    db = str(folder / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    m, mc = n["mlflow"], n["mlflow_client"]
    log(f"mlflow: {mc} runs through MlflowClient, 1 process")
    out: dict[str, Any] = {"ok": True, "runs": m}
    made = child(py, "mlflow_create", db, "0", str(mc), env=env, cwd=folder)
    if made.get("ok"):
        made["runs_per_s"] = made["runs"] / made["seconds"]
        made["how"] = "MlflowClient.create_run + log_batch(params, metrics, tags) + set_terminated"
    out["create_client"] = made
    log(f"mlflow:   {made.get('runs_per_s') or 0:.1f} runs/s; bulk-loading to {m}")
    bulk = child(py, "mlflow_bulk", db, str(mc), str(m), env=env, cwd=folder)
    if bulk.get("ok"):
        bulk["how"] = "executemany into runs/params/tags/metrics/latest_metrics"
    out["create_bulk"] = bulk
    if not (made.get("ok") and bulk.get("ok")):
        out["ok"] = False
        return out
    log("mlflow:   queries")
    out["query"] = q = child(py, "mlflow_query", db, env=env, cwd=folder)
    if q.get("ok"):
        counted = {k: q[k].get("count_by_listing", {}).get("value") for k in ("and_part", "simple")}
        out["correct"] = {
            "and_part_count": counted["and_part"] == truth["mlflow_and_part_count"],
            "simple_count": counted["simple"] == truth["mlflow_simple_count"],
        }
    out["version"] = made.get("version")
    return out


def _headline(backend: dict[str, Any], label: str) -> dict[str, Any]:
    q = backend.get(label, {})
    row: dict[str, Any] = {}
    for name in ("full", "simple"):
        for what in ("page", "count"):
            e = q.get(name, {}).get(what, {})
            row[f"{name}_{what}_ms"] = round(e["median_ms"], 1) if e.get("ok") else None
    return row


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"runs": results["sizes"]["runs"], "mode": results["mode"]}
    for backend in ("sqlite", "postgresql"):
        b = results["backends"].get(backend, {})
        if not b:
            continue
        api = b.get("create_api", {})
        head: dict[str, Any] = {
            "api_runs_per_s": round(api["runs_per_s"], 1) if api.get("ok") else None,
            "api_100k_s_extrapolated": (
                round(api["extrapolated_100k_s"]) if api.get("ok") else None
            ),
            "api_default_capture_runs_per_s": (
                round(b["create_api_default_capture"]["runs_per_s"], 1)
                if b.get("create_api_default_capture", {}).get("ok")
                else None
            ),
            "as_loaded": _headline(b, "query"),
            "after_analyze": _headline(b, "query_after_analyze"),
            "correct": b.get("query", {}).get("correct"),
        }
        page, count = head["as_loaded"]["full_page_ms"], head["as_loaded"]["full_count_ms"]
        head["targets"] = {
            "page_le_100ms": page is not None and page <= TARGETS["page_ms"],
            "count_le_300ms": count is not None and count <= TARGETS["count_ms"],
            "create_100k_le_60s": (
                head["api_100k_s_extrapolated"] is not None
                and head["api_100k_s_extrapolated"] <= TARGETS["create_100k_s"]
            ),
        }
        summary[backend] = head
    mf = results.get("mlflow", {})
    if mf.get("query", {}).get("ok"):
        q = mf["query"]
        summary["mlflow"] = {
            "runs": mf["runs"],
            "client_runs_per_s": round(mf["create_client"]["runs_per_s"], 1),
            "correct": mf.get("correct"),
            **{
                f"{label}_{what}_ms": (
                    round(q[label][what]["median_ms"], 1) if q[label][what].get("ok") else None
                )
                for label in ("and_part", "simple")
                for what in ("page", "count_by_listing")
            },
        }
    elif mf:
        summary["mlflow"] = {"ok": False, "error": mf.get("error")}
    return summary


def run(results_dir: Path, *, quick: bool | None = None) -> dict[str, Any]:
    """Measure, write ``results_dir/search.json`` (``search-quick.json``), return headlines."""
    if quick is None:
        quick = os.environ.get("MLTRAIL_BENCH_QUICK", "") not in ("", "0")
    n = sizes(quick)
    start = time.perf_counter()
    if WORK_ROOT.exists():
        for old in WORK_ROOT.glob("search-*"):
            shutil.rmtree(old, ignore_errors=True)
    work = WORK_ROOT / time.strftime("search-%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    results: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if quick else "full",
        "sizes": n,
        "targets": TARGETS,
        "query": sc.FULL_QUERY,
        "simple_query": sc.SIMPLE_QUERY,
        "order_by": sc.ORDER,
        "mlflow_queries": {"and_part": sc.MLFLOW_AND_QUERY, "in_equivalent": sc.MLFLOW_IN_QUERY},
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        },
        "backends": {},
    }
    try:
        log(f"ground truth for {n['runs']} runs")
        truth = ground_truth(n["runs"], n["mlflow"])
        results["ground_truth"] = {
            k: (v["count"] if isinstance(v, dict) else v) for k, v in truth.items()
        }
        for backend in ("sqlite", "postgresql"):
            local = work / backend / "local"
            local.mkdir(parents=True)
            try:
                if backend == "sqlite":
                    uri = f"sqlite:///{work / backend / 'mltrail.db'}"
                    results["backends"][backend] = bench_backend(backend, uri, n, local, truth)
                    db = work / backend / "mltrail.db"
                    results["backends"][backend]["db_bytes"] = sum(
                        p.stat().st_size for p in db.parent.glob("mltrail.db*")
                    )
                else:
                    with postgres() as pg:
                        res = bench_backend(backend, pg["uri"], n, local, truth)
                        res["server"] = {k: pg[k] for k in ("version", "settings")}
                        results["backends"][backend] = res
            except Exception as exc:  # recorded, the other backend still runs
                error = f"{type(exc).__name__}: {exc}"
                results["backends"][backend] = {"ok": False, "error": error}
                log(f"{backend} failed: {exc}")
        try:
            results["mlflow"] = bench_mlflow(work, n, truth)
        except Exception as exc:
            results["mlflow"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = time.perf_counter() - start
    results["summary"] = summarize(results)
    results_dir.mkdir(parents=True, exist_ok=True)
    name = "search-quick.json" if quick else "search.json"
    (results_dir / name).write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {results_dir / name} in {results['duration_s']:.0f} s")
    return dict(results["summary"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 runs instead of 100,000")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    summary = run(args.results_dir, quick=args.quick or None)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
