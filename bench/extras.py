"""Other benchmarks: every bench/bench_*.py that defines ``run(results_dir: Path) -> dict``."""

from __future__ import annotations

import importlib.util
import time
import traceback
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[Path]:
    return sorted(BENCH_DIR.glob("bench_*.py"))


def short_name(path: Path) -> str:
    """bench_hashing.py -> hashing"""
    return path.stem.removeprefix("bench_")


def run_module(path: Path, results_dir: Path) -> dict[str, Any]:
    """Import the module and call its ``run``; failures are recorded, never raised."""
    start = time.perf_counter()
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{short_name(path)}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        run = getattr(module, "run", None)
        if not callable(run):
            return {"ok": False, "error": f"{path.name} defines no run(results_dir)"}
        summary = run(results_dir)
        if not isinstance(summary, dict):
            raise TypeError(f"run() returned {type(summary).__name__}, not dict")
    except Exception as exc:
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
            "seconds": time.perf_counter() - start,
        }
    return {"ok": True, "seconds": time.perf_counter() - start, "summary": summary}
