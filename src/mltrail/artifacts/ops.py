"""Logging, downloading, comparing and tracing artifacts (store + object store)."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
Progress = Callable[[int], None]


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, file) for every file; symlinks may not leave ``root``."""
    if root.is_file():
        yield validate_relpath(root.name), root
        return
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            full = Path(dirpath, fname)
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidArtifactPath(
                        f"{full} is a symlink to {target}, outside the artifact folder",
                        hint="copy the file in, or log it as a reference artifact",
                    )
                if not target.is_file():
                    continue
            rel = full.relative_to(root).as_posix()
            yield validate_relpath(rel), full


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
    stored are not read again.
    """
    root = Path(path)
    if not root.exists():
        raise InvalidValueError(f"{str(root)!r} does not exist", hint="check the path")
    files = list(_walk(root))
    if not files:
        raise InvalidValueError(f"{str(root)!r} holds no files", hint="nothing to log")

    cache = HashCache(hash_cache) if hash_cache is not None else None

    def one(item: tuple[str, Path]) -> ManifestEntry:
        rel, full = item
        if cache is not None and not reference:
            real = full.resolve()
            st = real.stat()
            oid = cache.get(real, st)
            if oid is not None and objects.exists(oid):  # unchanged and stored: no read
                if progress is not None:
                    progress(st.st_size)
                return ManifestEntry(rel, oid, st.st_size)
        if reference:
            from mltrail.objects.hashing import hash_file

            oid, size = hash_file(full)
            entry = ManifestEntry(rel, oid, size, str(full.resolve()))
        else:
            info = objects.put_file(full)
            entry = ManifestEntry(rel, info.oid, info.size)
            if cache is not None:
                after = real.stat()
                if HashCache._key(after) == HashCache._key(st):  # not changed while read
                    cache.put(real, after, info.oid)
        if progress is not None:
            progress(entry.size)
        return entry

    if len(files) > 8:
        with ThreadPoolExecutor(max_workers=8) as pool:
            entries = list(pool.map(one, files))
    else:
        entries = [one(f) for f in files]
    if cache is not None:
        cache.flush()
    digest = objects.put_bytes(_manifest_bytes(entries)).oid
    return digest, sum(e.size for e in entries), len(entries)


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
