"""``repro``: run the stages whose cmd, deps, params or outs changed since ``mltrail.lock``.

The lock file records, per stage that last succeeded: its cmd, each dep and out with its
BLAKE3 content hash (a directory hashes the sorted list of its files' paths and hashes),
and the values of its params. A stage runs when anything there differs.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import StageFailed
from mltrail.objects.hashing import hash_bytes, hash_file
from mltrail.pipelines.dag import Dag, build_dag, select, topo_order
from mltrail.pipelines.spec import Pipeline, PipelineError, Stage

__all__ = ["ReproResult", "StageFailed", "hash_path", "plan", "read_lock", "repro"]

LOCK_SCHEMA = "1"
_MISSING = object()


@dataclass
class ReproResult:
    """What a ``repro`` did: stages run (or, dry, that would run) with reasons."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)


def hash_path(path: Path) -> str | None:
    """Content hash of a file or directory (None when missing)."""
    if path.is_file():
        return hash_file(path)[0]
    if not path.is_dir():
        return None
    lines = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            lines.append(f"{full.relative_to(path).as_posix()}\0{hash_file(full)[0]}\n")
    return hash_bytes("".join(lines).encode())


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _param_values(pipeline: Pipeline, stage: Stage) -> dict[str, dict[str, Any]]:
    import yaml

    values: dict[str, dict[str, Any]] = {}
    docs: dict[str, Any] = {}
    for file, key in stage.params:
        if file not in docs:
            try:
                docs[file] = yaml.safe_load((pipeline.root / file).read_text(encoding="utf-8"))
            except OSError as exc:
                raise PipelineError(f"stage {stage.name!r}: cannot read {file}") from exc
        value = _lookup(docs[file], key)
        if value is _MISSING:
            raise PipelineError(f"stage {stage.name!r}: param {key!r} is not in {file}")
        values.setdefault(file, {})[key] = value
    return values


def read_lock(pipeline: Pipeline) -> dict[str, Any]:
    """The ``stages`` mapping of the lock file (empty when there is none)."""
    import yaml

    if not pipeline.lock_path.is_file():
        return {}
    data = yaml.safe_load(pipeline.lock_path.read_text(encoding="utf-8")) or {}
    stages = data.get("stages") if isinstance(data, dict) else None
    return stages if isinstance(stages, dict) else {}


def _write_lock(pipeline: Pipeline, stages: dict[str, Any]) -> None:
    import yaml

    text = yaml.safe_dump({"schema": LOCK_SCHEMA, "stages": stages}, sort_keys=False)
    tmp = pipeline.lock_path.with_suffix(".lock.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, pipeline.lock_path)


def _entries(pipeline: Pipeline, paths: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"path": p, "hash": hash_path(pipeline.root / p)} for p in paths]


def _lock_entry(pipeline: Pipeline, stage: Stage) -> dict[str, Any]:
    return {
        "cmd": stage.cmd,
        "deps": _entries(pipeline, stage.deps),
        "params": _param_values(pipeline, stage),
        "outs": _entries(pipeline, stage.all_outs),
    }


def _reasons(pipeline: Pipeline, stage: Stage, locked: Any) -> list[str]:
    """Why ``stage`` must run (empty: it is up to date)."""
    if stage.frozen:
        return []
    if not isinstance(locked, dict):
        return ["never run (not in mltrail.lock)"]
    if stage.always_changed:
        return ["always_changed"]
    out: list[str] = []
    if locked.get("cmd") != stage.cmd:
        out.append("cmd changed")
    now = _lock_entry(pipeline, stage)
    for kind in ("deps", "outs"):
        old = {
            str(e.get("path")): e.get("hash") for e in locked.get(kind) or [] if isinstance(e, dict)
        }
        for entry in now[kind]:
            path, digest = entry["path"], entry["hash"]
            if kind == "outs" and digest is None:
                out.append(f"out {path} missing")
            elif path not in old:
                out.append(f"{kind[:-1]} {path} added")
            elif old[path] != digest:
                out.append(f"{kind[:-1]} {path} changed")
        removed = set(old) - {e["path"] for e in now[kind]}
        out += [f"{kind[:-1]} {p} removed" for p in sorted(removed)]
    old_params = locked.get("params") or {}
    for file, values in now["params"].items():
        for key, value in values.items():
            if _lookup_flat(old_params, file, key) != value:
                out.append(f"param {key} changed")
    return out


def _lookup_flat(params: Any, file: str, key: str) -> Any:
    values = params.get(file) if isinstance(params, dict) else None
    return values.get(key, _MISSING) if isinstance(values, dict) else _MISSING


def plan(pipeline: Pipeline, target: str | None = None, *, force: bool = False) -> ReproResult:
    """What ``repro`` would run and why, without running anything (``--dry``)."""
    dag = select(build_dag(pipeline), target)
    lock = read_lock(pipeline)
    result = ReproResult()
    for name in topo_order(dag):
        reasons = ["forced"] if force else _reasons(pipeline, pipeline.stages[name], lock.get(name))
        upstream = sorted(u for u in dag[name] if u in result.ran)
        reasons += [f"upstream stage {u} will run" for u in upstream if not reasons]
        if reasons:
            result.ran.append(name)
            result.reasons[name] = reasons
        else:
            result.skipped.append(name)
    return result


def _log_outputs(run: Any, pipeline: Pipeline, stage: Stage) -> None:
    """Outs as artifacts of the stage's run; flat numbers of metrics files as metrics."""
    import yaml

    for out in stage.all_outs:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stage.name}.{out}").strip("-.")
        run.log_artifact(pipeline.root / out, name=name, type="pipeline-output")
    for path in stage.metrics:
        try:
            data = yaml.safe_load((pipeline.root / path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            numbers = {
                str(k): v
                for k, v in data.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            if numbers:
                run.log(numbers)


def _record(project: str | None, uri: str | None, stage: str, config: dict[str, Any]) -> Any:
    import mltrail

    return mltrail.init(
        project=project, name=stage, job_type="pipeline-stage", config=config, uri=uri
    )


def repro(
    pipeline: Pipeline,
    target: str | None = None,
    *,
    jobs: int = 1,
    force: bool = False,
    project: str | None = None,
    uri: str | None = None,
    record: bool = True,
    log_outputs: bool = True,
    stdout: int | None = None,
    on_event: Callable[[str, str, list[str]], None] | None = None,
) -> ReproResult:
    """Run the stages that changed, in dependency order, ``jobs`` at a time.

    Each stage's status is checked just before it runs, after its upstream stages ran:
    an upstream stage that re-made identical outputs does not re-run what follows. Each
    executed stage is recorded as a run (``job_type="pipeline-stage"``, params as
    config, deps as inputs; with ``log_outputs`` its outs as artifacts named
    ``STAGE.PATH`` and the numbers of its JSON/YAML metrics files as metrics).
    A failing stage raises :class:`StageFailed` after the running ones end; stages
    after it do not start and its lock entry is left as it was.
    ``on_event(stage, "run"|"skip"|"done"|"failed", reasons)`` reports progress.
    """
    dag: Dag = select(build_dag(pipeline), target)
    lock = read_lock(pipeline)
    result = ReproResult()
    db_lock = threading.Lock()
    emit = on_event or (lambda *_: None)

    def run_stage(name: str) -> tuple[str, list[str], int]:
        stage = pipeline.stages[name]
        reasons = ["forced"] if force else _reasons(pipeline, stage, lock.get(name))
        if not reasons:
            emit(name, "skip", [])
            return name, [], 0
        emit(name, "run", reasons)
        config = {k: v for vals in _param_values(pipeline, stage).values() for k, v in vals.items()}
        run = None
        if record:
            with db_lock:
                run = _record(project, uri, name, config)
                result.run_ids[name] = run.id
                for dep in stage.deps:
                    run.use_dataset(pipeline.root / dep, name=dep)
        proc = subprocess.run(stage.cmd, shell=True, cwd=pipeline.root, stdout=stdout)
        code = proc.returncode
        missing = [o for o in stage.all_outs if not (pipeline.root / o).exists()]
        if code == 0 and missing:
            code = -1
            reasons = [f"did not write {', '.join(missing)}"]
        if run is not None:
            with db_lock:
                if code == 0 and log_outputs:
                    _log_outputs(run, pipeline, stage)
                run.finish("finished" if code == 0 else "failed", exit_code=code)
        return name, reasons, code

    pending = dict(dag)
    done: set[str] = set()
    failure: StageFailed | None = None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[Future[tuple[str, list[str], int]], str] = {}
        while pending or running:
            if failure is None:
                for name in [n for n, ups in pending.items() if ups <= done]:
                    del pending[name]
                    running[pool.submit(run_stage, name)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                _, reasons, code = fut.result()
                if code != 0:
                    emit(name, "failed", reasons)
                    what = reasons[0] if code == -1 else f"exited with code {code}"
                    failure = failure or StageFailed(
                        name, f"stage {name!r} failed: {what}", code if code > 0 else 1
                    )
                    continue
                done.add(name)
                if reasons:
                    result.ran.append(name)
                    result.reasons[name] = reasons
                    lock[name] = _lock_entry(pipeline, pipeline.stages[name])
                    _write_lock(pipeline, {n: lock[n] for n in pipeline.stages if n in lock})
                    emit(name, "done", reasons)
                else:
                    result.skipped.append(name)
    if failure is not None:
        raise failure
    return result
