"""Run workload child processes and time them from the parent."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR / "workloads"))

from adapters import tool_environ  # noqa: E402
from child import MARKER  # noqa: E402

from procs import HelperSampler  # noqa: E402

CHILD = BENCH_DIR / "workloads" / "child.py"
CHILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Tool:
    name: str
    python: Path


def run_child(tool: Tool, workload: str, workdir: Path, **params: int) -> dict[str, Any]:
    """Run one workload in a fresh process; returns its JSON plus ``wall_s`` (never raises)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [str(tool.python), str(CHILD), "--tool", tool.name, "--workload", workload]
    cmd += ["--workdir", str(workdir)]
    for key, value in params.items():
        cmd += [f"--{key}", str(value)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=tool_environ(tool.name, workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = HelperSampler(proc.pid)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        sampler.stop()
        return {"ok": False, "error": f"timed out after {CHILD_TIMEOUT_S} s"}
    wall = time.perf_counter() - start
    helpers = sampler.stop()
    lines = [ln for ln in stdout.splitlines() if ln.startswith(MARKER)]
    if not lines:
        tail = (stderr or stdout).strip()[-1500:]
        return {"ok": False, "error": f"exit {proc.returncode}, no result: {tail}"}
    out: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    out["wall_s"] = wall
    out["loadavg_1m"] = load
    out.update(helpers)
    if proc.returncode != 0 and out.get("ok"):
        out.update(ok=False, error=f"exit code {proc.returncode} after the workload")
    return out


def wall_of(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one subprocess; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)!r} exited {proc.returncode}: {proc.stderr[-1500:]}")
    return wall


def import_wall(tool: Tool, module: str, workdir: Path, runs: int) -> dict[str, Any]:
    """``python -c "import M"`` minus ``python -c pass``, interleaved, medians over ``runs``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = tool_environ(tool.name, workdir)
    py = str(tool.python)
    try:
        wall_of([py, "-c", f"import {module}"], workdir, env)  # warm the page cache once
        imports, bares = [], []
        for _ in range(runs):
            bares.append(wall_of([py, "-c", "pass"], workdir, env))
            imports.append(wall_of([py, "-c", f"import {module}"], workdir, env))
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "error": str(exc)}
    return {
        "ok": True,
        "runs": runs,
        "import_wall_ms": [t * 1000 for t in imports],
        "bare_wall_ms": [t * 1000 for t in bares],
        "median_ms": (statistics.median(imports) - statistics.median(bares)) * 1000,
    }


def whole_process(tool: Tool, workdir: Path, runs: int) -> dict[str, Any]:
    """Wall time of import + init + 1 log + finish, on a store made by a first (untimed) run."""
    first = run_child(tool, "whole", workdir)
    if not first.get("ok"):
        return {"ok": False, "error": first.get("error"), "first": first}
    children = [run_child(tool, "whole", workdir) for _ in range(runs)]
    failed = [c for c in children if not c.get("ok")]
    if failed:
        return {"ok": False, "error": failed[0].get("error")}
    walls = [c["wall_s"] for c in children]
    return {
        "ok": True,
        "runs": runs,
        "first_s": first["wall_s"],
        "wall_s": walls,
        "median_s": statistics.median(walls),
        "children": children,
    }


def dir_bytes(path: Path) -> int:
    """Bytes of all regular files under ``path`` (the SQLite WAL and side files included)."""
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
