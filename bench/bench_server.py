"""Tracking through a server: ``mltrail server`` against ``mlflow server``, same machine, same run.

    .venv/bin/python bench/bench_server.py            # writes bench/results/server.json, .md
    .venv/bin/python bench/bench_server.py --quick    # 10x fewer points: server-quick.*
    make bench BENCH_ARGS="--only server"

Issue #8's targets, per mltrail store backend (SQLite; PostgreSQL when its binaries are
here, a throwaway cluster as in bench_search.py):

(a) ``single``: one process logs 1,000,000 points of one key through
    ``MLTRAIL_TRACKING_URI=http://...``; the time from the first ``run.log`` to
    ``finish()`` returning is <= 10 s, and every point is then readable from the server
    (``metric_summaries`` count and ``metric_history`` length are checked).
(b) ``multi``: 32 processes at once, each a run logging 10 keys per step for N steps;
    total points / wall time (first log of any process to the last ``finish()``) is
    >= 500,000 points/s. p50/p99 latency of the metric route is the client's view: each
    ``write_metrics`` call of the runs' background writers (one request each).

Every client process is started and has its run created before a start file appears,
so process start-up and ``init`` are not in the wall time. Clients run with capture off
(no git/package capture, no system metrics, no console capture).

(c) MLflow (its own venv, bench/.venvs/mlflow): ``mlflow server`` on SQLite, the same
two workloads through its client: ``MlflowClient.log_batch`` of 1,000 metrics for
``single``, ``mlflow.log_metrics`` (one request per step) for ``multi``. MLflow's N is
scaled down (it would take many minutes at full size); figures compare per point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
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
CHILD = BENCH_DIR / "workloads" / "server_child.py"
WORK_ROOT = BENCH_DIR / ".work"
MLFLOW_PY = BENCH_DIR / ".venvs" / "mlflow" / "bin" / "python"
sys.path.insert(0, str(BENCH_DIR))

TARGETS = {"single_1m_s": 10.0, "multi_points_per_s": 500_000.0}
PROCS = 32
KEYS = 10


def sizes(quick: bool) -> dict[str, dict[str, int]]:
    """Points per workload per tool (N steps)."""
    full = {
        "mltrail": {"single": 1_000_000, "multi_steps": 20_000},
        "mlflow": {"single": 20_000, "multi_steps": 60},
    }
    if not quick:
        return full
    return {t: {k: max(10, v // 10) for k, v in d.items()} for t, d in full.items()}


def log(msg: str) -> None:
    print(f"[bench server {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    env.update(
        MLTRAIL_CAPTURE_PACKAGES="0",
        MLTRAIL_CAPTURE_GIT="0",
        MLTRAIL_SYSTEM_INTERVAL="0",
        MLTRAIL_CONSOLE="off",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def server(
    cmd: list[str], url: str, log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Start a server process (its own session), wait for it to answer, stop it after."""
    env = {**_client_env(), **(env or {})}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited {proc.returncode}: {log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def clients(
    python: str, tool: str, mode: str, url: str, n: int, keys: int, procs: int, work: Path
) -> dict[str, Any]:
    """Start ``procs`` children, let them set up, start them together, collect results."""
    start_file = work / f"start-{tool}-{mode}-{time.monotonic_ns()}"
    children = [
        subprocess.Popen(
            [python, str(CHILD), tool, mode, url, str(n), str(keys), str(start_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_client_env(),
            cwd=work,
        )
        for _ in range(procs)
    ]
    deadline = time.monotonic() + 300
    while len(list(work.glob(start_file.name + ".ready.*"))) < procs:
        if any(c.poll() is not None for c in children) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    t_signal = time.time()
    start_file.touch()
    outs = []
    errors = []
    for c in children:
        out, err = c.communicate(timeout=1800)
        if c.returncode != 0:
            errors.append(err.strip()[-1500:])
            continue
        outs.append(json.loads(out.strip().splitlines()[-1]))
    if errors:
        return {"ok": False, "error": errors[0], "failed_processes": len(errors)}
    first = min(o["t_start"] for o in outs)
    last = max(o["t_finished"] for o in outs)
    logged = max(o["t_logged"] for o in outs)
    lat = [x for o in outs for x in o["latencies_s"]]
    points = n * keys * procs
    wall = last - first
    return {
        "ok": True,
        "processes": procs,
        "steps": n,
        "keys": keys,
        "points": points,
        "wall_s": round(wall, 3),
        "logging_s": round(logged - first, 3),
        "points_per_s": round(points / wall) if wall > 0 else None,
        "start_spread_s": round(first - t_signal, 3),
        "metric_requests": len(lat),
        "latency_p50_ms": None if not lat else round(statistics.median(lat) * 1000, 2),
        "latency_p99_ms": None if not lat else round(_pct(lat, 0.99) * 1000, 2),  # type: ignore[operator]
        "latency_max_ms": None if not lat else round(max(lat) * 1000, 2),
        "all_saved": all(o["saved"] for o in outs),
        "run_ids": [o["run_id"] for o in outs],
        "version": outs[0].get("version"),
    }


def check_mltrail(url: str, result: dict[str, Any], keys: list[str], per_key: int) -> None:
    """Every point reached the server: counts from the summaries, one full history read."""
    os.environ.pop("MLTRAIL_TRACKING_URI", None)
    import mltrail

    client = mltrail.Client(url)
    missing = 0
    for rid in result["run_ids"]:
        summaries = client.metric_summaries(rid)
        missing += sum(per_key - (summaries[k].count if k in summaries else 0) for k in keys)
    t = time.perf_counter()
    history = client.metric_history(result["run_ids"][0], keys[0])
    result["read_history_s"] = round(time.perf_counter() - t, 3)
    result["history_points"] = len(history)
    result["missing_points"] = missing
    result["all_readable"] = missing == 0 and len(history) == per_key
    from mltrail.store import close_all

    close_all()


def bench_mltrail(backend: str, store_uri: str, n: dict[str, int], work: Path) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    workers = int(os.environ.get("MLTRAIL_BENCH_SERVER_WORKERS", "1"))
    cmd = [sys.executable, "-m", "mltrail", "server", "--store", store_uri, "--objects",
           str(work / "objects"), "--port", str(port), "--workers", str(workers)]  # fmt: skip
    out: dict[str, Any] = {"server_workers": workers}
    with server(cmd, url, work / "server.log", work):
        log(f"{backend}: single run, {n['single']:,} points")
        single = clients(sys.executable, "mltrail", "single", url, n["single"], 1, 1, work)
        if single["ok"]:
            check_mltrail(url, single, ["loss"], n["single"])
            target = TARGETS["single_1m_s"] * n["single"] / 1_000_000
            single["target_s"] = target
            single["pass"] = single["wall_s"] <= target and single["all_readable"]
        out["single"] = single
        log(f"    {single.get('wall_s')} s, readable {single.get('all_readable')}")
        steps = n["multi_steps"]
        log(f"{backend}: {PROCS} runs x {KEYS} keys x {steps:,} steps")
        multi = clients(sys.executable, "mltrail", "multi", url, steps, KEYS, PROCS, work)
        if multi["ok"]:
            check_mltrail(url, multi, [f"m{k}" for k in range(KEYS)], steps)
            multi["target_points_per_s"] = TARGETS["multi_points_per_s"]
            multi["pass"] = (multi["points_per_s"] or 0) >= TARGETS["multi_points_per_s"] and multi[
                "all_readable"
            ]
        out["multi"] = multi
        log(f"    {multi.get('points_per_s')} points/s, p99 {multi.get('latency_p99_ms')} ms")
    return out


def bench_mlflow(n: dict[str, int], work: Path) -> dict[str, Any]:
    if not MLFLOW_PY.exists():
        return {"ok": False, "error": f"{MLFLOW_PY} missing: run bench/run.py once with peers"}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_bin = str(MLFLOW_PY.parent / "mlflow")
    cmd = [mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
           "--default-artifact-root", str(work / "mlruns"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]  # fmt: skip
    # its default pool (5 + 10 overflow) times out with 32 clients: give it one per client
    pool = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": str(PROCS + 4),
            "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "8"}  # fmt: skip
    out: dict[str, Any] = {"server_workers": 1, "server_env": pool}
    with server(cmd, url, work / "mlflow-server.log", work, env=pool):
        log(f"mlflow: single run, {n['single']:,} points (log_batch of 1,000)")
        out["single"] = clients(str(MLFLOW_PY), "mlflow", "single", url, n["single"], 1, 1, work)
        steps = n["multi_steps"]
        log(f"mlflow: {PROCS} runs x {KEYS} keys x {steps} steps (log_metrics per step)")
        out["multi"] = clients(str(MLFLOW_PY), "mlflow", "multi", url, steps, KEYS, PROCS, work)
    for part in ("single", "multi"):
        res = out[part]
        if res.get("ok"):
            res.pop("run_ids", None)
            log(f"    {part}: {res['points_per_s']} points/s, p99 {res['latency_p99_ms']} ms")
        else:
            log(f"    {part} failed: {str(res.get('error'))[:300]}")
    return out


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Tracking through a server",
        "",
        f"{results['machine']['platform']}, {results['machine']['cpu_count']} CPUs, "
        f"load {results['machine']['loadavg_start']} -> {results['machine'].get('loadavg_end')}; "
        f"mode {results['mode']}. Clients: capture off; latency = one metric request as the "
        "client sees it (mltrail: a background writer's batch; MLflow: one call).",
        "",
        "| server | workload | N | points | wall s | points/s | p50 ms | p99 ms | target | pass |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results["servers"].items():
        for part in ("single", "multi"):
            r = res.get(part) or {}
            if not r.get("ok"):
                error = str(r.get("error", res.get("error")))[:200].replace("\n", " ")
                lines.append(f"| {name} | {part} | | | | | | | | failed: {error} |")
                continue
            n = r["steps"] if part == "single" else f"{r['processes']} x {r['keys']} x {r['steps']}"
            target = (
                f"<= {r['target_s']:.1f} s" if "target_s" in r
                else f">= {r['target_points_per_s']:,.0f}/s" if "target_points_per_s" in r
                else ""
            )  # fmt: skip
            verdict = "" if "pass" not in r else ("yes" if r["pass"] else "**no**")
            lines.append(
                f"| {name} | {part} | {n} | {r['points']:,} | {r['wall_s']} | "
                f"{r['points_per_s']:,} | {r['latency_p50_ms']} | {r['latency_p99_ms']} | "
                f"{target} | {verdict} |"
            )
    lines += ["", "MLflow runs fewer points (scaled down: its per-request cost would take "
              "many minutes at mltrail's N); compare points/s.", ""]  # fmt: skip
    return "\n".join(lines)


@contextmanager
def _postgres() -> Iterator[dict[str, Any]]:
    from bench_search import postgres

    with postgres() as pg:
        yield pg


def run(results_dir: Path, *, quick: bool | None = None) -> dict[str, Any]:
    """Measure; write ``results_dir/server.json`` and ``server.md``; return the headlines."""
    if quick is None:
        quick = os.environ.get("MLTRAIL_BENCH_QUICK", "") not in ("", "0")
    n = sizes(quick)
    start = time.perf_counter()
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    for old in WORK_ROOT.glob("server-*"):
        shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="server-", dir=WORK_ROOT))
    results: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if quick else "full",
        "sizes": n,
        "targets": TARGETS,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        },
        "servers": {},
    }
    try:
        for backend in ("sqlite", "postgresql"):
            where = work / backend
            where.mkdir()
            try:
                if backend == "sqlite":
                    uri = f"sqlite:///{where / 'mltrail.db'}"
                    results["servers"]["mltrail/sqlite"] = bench_mltrail(
                        backend, uri, n["mltrail"], where
                    )
                else:
                    with _postgres() as pg:
                        res = bench_mltrail(backend, pg["uri"], n["mltrail"], where)
                        res["postgres"] = {k: pg[k] for k in ("version", "settings")}
                        results["servers"]["mltrail/postgresql"] = res
            except Exception as exc:  # recorded; the rest still runs
                results["servers"][f"mltrail/{backend}"] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"{backend} failed: {exc}")
        for res in results["servers"].values():
            for part in ("single", "multi"):
                if isinstance(res.get(part), dict):
                    res[part].pop("run_ids", None)
        where = work / "mlflow"
        where.mkdir()
        try:
            results["servers"]["mlflow/sqlite"] = bench_mlflow(n["mlflow"], where)
        except Exception as exc:
            results["servers"]["mlflow/sqlite"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - start, 1)
    summary: dict[str, Any] = {}
    for name, res in results["servers"].items():
        for part in ("single", "multi"):
            r = res.get(part) or {}
            if r.get("ok"):
                summary[f"{name} {part}"] = {
                    k: r[k] for k in ("wall_s", "points_per_s", "latency_p99_ms", "pass") if k in r
                }
    results["summary"] = summary
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = "server-quick" if quick else "server"
    (results_dir / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (results_dir / f"{stem}.md").write_text(render(results))
    log(f"wrote {results_dir / stem}.json/.md in {results['duration_s']} s")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer points")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    print(json.dumps(run(args.results_dir, quick=args.quick or None), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
