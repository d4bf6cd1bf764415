"""The child side of bench_artifacts.py: one timed operation per process, one JSON line.

Standard library plus the tool under test (mltrail in the project's venv, MLflow and DVC
in their own), so this file may import only the standard library at module level.

    python artifacts_child.py copy SRC DST                 # shutil.copyfile, the floor
    python artifacts_child.py mltrail STORE PATH NAME      # run.log_artifact, twice
    python artifacts_child.py mlflow STORE PATH NAME       # mlflow.log_artifact(s), 2 runs
    python artifacts_child.py dvc REPO REL                 # dvc add REL, twice

Every mode times the operation in-process (``perf_counter`` around the one call, the
import and the run's setup excluded; ``first_cpu_s`` is the CPU time of the first call,
all threads) and reports the process's RSS: ``rss_before_mib``
(VmRSS just before the first timed call), ``peak_rss_mib`` (VmHWM after it, which is
``ru_maxrss``) and ``peak_minus_before_mib``. Bytes are summed over distinct inodes.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = "@@ARTIFACTS@@ "
MiB = 1 << 20


def tree_bytes(path: Path) -> int:
    """Apparent bytes of the regular files under ``path`` (each inode counted once)."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen or not os.path.isfile(os.path.join(dirpath, name)):
                continue
            seen.add(key)
            total += st.st_size
    return total


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_mib() -> float:
    kib = _status_kib("VmHWM")
    if kib is None:  # no /proc: ru_maxrss is KiB on Linux
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


#: CPU seconds (user + system, every thread of the process) of each ``timed`` call, in
#: order: less sensitive than wall time to other load on the machine.
CPU_SECONDS: list[float] = []


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    cpu = time.process_time()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    CPU_SECONDS.append(time.process_time() - cpu)
    return seconds, value


def mode_copy(src: str, dst: str) -> dict[str, Any]:
    import shutil

    before = rss_mib()
    if os.path.isdir(src):
        seconds, _ = timed(lambda: shutil.copytree(src, dst))
    else:
        seconds, _ = timed(lambda: shutil.copyfile(src, dst))
    return {
        "first_s": seconds,
        "bytes": tree_bytes(Path(dst)),
        "rss_before_mib": before,
        "peak_rss_mib": peak_mib(),
    }


def mode_mltrail(store: str, path: str, name: str) -> dict[str, Any]:
    import importlib.metadata

    # mltrail and what log_artifact imports on first use: excluded, as the peers' imports.
    import blake3  # noqa: F401

    import mltrail
    import mltrail.artifacts.ops
    import mltrail.objects.local

    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    run = mltrail.init(project="bench", uri=f"sqlite:///{root / 'mltrail.db'}")
    objects = root / "objects"
    before_bytes, before_objects = tree_bytes(root), tree_bytes(objects)
    before = rss_mib()
    first_s, v1 = timed(lambda: run.log_artifact(path, name=name, type="dataset"))
    peak = peak_mib()
    mid_bytes, mid_objects = tree_bytes(root), tree_bytes(objects)
    second_s, v2 = timed(lambda: run.log_artifact(path, name=name, type="dataset"))
    end_bytes, end_objects = tree_bytes(root), tree_bytes(objects)
    run.finish()
    return {
        "version": importlib.metadata.version("mltrail"),
        "first_s": first_s,
        "second_s": second_s,
        "first_version": v1.label if hasattr(v1, "label") else v1.version,
        "second_version": v2.label if hasattr(v2, "label") else v2.version,
        "file_count": v1.file_count,
        "logged_bytes": v1.size,
        "first_bytes_added": mid_bytes - before_bytes,
        "first_object_bytes_added": mid_objects - before_objects,
        "second_bytes_added": end_bytes - mid_bytes,
        "second_object_bytes_added": end_objects - mid_objects,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "peak_rss_after_second_mib": peak_mib(),
    }


def mode_mlflow(store: str, path: str, name: str) -> dict[str, Any]:
    """Two runs, each logging the same content: MLflow keeps artifacts per run."""
    import importlib.metadata

    import mlflow

    root = Path(store)
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    exp = mlflow.create_experiment("bench", artifact_location=artifacts.as_uri())
    src = Path(path)

    def log() -> None:
        if src.is_dir():
            mlflow.log_artifacts(str(src), artifact_path=name)
        else:
            mlflow.log_artifact(str(src), artifact_path=name)

    out: dict[str, Any] = {"version": importlib.metadata.version("mlflow")}
    for label in ("first", "second"):
        with mlflow.start_run(experiment_id=exp):
            before_bytes = tree_bytes(root)
            if label == "first":
                out["rss_before_mib"] = rss_mib()
            out[f"{label}_s"], _ = timed(log)
            if label == "first":
                out["peak_rss_mib"] = peak_mib()
            out[f"{label}_bytes_added"] = tree_bytes(root) - before_bytes
            out[f"{label}_object_bytes_added"] = out[f"{label}_bytes_added"]
    out["peak_rss_after_second_mib"] = peak_mib()
    return out


def mode_dvc(repo: str, rel: str) -> dict[str, Any]:
    """``dvc add REL`` through DVC's own CLI entry point, in-process, twice."""
    import importlib.metadata

    from dvc.cli import main as dvc_main

    root = Path(repo)
    os.chdir(root)
    if dvc_main(["init", "--no-scm", "-q"]) != 0:
        raise RuntimeError("dvc init --no-scm failed")
    cache = root / ".dvc" / "cache"
    out: dict[str, Any] = {"version": importlib.metadata.version("dvc")}
    for label in ("first", "second"):
        before_bytes, before_cache = tree_bytes(root), tree_bytes(cache)
        if label == "first":
            out["rss_before_mib"] = rss_mib()
        out[f"{label}_s"], rc = timed(lambda: dvc_main(["add", "-q", rel]))
        if rc != 0:
            raise RuntimeError(f"dvc add {rel} ({label}) exited {rc}")
        if label == "first":
            out["peak_rss_mib"] = peak_mib()
        # The workspace copy is replaced by a link or copy of the cache: count both.
        out[f"{label}_bytes_added"] = tree_bytes(root) - before_bytes
        out[f"{label}_object_bytes_added"] = tree_bytes(cache) - before_cache
    out["peak_rss_after_second_mib"] = peak_mib()
    return out


MODES: dict[str, Callable[..., dict[str, Any]]] = {
    "copy": mode_copy,
    "mltrail": mode_mltrail,
    "mlflow": mode_mlflow,
    "dvc": mode_dvc,
}


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    try:
        result = {"ok": True, "mode": mode, **MODES[mode](*args)}
    except BaseException as exc:  # reported to the parent, never swallowed silently
        result = {
            "ok": False,
            "mode": mode,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-3000:],
        }
    if CPU_SECONDS:
        result["first_cpu_s"] = CPU_SECONDS[0]
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(MARKER + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
