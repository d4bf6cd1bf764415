"""mltrail's benchmark harness: mltrail against its peers, in one run, on this machine.

    .venv/bin/python bench/run.py                    # everything (~10-15 min on 2 cores)
    .venv/bin/python bench/run.py --quick            # 10x fewer points, mltrail only
    .venv/bin/python bench/run.py --quick --peers mlflow,wandb
    .venv/bin/python bench/run.py --only log_call_us --no-peers

Writes bench/results/tracking.json and tracking.md (a --quick or --only run writes
tracking-quick.* / tracking-partial.* instead, so the full figures stay).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import extras  # noqa: E402
import report  # noqa: E402
from peers import ensure_peer  # noqa: E402
from runner import Tool  # noqa: E402
from spec import (  # noqa: E402
    DEFAULT_PEERS,
    LABELS,
    PEER_TOOLS,
    TARGET_TEXT,
    TITLES,
    TOOLS,
    WORKLOADS,
)
from tracking import TrackingBench, judge  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
WORK_ROOT = BENCH_DIR / ".work"
VENVS = BENCH_DIR / ".venvs"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    extra_names = [extras.short_name(p) for p in extras.discover()]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="10x smaller N; no peers unless --peers"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORKLOAD",
        help=f"run only this workload (repeatable): {', '.join(WORKLOADS + extra_names)}",
    )
    parser.add_argument("--no-peers", action="store_true", help="mltrail (and the floor) only")
    parser.add_argument(
        "--peers",
        default=None,
        help=f"comma list of {', '.join(PEER_TOOLS)} (default: mlflow,wandb)",
    )
    args = parser.parse_args(argv)
    only = [w for item in args.only for w in item.split(",") if w]
    unknown = sorted(set(only) - set(WORKLOADS) - set(extra_names))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {WORKLOADS + extra_names}")
    args.only = only
    if args.peers is not None:
        peers = [p.strip() for p in args.peers.split(",") if p.strip()]
        bad = sorted(set(peers) - set(PEER_TOOLS))
        if bad:
            parser.error(f"unknown peer(s) {bad}; choose from {sorted(PEER_TOOLS)}")
        args.peer_list = [] if args.no_peers else peers
    else:
        args.peer_list = [] if (args.no_peers or args.quick) else list(DEFAULT_PEERS)
    return args


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError):
        pass
    return info


def setup_tools(peer_list: list[str]) -> tuple[list[Tool], dict[str, dict[str, Any]]]:
    """mltrail and the floor in this interpreter; each peer in its own venv (made if needed)."""
    me = Path(sys.executable)
    tools = [Tool("mltrail", me)]
    info: dict[str, dict[str, Any]] = {"mltrail": {"python": str(me)}}
    for peer in peer_list:
        env = ensure_peer(peer, VENVS, log)
        for name in PEER_TOOLS[peer]:
            info[name] = {
                "python": str(env.python) if env.python else None,
                "venv": str(VENVS / peer),
                "reused_venv": env.reused,
                "install_s": round(env.seconds, 1),
            }
            if env.error:
                info[name]["error"] = env.error
                log(f"{peer}: install failed, recorded: {env.error[:300]}")
            elif env.python:
                tools.append(Tool(name, env.python))
    tools.append(Tool("floor", me))
    info["floor"] = {"python": str(me), "version": "python list"}
    return tools, info


def fresh_workdir() -> Path:
    """bench/.work/<timestamp>; earlier runs' stores are removed (they can be large).

    Only this harness's own <timestamp> folders go: other benchmarks keep files there too.
    """
    if WORK_ROOT.exists():
        for old in WORK_ROOT.glob("[0-9]*-[0-9]*"):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    workdir = WORK_ROOT / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True)
    return workdir


def run_tracking(args: argparse.Namespace, results: dict[str, Any]) -> None:
    selected = [w for w in WORKLOADS if not args.only or w in args.only]
    if not selected:
        return
    tools, info = setup_tools(args.peer_list)
    results["tools"] = info
    bench = TrackingBench(tools, fresh_workdir(), args.quick, log)
    log(f"tools: {', '.join(t.name for t in tools)}; workdir {bench.workdir}")
    for workload in selected:
        log(f"{workload}")
        per_tool: dict[str, Any] = {}
        for tool in tools:
            try:
                per_tool[tool.name] = getattr(bench, workload)(tool)
            except Exception as exc:  # a harness bug must not lose the other figures
                per_tool[tool.name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            res = per_tool[tool.name]
            if res.get("version"):
                info[tool.name].setdefault("version", res["version"])
            if not res.get("ok") and res.get("error"):
                log(f"    {tool.name} failed: {str(res['error'])[:300]}")
        entry: dict[str, Any] = {
            "title": TITLES[workload],
            "mltrail_target": TARGET_TEXT[workload],
            "results": per_tool,
        }
        verdict = judge(workload, per_tool.get("mltrail", {}))
        if verdict is not None:
            entry["mltrail_verdict"] = verdict
            log(f"    mltrail: {'pass' if verdict['pass'] else 'FAIL'} {verdict}")
        results["workloads"][workload] = entry


def run_extras(args: argparse.Namespace, results: dict[str, Any]) -> None:
    if args.quick:  # the other benchmarks read their smoke-run switch from the environment
        os.environ["MLTRAIL_BENCH_QUICK"] = "1"
    for path in extras.discover():
        name = extras.short_name(path)
        if args.only and name not in args.only and path.stem not in args.only:
            continue
        log(f"other benchmark {path.name}")
        entry = extras.run_module(path, RESULTS_DIR)
        if not entry["ok"]:
            log(f"    {path.name} failed: {entry['error']}")
        results["other_benchmarks"][name] = entry


def _strip(obj: Any) -> Any:
    """Drop bulky tracebacks of successful children from the JSON."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not (k == "traceback" and obj.get("ok"))}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    results: dict[str, Any] = {
        "schema": 1,
        "mode": mode,
        "args": sys.argv[1:] if argv is None else argv,
        "machine": machine_info(),
        "columns": [t for t in TOOLS if t in LABELS],
        "tools": {},
        "workloads": {},
        "other_benchmarks": {},
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    run_tracking(args, results)
    run_extras(args, results)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = time.perf_counter() - start
    stem = "tracking-partial" if args.only else "tracking-quick" if args.quick else "tracking"
    json_path, md_path = RESULTS_DIR / f"{stem}.json", RESULTS_DIR / f"{stem}.md"
    json_path.write_text(json.dumps(_strip(results), indent=2, default=str) + "\n")
    md_path.write_text(report.render(results))
    log(f"wrote {json_path} and {md_path} in {results['duration_s']:.0f} s")
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
