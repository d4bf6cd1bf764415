"""Data versioning: ``mltrail data add``/``push`` beside ``dvc add``/``push`` on 100,000 files.

    .venv/bin/python bench/bench_data.py            # writes bench/results/data.json and .md
    .venv/bin/python bench/bench_data.py --quick    # 10,000 files, data-quick.*

Issue #9's targets, on this machine:

- 100,000 small files hashed and stored (``mltrail data add``) in <= 30 s;
- a second ``mltrail data push`` of the unchanged dataset to a remote in <= 5 s.

How: the files (70-90 bytes each, all different, 100 folders of 1,000) are made once
under ``bench/.work/data-files/``. For each tool a fresh git repository gets a copy of
them (untimed, then ``os.sync()``), and each step is the tool's whole command line in a
subprocess, timed from start to exit (interpreter start-up included for both): add, add
again (nothing changed), status, push to a folder remote, push again. DVC 3 runs from
its own venv (``bench/.venvs/dvc``), with analytics off and its site cache in the step
folder; ``dvc init`` and ``dvc remote add`` are untimed, as is ``mltrail data remote
add``. The tools alternate which goes first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_artifacts import machine, mltrail_source  # noqa: E402
from peers import ensure_peer  # noqa: E402

WORK = BENCH_DIR / ".work"
STEPS = WORK / "data-steps"
VENVS = BENCH_DIR / ".venvs"
MLTRAIL = Path(sys.executable).with_name("mltrail")
TIMEOUT_S = 1800
TARGET_ADD_S = 30.0
TARGET_PUSH_AGAIN_S = 5.0
STEP_NAMES = ("add", "add_again", "status", "push", "push_again")


def log(msg: str) -> None:
    print(f"[bench data {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_files(count: int) -> Path:
    """``count`` small distinct files in folders of 1,000 (made once, then reused)."""
    root = WORK / f"data-files-{count}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for i in range(count):
        folder = root / "data" / f"part-{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"{i:06d}.txt").write_text(f"sample {i} label {i % 10} {os.urandom(24).hex()}\n")
    done.touch()
    return root


def _env(step: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "DVC_"))}
    env.update(
        DVC_NO_ANALYTICS="true",
        DVC_SITE_CACHE_DIR=str(step / "dvc-site-cache"),
        MLTRAIL_CACHE_DIR=str(step / "mltrail-cache"),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {tail}")
    return wall, proc.stdout


def measure(tool: str, exe: Path, files: Path) -> dict[str, Any]:
    """Every step of one tool in a fresh repository; seconds per step (never raises)."""
    step = STEPS / tool
    shutil.rmtree(STEPS, ignore_errors=True)
    repo = step / "repo"
    repo.mkdir(parents=True)
    env = _env(step)
    out: dict[str, Any] = {"tool": tool, "ok": False}
    try:
        _run(["git", "init", "-q"], repo, env)
        shutil.copytree(files / "data", repo / "data")
        if tool == "dvc":
            _run([str(exe), "init", "-q"], repo, env)
            _run([str(exe), "remote", "add", "-d", "origin", str(step / "remote")], repo, env)
            cmds = {
                "add": ["add", "data"],
                "add_again": ["add", "data"],
                "status": ["status"],
                "push": ["push"],
                "push_again": ["push"],
            }
        else:
            _run([str(exe), "data", "remote", "add", "origin", str(step / "remote")], repo, env)
            cmds = {
                "add": ["data", "add", "data"],
                "add_again": ["data", "add", "data"],
                "status": ["data", "status"],
                "push": ["data", "push"],
                "push_again": ["data", "push"],
            }
        for name in STEP_NAMES:
            os.sync()
            load = os.getloadavg()[0]
            wall, _ = _run([str(exe), *cmds[name]], repo, env)
            out[f"{name}_s"] = round(wall, 3)
            out[f"{name}_loadavg_1m"] = round(load, 2)
            log(f"    {tool} {name}: {wall:.2f} s (load {load:.1f})")
        out["ok"] = True
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        log(f"    {tool} failed: {out['error'][:300]}")
    finally:
        shutil.rmtree(STEPS, ignore_errors=True)
    return out


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.2f} s"


def markdown(results: dict[str, dict[str, Any]], count: int, checks: dict[str, Any]) -> str:
    labels = {
        "add": f"add {count:,} files (hash + store)",
        "add_again": "add again, nothing changed",
        "status": "status",
        "push": "push to a folder remote",
        "push_again": "push again, nothing changed",
    }
    lines = [
        f"# Data versioning: {count:,} small files",
        "",
        "| step | mltrail | DVC 3 |",
        "|---|---|---|",
    ]
    for name in STEP_NAMES:
        m = results.get("mltrail", {}).get(f"{name}_s")
        d = results.get("dvc", {}).get(f"{name}_s")
        lines.append(f"| {labels[name]} | {_fmt(m)} | {_fmt(d)} |")
    lines.append("")
    for key, check in checks.items():
        mark = "✔" if check["pass"] else "✘"
        lines.append(f"- {key}: {_fmt(check['value'])} (target ≤ {check['target']} s) {mark}")
    for tool, r in results.items():
        if not r.get("ok"):
            lines.append(f"- {tool} failed: {r.get('error', '')[:300]}")
    return "\n".join(lines) + "\n"


def run(results_dir: Path, *, quick: bool | None = None) -> dict[str, Any]:
    """Measure, write ``results_dir/data.json`` and ``data.md`` (quick: ``data-quick.*``)."""
    if quick is None:
        quick = os.environ.get("MLTRAIL_BENCH_QUICK") == "1"
    count = 10_000 if quick else 100_000
    start = time.perf_counter()
    host = machine()
    dvc = ensure_peer("dvc", VENVS, log)
    tools: dict[str, Path | None] = {
        "mltrail": MLTRAIL,
        "dvc": dvc.python.with_name("dvc") if dvc.python else None,
    }
    log(f"making {count:,} files ...")
    files = make_files(count)
    results: dict[str, dict[str, Any]] = {}
    order = ["mltrail", "dvc"] if int(time.time()) % 2 == 0 else ["dvc", "mltrail"]
    for tool in order:
        exe = tools[tool]
        if exe is None:
            results[tool] = {"tool": tool, "ok": False, "error": dvc.error or "not installed"}
            continue
        log(f"{tool} ...")
        results[tool] = measure(tool, exe, files)
    mine = results["mltrail"]
    checks = {
        "mltrail data add": {
            "value": mine.get("add_s"),
            "target": TARGET_ADD_S,
            "pass": (mine.get("add_s") or 1e9) <= TARGET_ADD_S,
        },
        "mltrail data push again": {
            "value": mine.get("push_again_s"),
            "target": TARGET_PUSH_AGAIN_S,
            "pass": (mine.get("push_again_s") or 1e9) <= TARGET_PUSH_AGAIN_S,
        },
    }
    md = markdown(results, count, checks)
    name = "data-quick" if quick else "data"
    report = {
        "benchmark": "data",
        "mode": "quick" if quick else "full",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**host, "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "mltrail_source": mltrail_source(),
        "files": count,
        "order": order,
        "dvc_venv": {"reused": dvc.reused, "install_s": round(dvc.seconds, 1)},
        "results": results,
        "targets": checks,
        "duration_s": round(time.perf_counter() - start, 1),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (results_dir / f"{name}.md").write_text(md)
    return {
        "mode": report["mode"],
        "all_targets_met": all(c["pass"] for c in checks.values()),
        "targets": {k: c["pass"] for k, c in checks.items()},
        "markdown": md,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 files")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    summary = run(args.results_dir, quick=args.quick)
    print(summary["markdown"])


if __name__ == "__main__":
    main()
