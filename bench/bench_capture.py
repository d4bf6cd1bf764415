"""What reproducibility capture costs: ``collect()`` on a 1,000-file repo, and one sample.

    .venv/bin/python bench/bench_capture.py            # writes bench/results/capture.json
    .venv/bin/python bench/bench_capture.py --results-dir /tmp/r --files 5000

Issue #4's targets: capture adds <= 200 ms to ``init`` on a repository with 1,000 tracked
files, and system-metrics sampling costs <= 1 % CPU at the default 10 s interval.

The repository is built in a temporary folder: 1,000 tracked files (~2 KB each, in 25
folders), committed and left to settle (a ``git status`` a second later refreshes the
index, as in any repository that has been around), then 5 tracked files modified and 4
untracked entries added. ``collect()`` (every section on) is timed in fresh processes:

- ``in_init``: the store is opened first (SQLAlchemy and Alembic imported, as they are
  when ``mltrail.init`` captures), then the first ``collect()`` call is timed; this is
  what capture adds to ``init``. ``warm`` is the median of 10 further calls.
- ``bare``: nothing imported beforehand, so the first call also pays for importing
  ``importlib.metadata`` and ``psutil``.

Each is the median over 5 processes. Sampling cost is the CPU time (user + system) of
one ``SystemMonitor.sample()`` call, averaged over 200, divided by the 10 s interval.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
TARGET_COLLECT_MS = 200.0
TARGET_SAMPLE_CPU_PERCENT = 1.0
INTERVAL_S = 10.0
GIT = ("git", "-c", "user.name=bench", "-c", "user.email=bench@example.com")

CHILD = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path
mode, repo = sys.argv[1], Path(sys.argv[2])
if mode == "in_init":
    from mltrail.store import open_store
    open_store("sqlite:///" + tempfile.mkdtemp() + "/mltrail.db")
from mltrail.client.capture import CaptureSettings, collect
settings = CaptureSettings()
t = time.perf_counter()
info = collect(settings, cwd=repo)
first = time.perf_counter() - t
warm = []
for _ in range(10):
    t = time.perf_counter()
    collect(settings, cwd=repo)
    warm.append(time.perf_counter() - t)
git_only = CaptureSettings(env=False, packages=False, hardware=False)
git_ms = []
for _ in range(5):
    t = time.perf_counter()
    collect(git_only, cwd=repo)
    git_ms.append(time.perf_counter() - t)
print(json.dumps({
    "first_ms": first * 1e3,
    "warm_ms": statistics.median(warm) * 1e3,
    "git_only_ms": statistics.median(git_ms) * 1e3,
    "sections": sorted(info),
    "packages": len(info.get("packages", {})),
    "dirty": info["git"]["dirty"],
    "untracked": len(info["git"]["untracked"]),
    "diff_bytes": len(info["git"]["diff"]),
}))
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)


def build_repo(root: Path, files: int) -> Path:
    """A committed repo with ``files`` tracked files, 5 modified, 4 untracked entries."""
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    body = "".join(
        f"def f{i}(x):\n    return x * {i}  # padding padding padding\n" for i in range(40)
    )
    for i in range(files):
        path = repo / f"pkg{i % 25:02d}" / f"module_{i:04d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# file {i}\n{body}")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    _git(repo, "remote", "add", "origin", "https://bench:token@example.com/acme/repo.git")
    time.sleep(1.1)  # past git's racy-timestamp window, then let status refresh the index
    _git(repo, "status", "--porcelain")
    for i in range(5):
        path = repo / f"pkg{i:02d}" / f"module_{i:04d}.py"
        path.write_text(path.read_text() + f"\nLEARNING_RATE = {i / 10}\n")
    for name in ("notes.txt", "scratch.py", "results.csv"):
        (repo / name).write_text("work in progress\n")
    (repo / "outputs").mkdir()
    (repo / "outputs" / "model.bin").write_bytes(os.urandom(1024))
    return repo


def _child(mode: str, repo: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(repo)],
        check=True, capture_output=True, text=True, cwd=repo,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def time_collect(repo: Path, processes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("in_init", "bare"):
        runs = [_child(mode, repo) for _ in range(processes)]
        out[mode] = {
            "first_ms": round(statistics.median(r["first_ms"] for r in runs), 1),
            "warm_ms": round(statistics.median(r["warm_ms"] for r in runs), 1),
            "git_only_ms": round(statistics.median(r["git_only_ms"] for r in runs), 1),
            "first_ms_runs": [round(r["first_ms"], 1) for r in runs],
        }
        out["captured"] = {k: runs[0][k] for k in ("sections", "packages", "dirty", "untracked")}
        out["captured"]["diff_bytes"] = runs[0]["diff_bytes"]
    return out


def time_sample(samples: int = 200) -> dict[str, Any]:
    from mltrail.client.capture.system import SystemMonitor

    monitor = SystemMonitor(lambda metrics: None, interval=INTERVAL_S)
    monitor.start()
    try:
        monitor.sample()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(samples):
            metrics = monitor.sample()
        cpu = (time.process_time() - cpu0) / samples
        wall = (time.perf_counter() - wall0) / samples
        energy = monitor.energy
        source = energy.source if energy is not None else None
    finally:
        monitor.stop()
    return {
        "cpu_ms_per_sample": round(cpu * 1e3, 3),
        "wall_ms_per_sample": round(wall * 1e3, 3),
        "cpu_percent_at_default_interval": round(cpu / INTERVAL_S * 100, 4),
        "keys": len(metrics),
        "energy_source": source,
        "samples": samples,
    }


def run(results_dir: Path, files: int = 1000, processes: int = 5) -> dict[str, Any]:
    """Build the repo, time collect() and one sample, write ``capture.json``."""
    with tempfile.TemporaryDirectory(prefix="mltrail-bench-capture-") as tmp:
        repo = build_repo(Path(tmp), files)
        collect_times = time_collect(repo, processes)
    sample = time_sample()
    in_init = collect_times["in_init"]["first_ms"]
    summary: dict[str, Any] = {
        "collect_ms_in_init": in_init,
        "collect_ms_warm": collect_times["in_init"]["warm_ms"],
        "collect_ms_bare_process": collect_times["bare"]["first_ms"],
        "sample_cpu_ms": sample["cpu_ms_per_sample"],
        "sample_cpu_percent_at_10s": sample["cpu_percent_at_default_interval"],
        "collect_pass": in_init <= TARGET_COLLECT_MS,
        "sample_pass": sample["cpu_percent_at_default_interval"] <= TARGET_SAMPLE_CPU_PERCENT,
    }
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "logical_cpus": os.cpu_count(),
            "git": subprocess.run(
                ["git", "--version"], capture_output=True, text=True
            ).stdout.strip(),
        },
        "repo": {"tracked_files": files, "modified": 5, "untracked_entries": 4},
        "targets": {
            "collect_ms": TARGET_COLLECT_MS,
            "sample_cpu_percent": TARGET_SAMPLE_CPU_PERCENT,
        },
        "collect": collect_times,
        "sample": sample,
        "summary": summary,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "capture.json").write_text(json.dumps(report, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.results_dir, args.files, args.processes), indent=2))


if __name__ == "__main__":
    main()
