"""``add``, ``status``, ``checkout`` and ``diff`` of dataset versions.

Hashing and storing reuse :func:`mltrail.artifacts.ops.log_files` (parallel, with the
stat-keyed hash cache); a workspace is compared with a pointer by hashing it the same
way (unchanged files are not read again), so ``status`` and ``checkout`` touch only
what changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.artifacts.hashcache import HashCache
from mltrail.artifacts.ops import (
    _walk,
    diff_manifests,
    log_files,
    read_manifest,
    register_store,
)
from mltrail.data.pointer import (
    SUFFIX,
    Pointer,
    add_to_gitignore,
    parse_pointer,
    pointer_path,
    read_pointer,
    write_pointer,
)
from mltrail.entities import ArtifactVersion, ManifestEntry
from mltrail.errors import InvalidValueError, ObjectNotFound
from mltrail.objects import ObjectStore

__all__ = [
    "AddResult",
    "DataStatus",
    "add",
    "checkout",
    "diff_revisions",
    "load_manifest",
    "require_objects",
    "status",
    "workspace_manifest",
    "write_files",
]

#: Threads hashing workspace files and writing checked-out files.
WORKERS = 4
_SHOWN = 10  # missing objects named in an error message


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add`` did: the pointer, where it is, and whether files changed."""

    pointer: Pointer
    pointer_file: Path
    pointer_written: bool
    gitignore_added: bool
    version: ArtifactVersion | None = None  # the dataset version, when a store was given


@dataclass(frozen=True, slots=True)
class DataStatus:
    """How a workspace path compares with its pointer."""

    pointer_file: str
    path: str
    state: str  # "unchanged", "modified" or "missing"
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "pointer": self.pointer_file,
            "path": self.path,
            "state": self.state,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
        }


def add(
    objects: ObjectStore,
    path: str | os.PathLike[str],
    *,
    hash_cache: Path | None = None,
    progress: Callable[[int], None] | None = None,
    store: Any = None,
    project: str | None = None,
) -> AddResult:
    """Store a file or folder's files, write ``PATH.mltrail`` and ignore PATH in git.

    ``progress`` is called with the bytes of each file as it is stored (or found
    unchanged). With a tracking ``store``, the data is also recorded there as a
    ``dataset`` artifact version (see :mod:`mltrail.data.versions`; a new version only
    when the content changes), so ``mltrail gc`` keeps its objects.
    """
    pfile = pointer_path(path)
    target = pfile.with_name(pfile.name[: -len(SUFFIX)])
    if os.fspath(path).endswith(SUFFIX) and pfile == Path(os.path.normpath(os.fspath(path))):
        raise InvalidValueError(
            f"{os.fspath(path)!r} is a pointer file", hint="give the data path instead"
        )
    if not target.exists():
        raise InvalidValueError(f"{str(target)!r} does not exist", hint="check the path")
    digest, size, count = log_files(objects, target, hash_cache=hash_cache, progress=progress)
    kind = "directory" if target.is_dir() else "file"
    pointer = Pointer(target.name, digest, size, count, kind)
    version = None
    if store is not None:
        from mltrail.data.versions import record_version

        register_store(objects, store.uri)
        version = record_version(store, pfile, pointer, project)
    written = write_pointer(pfile, pointer)
    ignored = add_to_gitignore(target.parent, target.name)
    return AddResult(pointer, pfile, written, ignored, version)


def load_manifest(objects: ObjectStore, pointer: Pointer, where: str) -> list[ManifestEntry]:
    """The manifest a pointer names; ``ObjectNotFound`` if this store does not hold it."""
    if not objects.exists(pointer.hash):
        raise ObjectNotFound(
            f"the manifest {pointer.hash} of {where} is not in {objects.uri}",
            hint="run mltrail data add where the data is, or use the store it was added to "
            "(--tracking-uri / MLTRAIL_OBJECTS)",
        )
    return read_manifest(objects, pointer.hash)


def _target(pfile: Path, pointer: Pointer) -> Path:
    return pfile.parent / pointer.path


def workspace_manifest(target: Path, *, hash_cache: Path | None = None) -> list[ManifestEntry]:
    """The files at ``target`` as manifest entries (paths as ``log_files`` names them).

    Files whose stat matches the hash cache are not read.
    """
    if not target.exists():
        return []
    files = _walk(target)
    cache = HashCache(hash_cache) if hash_cache is not None else None
    stats = {real: os.stat(real) for _, _, real in files}
    known = cache.get_many(stats) if cache is not None else {}

    def one(item: tuple[str, str, str]) -> str:
        from mltrail.objects.hashing import hash_file

        full, real = item[1], item[2]
        oid, _ = hash_file(full)
        if cache is not None and HashCache.key(os.stat(real)) == HashCache.key(stats[real]):
            cache.put(real, stats[real], oid)
        return oid

    todo = [item for item in files if item[2] not in known]  # only these are read
    if todo:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            known.update(zip((t[2] for t in todo), pool.map(one, todo), strict=True))
    if cache is not None:
        cache.flush()
    return [ManifestEntry(rel, known[real], stats[real].st_size) for rel, _, real in files]


def _compare(
    pfile: Path, pointer: Pointer, manifest: list[ManifestEntry], hash_cache: Path | None
) -> DataStatus:
    target = _target(pfile, pointer)
    if not target.exists():
        return DataStatus(str(pfile), str(target), "missing", removed=[e.path for e in manifest])
    kind = "directory" if target.is_dir() else "file"
    here = workspace_manifest(target, hash_cache=hash_cache)
    diff = diff_manifests(manifest, here)
    changed = kind != pointer.type or any(diff.values())
    return DataStatus(
        str(pfile),
        str(target),
        "modified" if changed else "unchanged",
        added=diff["added"],
        removed=diff["removed"],
        modified=diff["modified"],
    )


def status(
    objects: ObjectStore, path: str | os.PathLike[str], *, hash_cache: Path | None = None
) -> DataStatus:
    """Compare the data at a pointer (or its data path) with what the pointer records."""
    pfile = pointer_path(path)
    pointer = read_pointer(pfile)
    manifest = load_manifest(objects, pointer, str(pfile))
    return _compare(pfile, pointer, manifest, hash_cache)


def checkout(
    objects: ObjectStore,
    path: str | os.PathLike[str],
    *,
    hash_cache: Path | None = None,
    mode: str = "auto",
) -> DataStatus:
    """Make the workspace match the pointer; returns what differed before.

    Only differing files are written; files not in the manifest are removed from the
    target folder. ``mode`` ``auto`` reflinks, else copies (so the workspace stays
    writable and the store safe); ``hardlink``, ``reflink`` or ``copy`` force one method.
    """
    if mode not in ("auto", "reflink", "hardlink", "copy"):
        raise InvalidValueError(
            f"unknown checkout mode {mode!r}", hint="use auto, reflink, hardlink or copy"
        )
    pfile = pointer_path(path)
    pointer = read_pointer(pfile)
    manifest = load_manifest(objects, pointer, str(pfile))
    before = _compare(pfile, pointer, manifest, hash_cache)
    if before.state == "unchanged":
        return before
    target = _target(pfile, pointer)
    wanted = set(before.removed) | set(before.modified)
    kind = ("directory" if target.is_dir() else "file") if target.exists() else None
    if kind is not None and kind != pointer.type:  # a folder became a file or back
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
        wanted = {e.path for e in manifest}
    todo = [e for e in manifest if e.path in wanted]
    require_objects(objects, todo, str(pfile))
    if pointer.type == "directory":
        target.mkdir(parents=True, exist_ok=True)
        root = target
        if kind == pointer.type:
            _remove_extra(target, before.added)
    else:
        root = target.parent
    write_files(objects, todo, root, mode)
    return before


def require_objects(objects: ObjectStore, entries: list[ManifestEntry], where: str) -> None:
    """Raise ``ObjectNotFound`` naming the entries whose objects the store lacks."""
    present = objects.exists_many({e.oid for e in entries})
    missing = [e for e in entries if e.oid not in present]
    if missing:
        names = ", ".join(f"{e.path} ({e.oid[:12]})" for e in missing[:_SHOWN])
        more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        raise ObjectNotFound(
            f"{len(missing)} object(s) of {where} are not in {objects.uri}: {names}{more}",
            hint="add the data again where it exists (mltrail data add), "
            "or point --tracking-uri / MLTRAIL_OBJECTS at the store that has them",
        )


def _remove_extra(target: Path, extra: list[str]) -> None:
    for rel in extra:
        (target / rel).unlink(missing_ok=True)
    folders = {(target / rel).parent for rel in extra}
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != target and folder.is_relative_to(target):
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
            folder = folder.parent


def write_files(
    objects: ObjectStore, entries: list[ManifestEntry], root: Path, mode: str = "auto"
) -> None:
    """Write manifest entries under ``root`` from the store, verified, ``WORKERS`` at a time.

    ``auto`` reflinks local objects, else copies: the files stay writable and a write
    to them never reaches the store.
    """
    from mltrail.artifacts.ops import _safe_target
    from mltrail.errors import ObjectCorrupted, ObjectStoreError
    from mltrail.objects.checkout import link_or_copy
    from mltrail.objects.hashing import hash_file

    local = getattr(objects, "path_of", None)

    def one(e: ManifestEntry) -> None:
        dest = _safe_target(root, e.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir():
            shutil.rmtree(dest)
        if local is None:
            objects.get_file(e.oid, dest)
            return
        src = local(e.oid)
        if hash_file(src)[0] != e.oid:
            raise ObjectCorrupted(f"object {e.oid} in {objects.uri} does not match its hash")
        if mode != "auto":
            link_or_copy(src, dest, mode)  # type: ignore[arg-type]
            return
        try:
            link_or_copy(src, dest, "reflink")
        except ObjectStoreError:
            link_or_copy(src, dest, "copy")

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, entries))


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise InvalidValueError("git is not installed", hint="install git") from None


def _pointers_at(rev: str, cwd: Path) -> list[str]:
    done = _git(["ls-tree", "-r", "--name-only", "-z", rev], cwd)
    if done.returncode != 0:
        raise InvalidValueError(
            f"cannot list {rev!r}: {done.stderr.decode(errors='replace').strip()}",
            hint="give a commit, branch or tag of this git repository",
        )
    names = done.stdout.decode().split("\0")
    return [n for n in names if n.endswith(SUFFIX) and n.rsplit("/", 1)[-1] != SUFFIX]


def _pointer_at(rev: str, rel: str, cwd: Path) -> Pointer | None:
    check = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
    if check.returncode != 0:
        raise InvalidValueError(
            f"{rev!r} is not a commit of the git repository at {cwd}",
            hint="give a commit, branch or tag (git log --oneline)",
        )
    done = _git(["show", f"{rev}:./{rel}"], cwd)
    if done.returncode != 0:
        return None  # the pointer did not exist at that revision
    return parse_pointer(done.stdout.decode("utf-8", errors="replace"), f"{rev}:{rel}")


def diff_revisions(
    objects: ObjectStore,
    rev1: str,
    rev2: str,
    paths: list[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Added/removed/modified files of each pointer between two git revisions.

    Without ``paths``, every pointer under ``cwd`` at either revision. A pointer absent
    at one side counts as an empty manifest there.
    """
    here = Path(cwd) if cwd is not None else Path.cwd()
    if paths:
        rels = []
        for p in paths:
            pf = pointer_path(p)
            full = pf if pf.is_absolute() else here / pf
            rels.append(os.path.relpath(full, here).replace(os.sep, "/"))
    else:
        rels = sorted(set(_pointers_at(rev1, here)) | set(_pointers_at(rev2, here)))
    out = []
    for rel in rels:
        a, b = _pointer_at(rev1, rel, here), _pointer_at(rev2, rel, here)
        if a is None and b is None:
            raise InvalidValueError(
                f"{rel} exists at neither {rev1} nor {rev2}",
                hint="give the data path or pointer file as committed",
            )
        ma = load_manifest(objects, a, f"{rev1}:{rel}") if a is not None else []
        mb = load_manifest(objects, b, f"{rev2}:{rel}") if b is not None else []
        diff = diff_manifests(ma, mb)
        out.append(
            {
                "pointer": rel,
                "hash1": a.hash if a else None,
                "hash2": b.hash if b else None,
                "changed": (a.hash if a else None) != (b.hash if b else None),
                **diff,
            }
        )
    return out
