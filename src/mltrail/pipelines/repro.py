"""``repro``: run the stages whose cmd, deps, params or outs changed since ``mltrail.lock``.

The lock file records, per stage that last succeeded: its cmd, each dep and out with its
BLAKE3 content hash (a directory hashes the sorted list of its files' paths and hashes),
and the values of its params. A stage runs when anything there differs. Files whose stat
(size, mtime, inode, ctime) is unchanged are not read again (the hash cache that
``mltrail data add`` and artifacts share).

**Run cache.** A stage that must run is first looked up by its cache key: the hash of its
cmd, dep hashes, param values and out paths. When an earlier successful run of the same
key is recorded in the tracking store (tag ``mltrail.pipeline.cache_key``, outs as
artifacts), its outs are restored from the object store instead of running the command,
as DVC's run cache does; on another machine sharing the store, too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.artifacts.hashcache import HashCache, hash_cache_path
from mltrail.errors import MltrailError, StageFailed
from mltrail.objects.hashing import hash_bytes, hash_file
from mltrail.pipelines.dag import Dag, build_dag, select, topo_order
from mltrail.pipelines.spec import Pipeline, PipelineError, Stage, read_yaml

__all__ = ["ReproResult", "StageFailed", "cache_key", "hash_path", "plan", "read_lock", "repro"]

LOCK_SCHEMA = "1"
_MISSING = object()
#: Run tags of an executed stage: its cache key, and its outs as ``{path: {artifact,
#: digest, type}}`` (JSON), from which a later repro restores them.
CACHE_TAG = "mltrail.pipeline.cache_key"
OUTS_TAG = "mltrail.pipeline.outs"
_WORKERS = 4


@dataclass
class ReproResult:
    """What a ``repro`` did: stages run (or, dry, that would run) with reasons."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)
    #: Stages whose outs were restored from the run cache: the run that made them.
    restored: dict[str, str] = field(default_factory=dict)


def hash_path(path: Path, cache: HashCache | None = None) -> str | None:
    """Content hash of a file or directory (None when missing).

    A directory's is the hash of its files' ``relative path \\0 hash`` lines, in walk
    order (sorted). With ``cache``, files whose stat is unchanged are not read.
    """
    if path.is_file():
        files = [("", path)]
    elif path.is_dir():
        files = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                files.append((full.relative_to(path).as_posix(), full))
    else:
        return None
    stats: dict[str, os.stat_result] = {}
    for _, full in files:
        try:
            stats[os.path.realpath(full)] = os.stat(full)
        except OSError:  # a dangling symlink: hash_file below says what is wrong
            pass
    known = cache.get_many(stats) if cache is not None else {}

    def one(item: tuple[str, Path]) -> str:
        real = os.path.realpath(item[1])
        oid = known.get(real)
        if oid is None:
            oid = hash_file(item[1])[0]
            if cache is not None and real in stats:
                cache.put(real, stats[real], oid)
        return oid

    if len(files) > 8:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            oids = list(pool.map(one, files))
    else:
        oids = [one(f) for f in files]
    if cache is not None:
        cache.flush()
    if path.is_file():
        return oids[0]
    lines = [f"{rel}\0{oid}\n" for (rel, _), oid in zip(files, oids, strict=True)]
    return hash_bytes("".join(lines).encode())


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _param_values(pipeline: Pipeline, stage: Stage) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {}
    docs: dict[str, Any] = {}
    for file, key in stage.params:
        if file not in docs:
            docs[file] = read_yaml(pipeline.root / file, file, f"stage {stage.name!r}")
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


def _entries(
    pipeline: Pipeline, paths: tuple[str, ...], cache: HashCache | None
) -> list[dict[str, Any]]:
    return [{"path": p, "hash": hash_path(pipeline.root / p, cache)} for p in paths]


def _lock_entry(pipeline: Pipeline, stage: Stage, cache: HashCache | None) -> dict[str, Any]:
    return {
        "cmd": stage.cmd,
        "deps": _entries(pipeline, stage.deps, cache),
        "params": _param_values(pipeline, stage),
        "outs": _entries(pipeline, stage.all_outs, cache),
    }


def _reasons(pipeline: Pipeline, stage: Stage, locked: Any, cache: HashCache | None) -> list[str]:
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
    now = _lock_entry(pipeline, stage, cache)
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


def cache_key(pipeline: Pipeline, stage: Stage, cache: HashCache | None = None) -> str:
    """The run-cache key: hash of cmd, dep paths and hashes, param values and out paths.

    The stage's name is not part of it: a renamed stage still finds its outputs.
    """
    doc = {
        "cmd": stage.cmd,
        "deps": [[e["path"], e["hash"]] for e in _entries(pipeline, stage.deps, cache)],
        "params": _param_values(pipeline, stage),
        "outs": list(stage.all_outs),
    }
    return hash_bytes(json.dumps(doc, sort_keys=True, default=str).encode())


def _hash_cache(uri: str | None) -> HashCache:
    from mltrail.config import resolve_uri

    return HashCache(hash_cache_path(resolve_uri(uri)))


def plan(
    pipeline: Pipeline, target: str | None = None, *, force: bool = False, uri: str | None = None
) -> ReproResult:
    """What ``repro`` would run and why, without running anything (``--dry``)."""
    dag = select(build_dag(pipeline), target)
    lock = read_lock(pipeline)
    cache = _hash_cache(uri)
    result = ReproResult()
    for name in topo_order(dag):
        stage = pipeline.stages[name]
        reasons = ["forced"] if force else _reasons(pipeline, stage, lock.get(name), cache)
        upstream = sorted(u for u in dag[name] if u in result.ran)
        reasons += [f"upstream stage {u} will run" for u in upstream if not reasons]
        if reasons:
            result.ran.append(name)
            result.reasons[name] = reasons
        else:
            result.skipped.append(name)
    return result


def _artifact_name(stage: str, out: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stage}.{out}").strip("-.")


def _log_outputs(run: Any, pipeline: Pipeline, stage: Stage) -> dict[str, dict[str, Any]]:
    """Outs as artifacts of the stage's run; flat numbers of metrics files as metrics.

    Returns ``{out: {artifact, digest, type}}``.
    """
    import yaml

    outs: dict[str, dict[str, Any]] = {}
    for out in stage.all_outs:
        path = pipeline.root / out
        version = run.log_artifact(
            path, name=_artifact_name(stage.name, out), type="pipeline-output"
        )
        kind = "directory" if path.is_dir() else "file"
        outs[out] = {"artifact": version.spec, "digest": version.digest, "type": kind}
    for metrics in stage.metrics:
        try:
            data = yaml.safe_load((pipeline.root / metrics).read_text(encoding="utf-8"))
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
    return outs


def _find_cached(client: Any, project: str, key: str, outs: tuple[str, ...]) -> Any:
    """The newest finished stage run with this cache key and every out recorded."""
    from mltrail.errors import ProjectNotFound

    query = f"tags.`{CACHE_TAG}` = '{key}' and status = 'finished'"
    try:
        found = client.search_runs(project, query, order_by=["created desc"], limit=10)
    except ProjectNotFound:  # nothing recorded yet
        return None
    for record in found:
        try:
            recorded = json.loads(record.tags.get(OUTS_TAG, ""))
        except ValueError:
            continue
        if isinstance(recorded, dict) and all(isinstance(recorded.get(o), dict) for o in outs):
            return record, recorded
    return None


def _restore(objects: Any, pipeline: Pipeline, recorded: dict[str, Any]) -> None:
    """Put each recorded out back in the workspace from the object store (verified)."""
    from mltrail.artifacts.ops import read_manifest
    from mltrail.data.ops import require_objects, write_files

    plans = []
    for out, info in recorded.items():
        entries = read_manifest(objects, str(info["digest"]))
        require_objects(objects, entries, f"the cached output {out}")
        plans.append((pipeline.root / out, entries, info.get("type")))
    for target, entries, kind in plans:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        if kind == "directory":
            target.mkdir(parents=True)
            write_files(objects, entries, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.mltrail-restore"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                write_files(objects, entries, tmp)
                os.replace(tmp / entries[0].path, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)


class _Recorder:
    """The tracking side of a repro: stage runs, lineage, run cache; one lock for all."""

    def __init__(self, project: str | None, uri: str | None) -> None:
        from mltrail.config import resolve_uri

        self.project = project
        self.uri = resolve_uri(uri)
        self.lock = threading.Lock()
        self._client: Any = None
        self._objects: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mltrail.client.client import Client

            self._client = Client(self.uri)
        return self._client

    @property
    def objects(self) -> Any:
        if self._objects is None:
            from mltrail.config import objects_uri
            from mltrail.objects import open_object_store

            self._objects = open_object_store(objects_uri(self.uri))
        return self._objects

    def project_name(self) -> str:
        from mltrail.data.versions import default_project

        return self.project or default_project()

    def start(self, stage: str, config: dict[str, Any]) -> Any:
        import mltrail

        return mltrail.init(
            project=self.project,
            name=stage,
            job_type="pipeline-stage",
            config=config,
            uri=self.uri,
            tags={"mltrail.pipeline.stage": stage},
        )

    def restore(self, pipeline: Pipeline, stage: Stage, key: str) -> tuple[str, Any] | None:
        """Outs restored from the run cache: (run id, recorded outs), or None on a miss."""
        with self.lock:
            found = _find_cached(self.client, self.project_name(), key, stage.all_outs)
        if found is None:
            return None
        record, recorded = found
        try:
            _restore(self.objects, pipeline, {o: recorded[o] for o in stage.all_outs})
        except MltrailError:  # objects gone (gc, another store): run the stage instead
            return None
        return record.id, recorded


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
    run_cache: bool = True,
    stdout: int | None = None,
    on_event: Callable[[str, str, list[str]], None] | None = None,
) -> ReproResult:
    """Run the stages that changed, in dependency order, ``jobs`` at a time.

    Each stage's status is checked just before it runs, after its upstream stages ran:
    an upstream stage that re-made identical outputs does not re-run what follows.

    Each executed stage is recorded as a run (``job_type="pipeline-stage"``, params as
    config). Its inputs are lineage edges: a dep that an upstream stage's out holds is
    that out's artifact version; another dep is hashed as a dataset input (with its
    dataset version when it has a ``mltrail data add`` pointer). With ``log_outputs``
    its outs become artifacts named ``STAGE.PATH`` (type ``pipeline-output``), and the
    numbers of its JSON/YAML metrics files metrics.

    With ``run_cache`` (and ``log_outputs``), a stage that must run whose exact inputs
    a finished stage run already saw gets that run's outs back instead (not with
    ``force``, nor for ``always_changed`` stages).

    A failing stage raises :class:`StageFailed` after the running ones end; stages
    after it do not start and its lock entry is left as it was.
    ``on_event(stage, "run"|"skip"|"restored"|"done"|"failed", reasons)`` reports
    progress.
    """
    dag: Dag = select(build_dag(pipeline), target)
    lock = read_lock(pipeline)
    result = ReproResult()
    cache = _hash_cache(uri)
    rec = _Recorder(project, uri)
    use_cache = run_cache and record and log_outputs and not force
    emit = on_event or (lambda *_: None)

    def upstream_out(dep: str) -> tuple[str, dict[str, Any]] | None:
        """The lock's record of the upstream out holding ``dep`` (with its artifact)."""
        for up in dag[stage_of[dep]] if dep in stage_of else ():
            for e in (lock.get(up) or {}).get("outs") or []:
                p = str(e.get("path"))
                if (dep == p or dep.startswith(p + "/")) and e.get("artifact"):
                    return p, e
        return None

    stage_of = {
        dep: name
        for name in dag
        for dep in pipeline.stages[name].deps
        if any(
            dep == o or dep.startswith(o + "/")
            for up in dag[name]
            for o in pipeline.stages[up].all_outs
        )
    }

    def inputs(run: Any, stage: Stage) -> None:
        for dep in stage.deps:
            found = upstream_out(dep)
            if found is None:
                run.use_dataset(pipeline.root / dep, name=dep)
                continue
            run.add_input(str(found[1]["artifact"]))

    def run_stage(name: str) -> tuple[str, list[str], int, dict[str, Any] | None]:
        stage = pipeline.stages[name]
        reasons = ["forced"] if force else _reasons(pipeline, stage, lock.get(name), cache)
        if not reasons:
            emit(name, "skip", [])
            return name, [], 0, None
        key = cache_key(pipeline, stage, cache)
        if use_cache and stage.all_outs and not stage.always_changed:
            hit = rec.restore(pipeline, stage, key)
            if hit is not None:
                result.restored[name] = hit[0]
                emit(name, "restored", [*reasons, f"outputs restored from run {hit[0]}"])
                return name, reasons, 0, hit[1]
        emit(name, "run", reasons)
        config = {k: v for vals in _param_values(pipeline, stage).values() for k, v in vals.items()}
        run = None
        if record:
            with rec.lock:
                run = rec.start(name, config)
                result.run_ids[name] = run.id
                inputs(run, stage)
        proc = subprocess.run(stage.cmd, shell=True, cwd=pipeline.root, stdout=stdout)
        code = proc.returncode
        missing = [o for o in stage.all_outs if not (pipeline.root / o).exists()]
        if code == 0 and missing:
            code = -1
            reasons = [f"did not write {', '.join(missing)}"]
        outs = None
        if run is not None:
            with rec.lock:
                if code == 0 and log_outputs:
                    outs = _log_outputs(run, pipeline, stage)
                    run.set_tags({CACHE_TAG: key, OUTS_TAG: json.dumps(outs, sort_keys=True)})
                run.finish("finished" if code == 0 else "failed", exit_code=code)
        return name, reasons, code, outs

    pending = dict(dag)
    done: set[str] = set()
    failure: StageFailed | None = None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[Future[tuple[str, list[str], int, dict[str, Any] | None]], str] = {}
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
                _, reasons, code, outs = fut.result()
                if code != 0:
                    emit(name, "failed", reasons)
                    what = reasons[0] if code == -1 else f"exited with code {code}"
                    failure = failure or StageFailed(
                        name, f"stage {name!r} failed: {what}", code if code > 0 else 1
                    )
                    continue
                done.add(name)
                if not reasons:
                    result.skipped.append(name)
                    continue
                result.ran.append(name)
                result.reasons[name] = reasons
                entry = _lock_entry(pipeline, pipeline.stages[name], cache)
                for e in entry["outs"]:
                    if outs and e["path"] in outs:
                        e["artifact"] = outs[e["path"]]["artifact"]
                lock[name] = entry
                _write_lock(pipeline, {n: lock[n] for n in pipeline.stages if n in lock})
                emit(name, "done", reasons)
    if failure is not None:
        raise failure
    return result
