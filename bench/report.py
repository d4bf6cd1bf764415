"""Render bench/results/tracking.json as a markdown report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spec import LABELS, SAME_LIBRARY, TARGETS

Results = dict[str, Any]
PEER_COLUMNS = ["mlflow_sync", "mlflow_async", "wandb", "aim"]


@dataclass(frozen=True)
class Row:
    """One table row: where its figure comes from, how to print it, which way is better."""

    title: str
    workload: str
    key: str
    fmt: Callable[[float], str]
    target: str = ""
    lower_is_better: bool = True
    per_point: bool = False  # compare tools per point (their N differ)
    ratio: bool = True


def _f(digits: int) -> Callable[[float], str]:
    return lambda v: f"{v:,.{digits}f}"


def _sig(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


ROWS = [
    Row("log() per call, median of blocks (µs)", "log_call_us", "median_us", _sig, "≤ 3"),
    Row("log() per call, p99 of blocks (µs)", "log_call_us", "p99_us", _sig),
    Row("log() calls + final flush, per call (µs)", "log_call_us", "end_to_end_us", _sig),
    Row(
        "1 key × N points + finish (s)",
        "points_1m_single_key_s",
        "total_s",
        _f(2),
        "≤ 3 (N = 1M)",
        per_point=True,
    ),
    Row(
        "  … points/s",
        "points_1m_single_key_s",
        "points_per_s",
        _sig,
        "≥ 333k",
        lower_is_better=False,
    ),
    Row(
        "N steps × 20 keys + finish (s)",
        "steps10k_keys20_s",
        "total_s",
        _f(2),
        "≤ 1 (N = 10k)",
        per_point=True,
    ),
    Row("  … points/s", "steps10k_keys20_s", "points_per_s", _sig, "≥ 200k", lower_is_better=False),
    Row("  … peak RSS of that process (MiB)", "steps10k_keys20_s", "rss_mib", _f(0), "≤ 143"),
    Row(
        "  … peak RSS of its helper processes (MiB)",
        "steps10k_keys20_s",
        "helpers_peak_rss_mib",
        _f(0),
        ratio=False,
    ),
    Row("import, subprocess − `python -c pass` (ms)", "import_ms", "median_ms", _f(0), "≤ 150"),
    Row("import, in-process (ms)", "import_ms", "in_process_ms", _f(0), ratio=False),
    Row("import + first API attribute, in-process (ms)", "import_ms", "with_entry_ms", _f(0)),
    Row("whole process: import, init, 1 log, finish (s)", "whole_process_s", "median_s", _f(2)),
    Row("disk bytes per point (store / points)", "bytes_per_point", "bytes_per_point", _f(0)),
    Row(
        "  … minus an empty run's store",
        "bytes_per_point",
        "marginal_bytes_per_point",
        _f(0),
    ),
]


def _value(results: Results, row: Row, tool: str) -> float | None:
    res = results["workloads"].get(row.workload, {}).get("results", {}).get(tool)
    if res is None:
        return None
    if not res.get("ok") and res.get("skipped") and tool in SAME_LIBRARY:
        res = results["workloads"][row.workload]["results"].get(SAME_LIBRARY[tool], {})
    value = res.get(row.key) if res.get("ok") else None
    return float(value) if isinstance(value, int | float) else None


def _basis(results: Results, row: Row, tool: str) -> float | None:
    """A lower-is-better number comparable across tools (per point where N differ)."""
    value = _value(results, row, tool)
    if value is None:
        return None
    if row.per_point:
        res = results["workloads"][row.workload]["results"][tool]
        return value / res["points"]
    return value if row.lower_is_better else (1.0 / value if value else None)


def _cell(results: Results, row: Row, tool: str) -> str:
    res = results["workloads"].get(row.workload, {}).get("results", {}).get(tool)
    if res is None:
        return ""
    if res.get("skipped"):
        if tool in SAME_LIBRARY:
            value = _value(results, row, tool)
            return f"({row.fmt(value)})" if value is not None else "–"
        return "–"
    if not res.get("ok"):
        return "error"
    value = _value(results, row, tool)
    return row.fmt(value) if value is not None else "–"


def _ratio(results: Results, row: Row, peer: str) -> str:
    mine, theirs = _basis(results, row, "mltrail"), _basis(results, row, peer)
    if not row.ratio or not mine or not theirs:
        return ""
    ratio = theirs / mine
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.3g}×"


def _verdict(results: Results, workload: str, row: Row) -> str:
    if not row.target:
        return ""
    verdict = results["workloads"].get(workload, {}).get("mltrail_verdict")
    if not verdict:
        return ""
    key = "rss_pass" if row.key == "rss_mib" else "time_pass" if "time_pass" in verdict else "pass"
    return "pass" if verdict.get(key) else "**FAIL**"


def render(results: Results) -> str:
    tools = [t for t in results["columns"] if t in results["tools"]]
    peers = [t for t in tools if t in PEER_COLUMNS]
    head = [LABELS[t] for t in tools] + ["mltrail target", "mltrail vs target"]
    head += [f"{LABELS[p]} ÷ mltrail" for p in peers]
    lines = [
        f"# Tracking benchmark ({results['mode']} run)",
        "",
        _machine_line(results),
        "",
        "| workload | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(tools) + ":---:|:---:|" + "---:|" * len(peers),
    ]
    for row in ROWS:
        if row.workload not in results["workloads"]:
            continue
        cells = [_cell(results, row, t) for t in tools]
        cells += [row.target, _verdict(results, row.workload, row)]
        cells += [_ratio(results, row, p) for p in peers]
        lines.append(f"| {row.title} | " + " | ".join(cells) + " |")
    lines += ["", *_notes(results, peers), "", *_sizes(results, tools), *_errors(results)]
    lines += _other(results)
    return "\n".join(lines) + "\n"


def _machine_line(results: Results) -> str:
    m = results["machine"]
    versions = ", ".join(
        f"{LABELS[t]} {v['version']}" for t, v in results["tools"].items() if v.get("version")
    )
    load = m.get("loadavg_start")
    return (
        f"{m['date']} · {m['platform']} · {m['cpu_count']} CPUs · Python {m['python']} · "
        f"load average at start {load} · {versions} · {results['duration_s']:.0f} s in all"
    )


def _notes(results: Results, peers: list[str]) -> list[str]:
    notes = [
        "Each figure comes from a fresh process per tool and workload. Tools log different",
        "N (see below): rows marked per point compare tools by time per point, and the",
        "`÷ mltrail` columns say how many times better mltrail does (> 1 = mltrail better).",
        "Cells in parentheses repeat the MLflow sync figure (the same library is imported).",
        "mltrail and the floor run each sized workload 3 times (the median run is shown, all",
        "are in tracking.json); each peer runs once. The machine's load average is recorded",
        "with every child process (`loadavg_1m`).",
        "Per-call figures time blocks of calls (perf_counter_ns around each block, divided by",
        "the block size); p99 is over those blocks, not over single calls.",
        f"RSS target: {TARGETS['steps_rss_mb']:.0f} MB = 143 MiB. Helper processes (W&B's",
        "wandb-core service, ...) are not in a process's own RSS: the next row sums each",
        "helper's own peak (VmHWM), sampled from /proc every 0.2 s by the parent.",
    ]
    if results["mode"] != "full":
        notes.append("**Quick run**: 10× fewer points; targets are judged per point (projected).")
    return notes


def _sizes(results: Results, tools: list[str]) -> list[str]:
    lines = ["N per tool:", "", "| workload | " + " | ".join(LABELS[t] for t in tools) + " |"]
    lines.append("|---|" + "---:|" * len(tools))
    for workload in ("log_call_us", "points_1m_single_key_s", "steps10k_keys20_s"):
        per_tool = results["workloads"].get(workload, {}).get("results", {})
        if not per_tool:
            continue
        cells = [f"{per_tool[t]['n']:,}" if per_tool.get(t, {}).get("n") else "" for t in tools]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return lines


def _errors(results: Results) -> list[str]:
    errors = []
    for name, info in results["tools"].items():
        if info.get("error"):
            errors.append(f"- {LABELS[name]}: install failed: {info['error'][:500]}")
    for workload, wl in results["workloads"].items():
        for tool, res in wl["results"].items():
            if not res.get("ok") and res.get("error"):
                errors.append(f"- {workload} / {LABELS[tool]}: {str(res['error'])[:500]}")
    return ["", "## Errors", "", *errors] if errors else []


def _other(results: Results) -> list[str]:
    lines: list[str] = []
    for name, entry in results.get("other_benchmarks", {}).items():
        lines += ["", f"## Other benchmark: {name}", ""]
        if not entry.get("ok"):
            lines.append(f"failed: {entry.get('error')}")
            continue
        summary = entry["summary"]
        if isinstance(summary.get("markdown"), str):
            lines.append(summary["markdown"].rstrip())
        else:
            text = json.dumps(summary, indent=2, default=str)
            lines += ["```json", text[:6000], "```"]
    return lines
