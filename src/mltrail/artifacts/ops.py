"""Logging, downloading, comparing and tracing artifacts (store + object store)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mltrail.artifacts.hashcache import HashCache
from mltrail.artifacts.names import validate_name, validate_relpath
from mltrail.config import cache_dir
from mltrail.entities import ArtifactVersion, LineageNode, ManifestEntry
from mltrail.errors import InvalidArtifactPath, InvalidValueError
from mltrail.objects import ObjectStore

__all__ = [
    "cache_prune",
    "diff_manifests",
    "download",
    "lineage",
    "log_files",
    "read_manifest",
    "referenced_objects",
]

MANIFEST_FORMAT = 1
COMPLETE = ".complete"  # <cache>/<digest>.complete marks a finished download
DEFAULT_CACHE_MAX = 10 * 2**30
#: Threads storing an artifact's files.
WORKERS = 4
_T = TypeVar("_T")
_R = TypeVar("_R")
Progress = Callable[[int], None]


def _walk(root: Path) -> list[tuple[str, str, str]]:
    """(relative posix path, path, real path) of every file under ``root``, or of ``root``.

    Symlinks to files inside ``root`` are followed; one leading outside is refused;
    symlinked folders, and anything neither a file nor a folder, are skipped. Folders
    are listed with ``scandir``, so telling files from folders and symlinks costs no
    extra system call.
    """
    if root.is_file():
        return [(validate_relpath(root.name), str(root), os.path.realpath(root))]
    real_root = root.resolve()
    files: list[tuple[str, str, str]] = []
    stack = [(str(root), str(real_root), "")]
    while stack:
        folder, real_folder, prefix = stack.pop()
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        subfolders = []
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidArtifactPath(
                        f"{entry.path} is a symlink to {target}, outside the artifact folder",
                        hint="copy the file in, or log it as a reference artifact",
                    )
                if target.is_file():
                    files.append((validate_relpath(rel), entry.path, str(target)))
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append((entry.path, os.path.join(real_folder, entry.name), rel + "/"))
            elif entry.is_file(follow_symlinks=False):
                files.append(
                    (validate_relpath(rel), entry.path, os.path.join(real_folder, entry.name))
                )
        stack.extend(reversed(subfolders))
    return files


def _manifest_bytes(entries: list[ManifestEntry]) -> bytes:
    files = [
        [e.path, e.oid, e.size] if e.ref is None else [e.path, e.oid, e.size, e.ref]
        for e in sorted(entries, key=lambda e: e.path)
    ]
    doc = {"format": MANIFEST_FORMAT, "files": files}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def log_files(
    objects: ObjectStore,
    path: str | os.PathLike[str],
    *,
    reference: bool = False,
    progress: Progress | None = None,
    hash_cache: Path | None = None,
) -> tuple[str, int, int]:
    """Store a file or directory's files; returns (manifest oid, total size, file count).

    With ``reference`` the files stay where they are: only their hashes are recorded.
    With ``hash_cache`` (a file), files whose stat is unchanged since they were last
    stored, and whose object is still there, are not read again: the cache is read in
    one batch, and the objects' existence checked in one ``exists_many`` call.

    The rest are stored by a few threads (:data:`WORKERS`): a small file costs mostly
    system calls (create, write, rename), which release the GIL and overlap.
    """
    root = Path(path)
    if not root.exists():
        raise InvalidValueError(f"{str(root)!r} does not exist", hint="check the path")
    files = _walk(root)
    if not files:
        raise InvalidValueError(f"{str(root)!r} holds no files", hint="nothing to log")

    cache = HashCache(hash_cache) if hash_cache is not None and not reference else None
    entries: list[ManifestEntry] = []
    stats: dict[str, os.stat_result] = {}
    todo = files
    if cache is not None:
        stats = {real: os.stat(real) for _, _, real in files}
        known = cache.get_many(stats)
        stored = objects.exists_many(set(known.values())) if known else set()
        todo = []
        for item in files:
            oid = known.get(item[2])
            if oid is not None and oid in stored:  # unchanged and stored: not read
                size = stats[item[2]].st_size
                entries.append(ManifestEntry(item[0], oid, size))
                if progress is not None:
                    progress(size)
            else:
                todo.append(item)

    def one(item: tuple[str, str, str]) -> ManifestEntry:
        rel, full, real = item
        if reference:
            from mltrail.objects.hashing import hash_file

            oid, size = hash_file(full)
            entry = ManifestEntry(rel, oid, size, real)
        else:
            info = objects.put_file(full)
            entry = ManifestEntry(rel, info.oid, info.size)
            if cache is not None:
                after = os.stat(real)
                if HashCache.key(after) == HashCache.key(stats[real]):  # not changed meanwhile
                    cache.put(real, after, info.oid)
        if progress is not None:
            progress(entry.size)
        return entry

    entries.extend(_in_threads(one, todo, WORKERS))
    if cache is not None:
        cache.flush()
    digest = objects.put_bytes(_manifest_bytes(entries)).oid
    return digest, sum(e.size for e in entries), len(entries)


def _in_threads(fn: Callable[[_T], _R], items: list[_T], workers: int) -> list[_R]:
    """``[fn(x) for x in items]`` (in no particular order) on up to ``workers`` threads.

    Each thread takes the next item from one shared iterator: no future per item, which
    costs more than storing a small file. The first error stops the others early and
    is raised.
    """
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    shared = iter(items)  # next() on a list iterator is atomic under the GIL
    failed = threading.Event()

    def work() -> list[_R]:
        done = []
        for item in shared:
            if failed.is_set():
                break
            try:
                done.append(fn(item))
            except BaseException:
                failed.set()
                raise
        return done

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work) for _ in range(workers)]
    return [result for f in futures for result in f.result()]


def read_manifest(objects: ObjectStore, digest: str) -> list[ManifestEntry]:
    with objects.open(digest) as fh:
        doc = json.loads(fh.read())
    if doc.get("format") != MANIFEST_FORMAT:
        raise InvalidValueError(f"manifest {digest} has unknown format {doc.get('format')!r}")
    return [
        ManifestEntry(validate_relpath(f[0]), f[1], int(f[2]), f[3] if len(f) > 3 else None)
        for f in doc["files"]
    ]


def _safe_target(root: Path, rel: str) -> Path:
    """``root/rel`` after checking that no existing symlink leads it outside ``root``."""
    target = root / validate_relpath(rel)
    if not target.resolve().is_relative_to(root.resolve()):
        raise InvalidArtifactPath(
            f"{rel!r} would be written outside {root} (through a symlink)",
            hint="remove the symlink from the destination folder",
        )
    return target


def _materialize(
    objects: ObjectStore, entries: list[ManifestEntry], root: Path, progress: Progress | None
) -> None:
    local_root = getattr(objects, "root", None)

    def one(e: ManifestEntry) -> None:
        target = _safe_target(root, e.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if e.ref is not None:
            from mltrail.objects.hashing import hash_file

            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
            shutil.copyfile(e.ref, tmp)
            oid, _ = hash_file(tmp)
            if oid != e.oid:
                tmp.unlink()
                from mltrail.errors import ObjectCorrupted

                raise ObjectCorrupted(
                    f"the referenced file {e.ref} changed since it was logged "
                    f"(hash {oid[:12]}, expected {e.oid[:12]})"
                )
            os.replace(tmp, target)
        elif local_root is not None:
            # Local store: verify the object, then reflink, hardlink (read-only) or copy.
            from mltrail.errors import ObjectCorrupted
            from mltrail.objects.checkout import link_or_copy
            from mltrail.objects.hashing import hash_file

            src = objects.path_of(e.oid)  # type: ignore[attr-defined]
            if hash_file(src)[0] != e.oid:
                raise ObjectCorrupted(f"object {e.oid} in {objects.uri} does not match its hash")
            link_or_copy(src, target)
        else:
            objects.get_file(e.oid, target)
        if progress is not None:
            progress(e.size)

    if len(entries) > 8:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, entries))
    else:
        for e in entries:
            one(e)


def download(
    objects: ObjectStore,
    version: ArtifactVersion,
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Path:
    """The artifact's files in ``root``, or in the shared cache (keyed by manifest)."""
    entries = read_manifest(objects, version.digest)
    if root is not None:
        dest = Path(root)
        dest.mkdir(parents=True, exist_ok=True)
        _materialize(objects, entries, dest, progress)
        return dest
    cache = cache_dir()
    dest = cache / version.digest
    marker = cache / f"{version.digest}{COMPLETE}"
    if marker.exists() and dest.is_dir():
        os.utime(marker)  # LRU: most recently used
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{version.digest}.{uuid.uuid4().hex[:8]}.partial"
    try:
        _materialize(objects, entries, tmp, progress)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        marker.write_text(f"{version.project}/{version.spec}\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written stays
        raise
    cache_prune()
    return dest


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cache_prune(max_bytes: int | None = None) -> tuple[int, int]:
    """Evict least recently used cache entries until the cache fits; (entries, bytes)."""
    if max_bytes is None:
        max_bytes = int(os.environ.get("MLTRAIL_CACHE_MAX_BYTES") or DEFAULT_CACHE_MAX)
    cache = cache_dir()
    if not cache.is_dir():
        return 0, 0
    entries = []
    for d in cache.iterdir():
        marker = cache / f"{d.name}{COMPLETE}"
        if d.is_dir() and marker.exists():
            entries.append((marker.stat().st_mtime, _tree_size(d), d))
        elif d.name.endswith(".partial") and time.time() - d.stat().st_mtime > 86400:
            shutil.rmtree(d, ignore_errors=True)  # left by a killed process
    total = sum(size for _, size, _ in entries)
    removed = freed = 0
    for _, size, d in sorted(entries):
        if total <= max_bytes:
            break
        (cache / f"{d.name}{COMPLETE}").unlink(missing_ok=True)
        shutil.rmtree(d, ignore_errors=True)
        total -= size
        removed += 1
        freed += size
    return removed, freed


def diff_manifests(a: list[ManifestEntry], b: list[ManifestEntry]) -> dict[str, list[str]]:
    ma = {e.path: e.oid for e in a}
    mb = {e.path: e.oid for e in b}
    return {
        "added": sorted(set(mb) - set(ma)),
        "removed": sorted(set(ma) - set(mb)),
        "modified": sorted(p for p in set(ma) & set(mb) if ma[p] != mb[p]),
    }


STORES_FILE = ".mltrail-stores"


def register_store(objects: ObjectStore, store_uri: str) -> None:
    """Note in a local object folder that ``store_uri`` keeps objects there (for gc)."""
    root = getattr(objects, "root", None)
    if root is None:
        return
    marker = Path(root) / STORES_FILE
    line = _redacted(store_uri)
    try:
        known = marker.read_text().splitlines() if marker.exists() else []
        if line not in known:
            with open(marker, "a") as fh:
                fh.write(line + "\n")
    except OSError:
        pass  # best effort: gc then refuses (unknown users) rather than guesses


def other_stores(objects: ObjectStore, store_uri: str) -> list[str]:
    """Stores other than ``store_uri`` recorded as keeping objects in this folder."""
    root = getattr(objects, "root", None)
    if root is None:
        return []
    marker = Path(root) / STORES_FILE
    lines = marker.read_text().splitlines() if marker.exists() else []
    me = _redacted(store_uri)
    return [line for line in lines if line and line != me]


def _redacted(uri: str) -> str:
    from mltrail.store.sql.engine import redact

    return redact(uri)


def referenced_objects(store: Any, objects: ObjectStore) -> set[str]:
    """Every object a manifest points at, and the manifests themselves."""
    refs: set[str] = set()
    for digest in store.all_manifest_digests():
        refs.add(digest)
        if objects.exists(digest):
            refs.update(e.oid for e in read_manifest(objects, digest) if e.ref is None)
    return refs


def lineage(store: Any, project: str, target: str, direction: str, depth: int) -> LineageNode:
    """The graph around a run id or ``name:vN``: ``up`` to inputs, ``down`` to outputs."""
    if direction not in ("up", "down"):
        raise InvalidValueError(f"direction must be 'up' or 'down', not {direction!r}")
    seen: set[str] = set()

    def run_node(run_id: str, left: int) -> LineageNode:
        run = store.get_run(run_id)
        label = f"run {run.name} ({run.id}, {run.status})"
        if left <= 0 or run_id in seen:
            return LineageNode("run", run_id, label)
        seen.add(run_id)
        edges = store.run_artifacts(run_id)["in" if direction == "up" else "out"]
        return LineageNode("run", run_id, label, tuple(art_node(v, left - 1) for v in edges))

    def art_node(v: ArtifactVersion, left: int) -> LineageNode:
        key = f"{v.project}/{v.spec}"
        aliases = ", ".join(a for a in v.aliases)
        label = f"{v.type} {v.spec}" + (f" [{aliases}]" if aliases else "")
        if left <= 0 or key in seen:
            return LineageNode("artifact", v.spec, label)
        seen.add(key)
        runs = store.artifact_runs(v.project, v.name, v.version)
        ids = runs["out"] if direction == "up" else runs["in"]
        return LineageNode("artifact", v.spec, label, tuple(run_node(r, left - 1) for r in ids))

    if ":" in target or not _is_run(store, target):
        from mltrail.artifacts.names import parse_spec

        name, ref = parse_spec(target)
        return art_node(store.get_artifact_version(project, validate_name(name), ref), depth)
    return run_node(target, depth)


def _is_run(store: Any, target: str) -> bool:
    from mltrail.errors import RunNotFound

    try:
        store.get_run(target)
    except RunNotFound:
        return False
    return True


def metadata_dict(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        json.dumps(dict(metadata or {}))
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"artifact metadata must be JSON-able: {exc}") from exc
    return dict(metadata or {})
