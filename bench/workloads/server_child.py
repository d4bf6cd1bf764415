"""One client process of bench/bench_server.py: standard library plus the tool.

    python server_child.py TOOL MODE URL N KEYS START_FILE

TOOL: ``mltrail`` (MLTRAIL_TRACKING_URI=URL) or ``mlflow`` (MlflowClient against URL).
MODE: ``single`` (N steps of one key, ``log_batch`` of 1,000 for MLflow) or ``multi``
(N steps of KEYS keys, one ``log_metrics`` call per step for MLflow). The process sets
up its run, touches START_FILE + ".ready.<pid>", waits until START_FILE exists, logs,
finishes, and prints one JSON line: timestamps (``time.time()``) of the start and end
of logging and of finish() returning, and the latency of each metric request it made.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _wait(start_file: Path) -> None:
    Path(f"{start_file}.ready.{os.getpid()}").touch()
    while not start_file.exists():
        time.sleep(0.002)


def _timed(obj: Any, name: str, sink: list[float]) -> None:
    """Wrap ``obj.name`` to record each call's wall time (the client-side request latency)."""
    inner = getattr(obj, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - t)

    setattr(obj, name, call)


def run_mltrail(mode: str, url: str, n: int, keys: int, start_file: Path) -> dict[str, Any]:
    import mltrail

    run = mltrail.init(project="bench", uri=url)
    latencies: list[float] = []
    _timed(run._store, "write_metrics", latencies)  # the writer thread's metric requests
    names = [f"m{k}" for k in range(keys)]
    _wait(start_file)
    t0 = time.time()
    log = run.log
    if mode == "single":
        for i in range(n):
            log({"loss": i * 0.5}, step=i)
    else:
        for i in range(n):
            log(dict.fromkeys(names, i * 0.5), step=i)
    t1 = time.time()
    run.finish()
    t2 = time.time()
    saved = run._writer.caught_up
    return {"run_id": run.id, "t_start": t0, "t_logged": t1, "t_finished": t2,
            "latencies_s": latencies, "saved": saved}  # fmt: skip


def run_mlflow(mode: str, url: str, n: int, keys: int, start_file: Path) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    exp = client.get_experiment_by_name("bench")
    exp_id = exp.experiment_id if exp else None
    if exp_id is None:
        try:
            exp_id = client.create_experiment("bench")
        except Exception:  # another child created it first
            exp_id = client.get_experiment_by_name("bench").experiment_id
    run = client.create_run(exp_id)
    rid = run.info.run_id
    latencies: list[float] = []
    _wait(start_file)
    t0 = time.time()
    if mode == "single":
        ts = int(time.time() * 1000)
        for lo in range(0, n, 1000):
            batch = [Metric("loss", i * 0.5, ts, i) for i in range(lo, min(n, lo + 1000))]
            t = time.perf_counter()
            client.log_batch(rid, metrics=batch)
            latencies.append(time.perf_counter() - t)
    else:
        mlflow.start_run(run_id=rid)
        names = [f"m{k}" for k in range(keys)]
        for i in range(n):
            t = time.perf_counter()
            mlflow.log_metrics(dict.fromkeys(names, i * 0.5), step=i)
            latencies.append(time.perf_counter() - t)
    t1 = time.time()
    if mode == "single":
        client.set_terminated(rid)
    else:
        mlflow.end_run()
    t2 = time.time()
    return {"run_id": rid, "t_start": t0, "t_logged": t1, "t_finished": t2,
            "latencies_s": latencies, "saved": True, "version": mlflow.__version__}  # fmt: skip


def main() -> int:
    tool, mode, url, n, keys, start_file = sys.argv[1:7]
    fn = run_mltrail if tool == "mltrail" else run_mlflow
    out = fn(mode, url, int(n), int(keys), Path(start_file))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
