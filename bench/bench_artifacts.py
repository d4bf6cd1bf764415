"""Artifact logging: mltrail against a plain file copy, MLflow and DVC, in one run.

    .venv/bin/python bench/bench_artifacts.py            # writes bench/results/artifacts.json
    MLTRAIL_BENCH_QUICK=1 .venv/bin/python bench/bench_artifacts.py   # or --quick: smoke run

Issue #5's targets, on this machine:

- a 1 GiB file is hashed and stored at >= 80 % of the speed of ``shutil.copyfile`` on
  the same disk (mltrail's first log <= 1.25 x the copy's time); logging the same file
  again is >= 20 x faster than the first time and adds no bytes to the object store;
- 10,000 files of 1 KiB are stored in <= 5 s (MLflow's ``log_artifacts`` and DVC's
  ``dvc add`` timed beside);
- peak RSS of the logging process stays flat: at 1 GiB it is at most 16 MiB above the
  peak at 256 MiB (the file sizes differ by 768 MiB).

How: the inputs are made once under ``bench/.work/artifacts-data/`` (random bytes, so
nothing dedupes) and read once so they sit in the page cache (dropping it is not
possible here). Every measurement is a fresh process (``workloads/artifacts_child.py``)
writing a fresh store under ``bench/.work/artifacts-steps/``; before each one the previous
step's output is deleted and ``os.sync()`` flushes dirty pages, so no step pays for the
previous one's writeback. The copy and mltrail's log of the big file alternate (copy
first in even rounds, mltrail first in odd ones) and medians are reported. Times are
``perf_counter`` around the one call inside the child (imports and run setup excluded;
the child's whole wall time is kept as ``wall_s``); ``first_cpu_s`` is the CPU time of
that call over all the child's threads, and each step records the 1-minute load average
when it started: on 2 cores, other load decides whether a second thread (mltrail's
hashing beside the kernel copy, its parallel small-file writers) gets a core at all.
"Again" is mltrail's second ``log_artifact`` of the same path in the same run, DVC's
second ``dvc add``, and for MLflow (which keeps artifacts per run) the same call in a
second run.
``MLTRAIL_BENCH_QUICK=1``: 256 MiB (RSS compared with 64 MiB) and 1,000 files, written
to ``artifacts-quick.json`` so the full figures stay.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers import ensure_peer  # noqa: E402

CHILD = BENCH_DIR / "workloads" / "artifacts_child.py"
MARKER = "@@ARTIFACTS@@ "
DATA_DIR = BENCH_DIR / ".work" / "artifacts-data"
STEPS_DIR = BENCH_DIR / ".work" / "artifacts-steps"
VENVS = BENCH_DIR / ".venvs"
PEERS = ("mlflow", "dvc")
MiB = 1 << 20
KiB = 1 << 10
CHILD_TIMEOUT_S = 300

TARGET_COPY_RATIO = 1.25  # mltrail first log time / copy time (= >= 80 % of copy speed)
TARGET_AGAIN_SPEEDUP = 20.0
TARGET_AGAIN_BYTES = 0
TARGET_SMALL_S = 5.0
TARGET_RSS_GROWTH_MIB = 16.0


def quick_mode() -> bool:
    return os.environ.get("MLTRAIL_BENCH_QUICK", "").strip().lower() in ("1", "true", "yes")


def sizes(quick: bool) -> dict[str, int]:
    """Input sizes and repeats; quick mode is a smoke run (about 1.5 minutes)."""
    if quick:
        return dict(big=256 * MiB, rss_small=64 * MiB, files=1_000, big_rounds=3, small_rounds=2)
    return dict(big=1024 * MiB, rss_small=256 * MiB, files=10_000, big_rounds=5, small_rounds=3)


def log(msg: str) -> None:
    print(f"[artifacts {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- inputs -------------------------------------------------------------------------


def big_file(size: int) -> Path:
    """``artifacts-data/big-<N>MiB.bin``, random, made once and reused."""
    path = DATA_DIR / f"big-{size // MiB}MiB.bin"
    if not path.exists() or path.stat().st_size != size:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        log(f"making {path.name}")
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for offset in range(0, size, 4 * MiB):
                f.write(os.urandom(min(4 * MiB, size - offset)))
        os.replace(tmp, path)
    return path


def small_files(count: int) -> Path:
    """``artifacts-data/small-<N>x1KiB/``: ``count`` random 1 KiB files, 100 per folder."""
    root = DATA_DIR / f"small-{count}x1KiB"
    done = DATA_DIR / f"small-{count}x1KiB.complete"  # outside: the folder is what is logged
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        log(f"making {root.name}")
        for i in range(count):
            folder = root / f"d{i // 100:03d}"
            if i % 100 == 0:
                folder.mkdir(parents=True)
            (folder / f"f{i:05d}.bin").write_bytes(os.urandom(KiB))
        done.touch()
    return root


def inputs_of(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return [p for p in root.rglob("*") if p.is_file()]


def warm(path: Path) -> None:
    """Read every file once, so each tool finds the input in the page cache."""
    for p in inputs_of(path):
        with open(p, "rb", buffering=0) as f:
            while f.read(16 * MiB):
                pass


# -- children -----------------------------------------------------------------------


def child_env(tool: str, step: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("MLTRAIL_", "MLFLOW_", "DVC_")):
            del env[key]
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        DVC_NO_ANALYTICS="true",
        DVC_SITE_CACHE_DIR=str(step / "dvc-site-cache"),
        MLTRAIL_CACHE_DIR=str(step / "mltrail-cache"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if tool == "mltrail":
        env["MLTRAIL_PROJECT"] = "bench"
    return env


def fresh_step(name: str) -> Path:
    """An empty step folder; earlier steps' output is removed and flushed first."""
    if STEPS_DIR.exists():
        shutil.rmtree(STEPS_DIR, ignore_errors=True)
    step = STEPS_DIR / name
    step.mkdir(parents=True)
    return step


def settle() -> None:
    """Write back dirty pages so the next timed step does not pay for earlier writes."""
    os.sync()


def run_child(tool: str, python: Path, mode_args: list[str], step: Path) -> dict[str, Any]:
    """One child process; its JSON plus ``wall_s`` and ``loadavg_1m`` (never raises)."""
    cmd = [str(python), str(CHILD), *mode_args]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=step,
            env=child_env(tool, step),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {CHILD_TIMEOUT_S} s", "tool": tool}
    except OSError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "tool": tool}
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        return {"ok": False, "error": f"exit {proc.returncode}, no result: {tail}", "tool": tool}
    out: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    out.update(tool=tool, wall_s=wall, loadavg_1m=round(load, 2))
    if not out.get("ok"):
        out.setdefault("stderr_tail", proc.stderr.strip()[-1500:])
    return out


class Bench:
    def __init__(self, pythons: dict[str, Path]) -> None:
        self.pythons = pythons

    def measure(self, tool: str, source: Path, label: str) -> dict[str, Any]:
        """Copy, or log with ``tool``, the file or folder ``source`` in a fresh process."""
        python = self.pythons.get(tool)
        if python is None:
            return {"ok": False, "tool": tool, "error": f"{tool} is not installed"}
        step = fresh_step(f"{label}-{tool}")
        if tool == "copy":
            dest = step / "copy"
            args = ["copy", str(source), str(dest)]
        elif tool == "dvc":
            # `dvc add` works inside the repository: the input is copied in first (untimed).
            repo = step / "repo"
            repo.mkdir()
            if source.is_dir():
                shutil.copytree(source, repo / source.name)
            else:
                shutil.copyfile(source, repo / source.name)
            args = ["dvc", str(repo), source.name]
        else:
            name = "big" if source.is_file() else "files"
            args = [tool, str(step / "store"), str(source), name]
        settle()
        result = run_child(tool, python, args, step)
        result["label"] = label
        if result.get("ok"):
            gb = result.get("bytes") or result.get("logged_bytes") or _bytes_of(source)
            result["first_gbps"] = gb / result["first_s"] / 1e9
        else:
            log(f"    {tool} {label} failed: {str(result.get('error'))[:300]}")
        return result


def _bytes_of(path: Path) -> int:
    return sum(p.stat().st_size for p in inputs_of(path))


# -- figures ------------------------------------------------------------------------


def _ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("ok")]


def _median(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in _ok(results) if r.get(key) is not None]
    return statistics.median(values) if values else None


def _max(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in _ok(results) if r.get(key) is not None]
    return max(values) if values else None


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _verdict(value: float | None, target: float, *, at_most: bool) -> dict[str, Any]:
    if value is None:
        return {"pass": False, "value": None, "target": target, "note": "not measured"}
    ok = value <= target if at_most else value >= target
    return {"pass": ok, "value": round(value, 4), "target": target}


def derive(raw: dict[str, Any], size: dict[str, int]) -> dict[str, Any]:
    big, small = raw["big"], raw["small"]
    copy_s = _median(big["copy"], "first_s")
    ml_first = _median(big["mltrail"], "first_s")
    ml_second = _median(big["mltrail"], "second_s")
    paired = [
        m["first_s"] / c["first_s"]
        for c, m in zip(big["copy"], big["mltrail"], strict=False)
        if c.get("ok") and m.get("ok")
    ]
    rss_big = _median(big["mltrail"], "peak_rss_mib")
    rss_small = _median(raw["rss_small"]["mltrail"], "peak_rss_mib")
    logged = _ok(big["mltrail"])
    speed_pct = None if not ml_first or copy_s is None else 100 * copy_s / ml_first
    growth = None if rss_big is None or rss_small is None else rss_big - rss_small
    figures: dict[str, Any] = {
        "big_bytes": size["big"],
        "copy_s": copy_s,
        "mltrail_first_s": ml_first,
        "mltrail_again_s": ml_second,
        "copy_cpu_s": _median(big["copy"], "first_cpu_s"),
        "mltrail_first_cpu_s": _median(big["mltrail"], "first_cpu_s"),
        "mltrail_vs_copy_time_ratio": _div(ml_first, copy_s),
        "mltrail_vs_copy_time_ratio_paired_median": statistics.median(paired) if paired else None,
        "mltrail_speed_pct_of_copy": speed_pct,
        "mltrail_again_speedup": _div(ml_first, ml_second),
        "mltrail_again_object_bytes_added": _max(big["mltrail"], "second_object_bytes_added"),
        "mltrail_again_store_bytes_added": _max(big["mltrail"], "second_bytes_added"),
        "mltrail_again_same_version": (
            all(r["first_version"] == r["second_version"] for r in logged) if logged else None
        ),
        "mltrail_peak_rss_mib_big": rss_big,
        "mltrail_peak_rss_mib_rss_small": rss_small,
        "rss_small_bytes": size["rss_small"],
        "mltrail_peak_rss_growth_mib": growth,
        "mltrail_rss_before_log_mib": _median(big["mltrail"], "rss_before_mib"),
        "files": size["files"],
        "small_copytree_s": _median(small["copy"], "first_s"),
        "small_mltrail_first_s": _median(small["mltrail"], "first_s"),
        "small_mltrail_again_s": _median(small["mltrail"], "second_s"),
        "small_copytree_cpu_s": _median(small["copy"], "first_cpu_s"),
        "small_mltrail_first_cpu_s": _median(small["mltrail"], "first_cpu_s"),
        "small_mltrail_files_per_s": _div(size["files"], _median(small["mltrail"], "first_s")),
        "small_mltrail_peak_rss_mib": _median(small["mltrail"], "peak_rss_mib"),
    }
    loads = [
        r["loadavg_1m"] for group in raw.values() for runs in group.values() for r in runs
        if r.get("loadavg_1m") is not None
    ]  # fmt: skip
    figures["loadavg_1m_min"] = min(loads) if loads else None
    figures["loadavg_1m_max"] = max(loads) if loads else None
    for peer in PEERS:
        for label, group in (("big", big), ("small", small)):
            runs = group.get(peer, [])
            figures[f"{label}_{peer}_first_s"] = _median(runs, "first_s")
            figures[f"{label}_{peer}_first_cpu_s"] = _median(runs, "first_cpu_s")
            figures[f"{label}_{peer}_again_s"] = _median(runs, "second_s")
            figures[f"{label}_{peer}_again_bytes_added"] = _max(runs, "second_object_bytes_added")
            figures[f"{label}_{peer}_peak_rss_mib"] = _median(runs, "peak_rss_mib")
    return figures


def verdicts(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "big_first_within_1.25x_copy": _verdict(
            f["mltrail_vs_copy_time_ratio"], TARGET_COPY_RATIO, at_most=True
        ),
        "big_again_speedup_20x": _verdict(
            f["mltrail_again_speedup"], TARGET_AGAIN_SPEEDUP, at_most=False
        ),
        "big_again_adds_no_bytes": _verdict(
            f["mltrail_again_object_bytes_added"], TARGET_AGAIN_BYTES, at_most=True
        ),
        "small_files_within_5s": _verdict(f["small_mltrail_first_s"], TARGET_SMALL_S, at_most=True),
        "peak_rss_flat": _verdict(
            f["mltrail_peak_rss_growth_mib"], TARGET_RSS_GROWTH_MIB, at_most=True
        ),
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "failed"
    if unit == "bytes":
        return f"{value / 1e9:.2f} GB" if value >= 1e7 else f"{int(value):,} B"
    if unit == "x":
        return f"{value:.1f}x"
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def markdown(f: dict[str, Any], checks: dict[str, Any], quick: bool) -> str:
    big = f"{f['big_bytes'] // MiB:,} MiB"
    load_start = _fmt(f.get("loadavg_1m_start"))
    low, high = f.get("loadavg_1m_min"), f.get("loadavg_1m_max")
    load_range = "–" if low is None or high is None else f"{low:.2f}–{high:.2f}"
    n = f"{f['files']:,}"

    def row(what: str, *cells: str) -> str:
        return "| " + " | ".join((what, *cells)) + " |"

    mode = " (quick mode)" if quick else ""
    lines = [
        f"Medians; seconds inside a fresh process per measurement{mode}. Load average"
        f" (1 min) at the start: {load_start}; over the steps: {load_range}.",
        "",
        "| workload | plain copy | mltrail | MLflow | DVC |",
        "|---|---|---|---|---|",
        row(
            f"{big} file, first log (s)",
            _fmt(f["copy_s"]),
            _fmt(f["mltrail_first_s"]),
            _fmt(f["big_mlflow_first_s"]),
            _fmt(f["big_dvc_first_s"]),
        ),
        row(
            f"{big} file, first log, CPU s (all threads)",
            _fmt(f["copy_cpu_s"]),
            _fmt(f["mltrail_first_cpu_s"]),
            _fmt(f["big_mlflow_first_cpu_s"]),
            _fmt(f["big_dvc_first_cpu_s"]),
        ),
        row(
            f"{big} file, same again (s)",
            "–",
            _fmt(f["mltrail_again_s"]),
            _fmt(f["big_mlflow_again_s"]),
            _fmt(f["big_dvc_again_s"]),
        ),
        row(
            "bytes added by the again",
            "–",
            _fmt(f["mltrail_again_object_bytes_added"], "bytes"),
            _fmt(f["big_mlflow_again_bytes_added"], "bytes"),
            _fmt(f["big_dvc_again_bytes_added"], "bytes"),
        ),
        row(
            f"peak RSS, {big} (MiB)",
            "–",
            _fmt(f["mltrail_peak_rss_mib_big"]),
            _fmt(f["big_mlflow_peak_rss_mib"]),
            _fmt(f["big_dvc_peak_rss_mib"]),
        ),
        row(
            f"{n} x 1 KiB, first log (s)",
            _fmt(f["small_copytree_s"]),
            _fmt(f["small_mltrail_first_s"]),
            _fmt(f["small_mlflow_first_s"]),
            _fmt(f["small_dvc_first_s"]),
        ),
        row(
            f"{n} x 1 KiB, first log, CPU s",
            _fmt(f["small_copytree_cpu_s"]),
            _fmt(f["small_mltrail_first_cpu_s"]),
            _fmt(f["small_mlflow_first_cpu_s"]),
            _fmt(f["small_dvc_first_cpu_s"]),
        ),
        row(
            f"{n} x 1 KiB, same again (s)",
            "–",
            _fmt(f["small_mltrail_again_s"]),
            _fmt(f["small_mlflow_again_s"]),
            _fmt(f["small_dvc_again_s"]),
        ),
        "",
        "| mltrail target | value | pass |",
        "|---|---|---|",
    ]
    shown = {
        "big_first_within_1.25x_copy": "first log time / copy time <= 1.25",
        "big_again_speedup_20x": "same file again: speed-up >= 20x",
        "big_again_adds_no_bytes": "same file again: object bytes added = 0",
        "small_files_within_5s": f"{n} x 1 KiB first log <= 5 s",
        "peak_rss_flat": (
            f"peak RSS at {big} minus at {f['rss_small_bytes'] // MiB} MiB <= "
            f"{TARGET_RSS_GROWTH_MIB:.0f} MiB"
        ),
    }
    for key, text in shown.items():
        v = checks[key]
        value = "not measured" if v["value"] is None else f"{v['value']:g}"
        lines.append(row(text, value, "pass" if v["pass"] else "**FAIL**"))
    return "\n".join(lines) + "\n"


# -- orchestration --------------------------------------------------------------------


def setup_pythons() -> tuple[dict[str, Path], dict[str, Any]]:
    me = Path(sys.executable)
    pythons: dict[str, Path] = {"copy": me, "mltrail": me}
    info: dict[str, Any] = {"mltrail": {"python": str(me)}, "copy": {"python": str(me)}}
    for peer in PEERS:
        env = ensure_peer(peer, VENVS, log)
        info[peer] = {
            "python": str(env.python) if env.python else None,
            "reused_venv": env.reused,
            "install_s": round(env.seconds, 1),
        }
        if env.error:
            info[peer]["error"] = env.error
            log(f"{peer}: install failed, recorded: {env.error[:300]}")
        elif env.python:
            pythons[peer] = env.python
    return pythons, info


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        st = os.statvfs(DATA_DIR)
        info["disk_free_gib"] = round(st.f_bavail * st.f_frsize / 2**30, 1)
    except OSError:
        pass
    return info


def mltrail_source() -> dict[str, Any]:
    """The commit measured, and whether ``src/`` differed from it (read-only git calls)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    root = BENCH_DIR.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, env=env, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "src"], cwd=root, env=env
        ).returncode
    except OSError as exc:
        return {"error": str(exc)}
    return {"commit": head or None, "src_differs_from_commit": dirty == 1}


def run(results_dir: Path, *, quick: bool | None = None) -> dict[str, Any]:
    """Measure, write ``results_dir/artifacts.json`` (quick: ``artifacts-quick.json``)."""
    quick = quick_mode() if quick is None else quick
    size = sizes(quick)
    start = time.perf_counter()
    host = machine()  # the load average at the start
    pythons, tools = setup_pythons()
    big = big_file(size["big"])
    rss_small = big_file(size["rss_small"])
    small = small_files(size["files"])
    for path in (big, rss_small, small):
        warm(path)
    bench = Bench(pythons)
    raw: dict[str, Any] = {
        "big": {"copy": [], "mltrail": []},
        "rss_small": {"mltrail": []},
        "small": {"copy": [], "mltrail": []},
    }
    steps: list[tuple[str, str, Path, str]] = []
    for i in range(size["big_rounds"]):
        order = ("copy", "mltrail") if i % 2 == 0 else ("mltrail", "copy")
        steps += [("big", tool, big, f"big{i}") for tool in order]
    steps.append(("rss_small", "mltrail", rss_small, "rss"))
    for i in range(size["small_rounds"]):
        steps.append(("small", "mltrail", small, f"small{i}"))
    steps.append(("small", "copy", small, "small-copy"))
    for peer in PEERS:
        steps.append(("small", peer, small, f"small-{peer}"))
        steps.append(("big", peer, big, f"big-{peer}"))
    try:
        for group, tool, source, label in steps:
            log(f"{label}: {tool}")
            result = bench.measure(tool, source, label)
            raw[group].setdefault(tool, []).append(result)
            if result.get("ok"):
                again = result.get("second_s")
                log(
                    f"    {result['first_s']:.3f} s"
                    + ("" if again is None else f", again {again:.3f} s")
                    + f", peak RSS {result.get('peak_rss_mib') or 0:.0f} MiB"
                )
    finally:
        shutil.rmtree(STEPS_DIR, ignore_errors=True)
    figures = derive(raw, size)
    figures["loadavg_1m_start"] = host["loadavg_start"][0]
    checks = verdicts(figures)
    md = markdown(figures, checks, quick)
    report: dict[str, Any] = {
        "benchmark": "artifacts",
        "mode": "quick" if quick else "full",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": host,
        "tools": tools,
        "mltrail_source": mltrail_source(),
        "sizes": size,
        "method": {
            "timing": "perf_counter around the one call inside a fresh child process",
            "sync_before_each_step": True,
            "page_cache": "inputs read once beforehand (cannot be dropped here)",
            "copy": "shutil.copyfile (a folder: shutil.copytree) on the same disk",
            "mltrail": "mltrail.init(uri=sqlite) then run.log_artifact(path, name, "
            "type='dataset') twice in the same run",
            "mlflow": "sqlite tracking, local artifact location; log_artifact(file) / "
            "log_artifacts(dir); the again in a second run",
            "dvc": "dvc init --no-scm; input copied into the repo (untimed); "
            "`dvc add` via dvc.cli.main, twice",
            "rss": "VmHWM of the child after the first log (= ru_maxrss)",
            "rss_flat_rule": f"peak at big <= peak at rss_small + {TARGET_RSS_GROWTH_MIB} MiB",
        },
        "figures": figures,
        "targets": checks,
        "raw": raw,
        "duration_s": time.perf_counter() - start,
    }
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results_dir.mkdir(parents=True, exist_ok=True)
    name = "artifacts-quick.json" if quick else "artifacts.json"
    (results_dir / name).write_text(json.dumps(report, indent=2, default=str) + "\n")
    summary: dict[str, Any] = {
        "mode": report["mode"],
        "all_targets_met": all(v["pass"] for v in checks.values()),
        "targets": {k: v["pass"] for k, v in checks.items()},
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()},
        "markdown": md,
    }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--quick", action="store_true", help="same as MLTRAIL_BENCH_QUICK=1")
    args = parser.parse_args(argv)
    summary = run(args.results_dir, quick=True if args.quick else None)
    print(summary["markdown"])
    name = "artifacts-quick.json" if summary["mode"] == "quick" else "artifacts.json"
    print(f"wrote {args.results_dir / name}")


if __name__ == "__main__":
    main()
