"""The tracking workloads: run each one for each tool, derive figures, judge mltrail's targets."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner import Tool, dir_bytes, import_wall, run_child, whole_process
from spec import (
    IMPORT_CHILD_RUNS,
    IMPORT_NAME,
    IMPORT_RUNS,
    LOG_CALL,
    POINTS,
    REPEATS,
    SAME_LIBRARY,
    STEPS,
    TARGETS,
    WHOLE_RUNS,
    Workload,
    scaled,
)

Result = dict[str, Any]
_SUMMARY_KEYS = ("median_us", "p99_us", "total_s", "log_s", "finish_s", "rss_mib", "loadavg_1m")
Log = Callable[[str], None]


class TrackingBench:
    """Runs the workloads for a set of tools; results keyed by workload, then tool."""

    def __init__(self, tools: list[Tool], workdir: Path, quick: bool, log: Log) -> None:
        self.tools = tools
        self.workdir = workdir
        self.quick = quick
        self.log = log
        self.points_dirs: dict[str, Path] = {}
        self.points_results: dict[str, Result] = {}

    def _dir(self, workload: str, tool: Tool, attempt: int = 0) -> Path:
        suffix = f"-{attempt}" if attempt else ""
        return self.workdir / workload / f"{tool.name}{suffix}"

    def _sized(self, wl: Workload, tool: Tool, name: str, headline: str) -> Result:
        """Run a sized workload (REPEATS times for cheap tools: the median run is kept)."""
        size = scaled(wl.sizes[tool.name], self.quick)
        params = {"n": size.n, "block": size.block, "keys": size.keys}
        repeats = REPEATS.get(tool.name, 1)
        self.log(f"  {wl.name:<24} {tool.name:<13} n={size.n:,} x{repeats}")
        runs = []
        for attempt in range(repeats):
            out = run_child(tool, name, self._dir(wl.name, tool, attempt), **params)
            out["workdir"] = str(self._dir(wl.name, tool, attempt))
            if not out.get("ok"):
                return out
            runs.append(out)
        runs.sort(key=lambda r: float(r[headline]))
        chosen = dict(runs[len(runs) // 2])
        if repeats > 1:
            chosen["repeats"] = [{k: r[k] for k in _SUMMARY_KEYS if k in r} for r in runs]
        return chosen

    # -- workloads -------------------------------------------------------------------------

    def log_call_us(self, tool: Tool) -> Result:
        out = self._sized(LOG_CALL, tool, "log_call", "median_us")
        if out.get("ok"):
            out["end_to_end_us"] = out["total_s"] / out["n"] * 1e6
        return out

    def points_1m_single_key_s(self, tool: Tool) -> Result:
        out = self._sized(POINTS, tool, "points", "total_s")
        if out.get("ok"):
            out["points_per_s"] = out["points"] / out["total_s"]
            out["projected_1m_s"] = out["total_s"] * 1_000_000 / out["points"]
            self.points_dirs[tool.name] = Path(out["workdir"])
        self.points_results[tool.name] = out
        return out

    def steps10k_keys20_s(self, tool: Tool) -> Result:
        out = self._sized(STEPS, tool, "steps", "total_s")
        if out.get("ok"):
            out["points_per_s"] = out["points"] / out["total_s"]
            out["projected_200k_s"] = out["total_s"] * 200_000 / out["points"]
        return out

    def import_ms(self, tool: Tool) -> Result:
        module = IMPORT_NAME.get(tool.name)
        if module is None:
            return {"ok": False, "skipped": _skip_reason(tool.name)}
        self.log(f"  {'import_ms':<24} {tool.name:<13} runs={IMPORT_RUNS}")
        out = import_wall(tool, module, self._dir("import_ms", tool), IMPORT_RUNS)
        children = [
            run_child(tool, "import", self._dir("import_ms", tool))
            for _ in range(IMPORT_CHILD_RUNS)
        ]
        good = [c for c in children if c.get("ok")]
        if not good:
            return {"ok": False, "error": children[0].get("error"), "subprocess": out}
        out["in_process_ms"] = statistics.median(c["import_s"] for c in good) * 1000
        out["with_entry_ms"] = statistics.median(c["import_s"] + c["entry_s"] for c in good) * 1000
        out["version"] = good[0].get("version")
        return out

    def whole_process_s(self, tool: Tool) -> Result:
        if tool.name in SAME_LIBRARY:
            return {"ok": False, "skipped": _skip_reason(tool.name)}
        self.log(f"  {'whole_process_s':<24} {tool.name:<13} runs={WHOLE_RUNS} (+1 untimed)")
        return whole_process(tool, self._dir("whole_process_s", tool), WHOLE_RUNS)

    def bytes_per_point(self, tool: Tool) -> Result:
        if tool.name == "floor":
            return {"ok": False, "skipped": "keeps nothing on disk"}
        if tool.name not in self.points_dirs:
            self.points_1m_single_key_s(tool)
        points = self.points_results[tool.name]
        if not points.get("ok"):
            return {"ok": False, "error": f"points workload failed: {points.get('error')}"}
        store = self.points_dirs[tool.name] / "store"
        total = dir_bytes(store)
        self.log(f"  {'bytes_per_point':<24} {tool.name:<13} (empty-run baseline)")
        empty_dir = self._dir("bytes_per_point", tool)
        baseline = run_child(tool, "empty", empty_dir)
        out: Result = {"ok": True, "store_bytes": total, "points": points["points"]}
        out["bytes_per_point"] = total / points["points"]
        if baseline.get("ok"):
            out["empty_store_bytes"] = dir_bytes(empty_dir / "store")
            marginal = (total - out["empty_store_bytes"]) / points["points"]
            out["marginal_bytes_per_point"] = marginal
        else:
            out["empty_error"] = baseline.get("error")
        return out


def _skip_reason(tool: str) -> str:
    if tool in SAME_LIBRARY:
        return f"same library as {SAME_LIBRARY[tool]}"
    return "not applicable"


def judge(workload: str, result: Result) -> dict[str, Any] | None:
    """Pass/fail of mltrail's figure against issue #3's target (per point, so --quick works)."""
    if not result.get("ok"):
        return {"pass": False, "why": result.get("error") or "did not run"}
    if workload == "log_call_us":
        target = TARGETS["log_call_median_us"]
        value = result["median_us"]
        return {"pass": value <= target, "value": value, "target": f"median <= {target} µs"}
    if workload == "points_1m_single_key_s":
        target = TARGETS["points_1m_s"]
        value = result["projected_1m_s"]
        return {"pass": value <= target, "value": value, "target": f"<= {target} s per 1M points"}
    if workload == "steps10k_keys20_s":
        target, rss_target = TARGETS["steps10k_keys20_s"], TARGETS["steps_rss_mb"]
        rss_mb = result["rss_mib"] * 1.048576
        ok_time = result["projected_200k_s"] <= target
        return {
            "pass": ok_time and rss_mb <= rss_target,
            "time_pass": ok_time,
            "rss_pass": rss_mb <= rss_target,
            "value": result["projected_200k_s"],
            "rss_mb": rss_mb,
            "target": f"<= {target} s per 200k points, peak RSS <= {rss_target} MB",
        }
    if workload == "import_ms":
        target = TARGETS["import_ms"]
        value = result["median_ms"]
        return {"pass": value <= target, "value": value, "target": f"<= {target} ms"}
    return None
