"""Run one workload for one tool in this (fresh) process and print one JSON result line.

Usage: python child.py --tool mltrail --workload points --n 1000000 --workdir DIR

Runs inside the tool's own virtualenv: standard library only (plus the tool). The result
is the last stdout line starting with ``BENCH_RESULT `` so that anything the tool prints
itself does not get in the way.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from adapters import ADAPTERS, Adapter

MARKER = "BENCH_RESULT "


def _rss_mib(who: int) -> float:
    """Peak RSS of this process (helper processes are sampled by the parent)."""
    return resource.getrusage(who).ru_maxrss / 1024.0  # KiB on Linux


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def log_call(ad: Adapter, n: int, block: int) -> dict[str, Any]:
    """Per-call cost of ``log({"loss": v}, step=i)``, timed in blocks of ``block`` calls."""
    log, rnd, clock = ad.log, random.random, time.perf_counter_ns
    per_block: list[float] = []
    start = clock()
    for first in range(0, n, block):
        t0 = clock()
        for i in range(first, min(first + block, n)):
            log({"loss": 1.0 / (i + 1) + 0.01 * rnd()}, step=i)
        t1 = clock()
        per_block.append((t1 - t0) / 1000.0 / (min(first + block, n) - first))
    logged = clock()
    ad.finish()
    done = clock()
    return {
        "n": n,
        "block": block,
        "blocks": len(per_block),
        "median_us": statistics.median(per_block),
        "p99_us": _percentile(per_block, 0.99),
        "mean_us": (logged - start) / 1000.0 / n,
        "log_s": (logged - start) / 1e9,
        "finish_s": (done - logged) / 1e9,
        "total_s": (done - start) / 1e9,
        "points": n,
    }


def points(ad: Adapter, n: int) -> dict[str, Any]:
    """``n`` single-key points logged, then the run finished (flushed), end to end."""
    log, rnd, clock = ad.log, random.random, time.perf_counter
    start = clock()
    for i in range(n):
        log({"loss": 1.0 / (i + 1) + 0.01 * rnd()}, step=i)
    logged = clock()
    ad.finish()
    done = clock()
    return {
        "n": n,
        "points": n,
        "log_s": logged - start,
        "finish_s": done - logged,
        "total_s": done - start,
    }


def steps(ad: Adapter, n: int, keys: int) -> dict[str, Any]:
    """``n`` steps with ``keys`` metrics each (one dict per step), then finished."""
    log, rnd, clock = ad.log, random.random, time.perf_counter
    names = [f"metric_{j:02d}" for j in range(keys)]
    start = clock()
    for i in range(n):
        base = 1.0 / (i + 1)
        log({name: base * (j + 1) + 0.01 * rnd() for j, name in enumerate(names)}, step=i)
    logged = clock()
    ad.finish()
    done = clock()
    return {
        "n": n,
        "keys": keys,
        "points": n * keys,
        "log_s": logged - start,
        "finish_s": done - logged,
        "total_s": done - start,
    }


def whole(ad: Adapter) -> dict[str, Any]:
    """One point then finish; the parent times the whole process."""
    ad.log({"loss": 0.5}, step=0)
    ad.finish()
    return {"n": 1, "points": 1}


def empty(ad: Adapter) -> dict[str, Any]:
    """A run with no metric at all: the store-size baseline for bytes per point."""
    ad.finish()
    return {"n": 0, "points": 0}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True, choices=sorted(ADAPTERS))
    parser.add_argument("--workload", required=True)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--block", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    random.seed(1234)
    out: dict[str, Any] = {"tool": args.tool, "workload": args.workload, "ok": False}
    ad = ADAPTERS[args.tool](args.workdir)
    try:
        t0 = time.perf_counter()
        ad.import_lib()
        t1 = time.perf_counter()
        ad.resolve_entry()
        t2 = time.perf_counter()
        out.update(import_s=t1 - t0, entry_s=t2 - t1, version=ad.version())
        out["python"] = platform.python_version()
        if args.workload == "import":
            out["ok"] = True
            return _emit(out)
        t0 = time.perf_counter()
        ad.start()
        out["init_s"] = time.perf_counter() - t0
        if args.workload == "log_call":
            out.update(log_call(ad, args.n, args.block))
        elif args.workload == "points":
            out.update(points(ad, args.n))
        elif args.workload == "steps":
            out.update(steps(ad, args.n, args.keys))
        elif args.workload == "whole":
            out.update(whole(ad))
        elif args.workload == "empty":
            out.update(empty(ad))
        else:
            raise ValueError(f"unknown workload {args.workload!r}")
        out["rss_mib"] = _rss_mib(resource.RUSAGE_SELF)
        out["ok"] = True
    except BaseException as exc:  # report anything, the parent records it and goes on
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()[-4000:]
    return _emit(out)


def _emit(out: dict[str, Any]) -> int:
    sys.stdout.flush()
    print(MARKER + json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
