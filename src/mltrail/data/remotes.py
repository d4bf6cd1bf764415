"""Data remotes: push and pull the objects of ``*.mltrail`` pointers to another store.

Remotes are named in ``.mltrail-remotes.yaml`` at the git toplevel (commit it to share
them)::

    default: origin
    remotes:
      origin: s3://bucket/data      # or a folder; relative paths are from the toplevel

Only missing objects move (``exists_many`` on the other side), ``jobs`` at a time, the
manifest last (a remote never holds a manifest without its files). A local index (one
object id a line, per remote URL, beside the tracking store) remembers what a remote
holds, so pushing unchanged data again makes no remote call per object; ``verify``
asks the remote about every object instead (after a ``gc`` there, say).

An interrupted transfer resumes where it stopped: each object lands whole or not at all
(atomic rename locally, a single PUT or a completed multipart upload on S3), objects
sent are added to the index as they complete, and the next run skips them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mltrail.data.pointer import Pointer, pointer_path, read_pointer
from mltrail.errors import ConfigurationError, InvalidValueError
from mltrail.objects import ObjectStore

__all__ = [
    "CONFIG_FILE",
    "RemoteIndex",
    "Transfer",
    "TransferProgress",
    "add_remote",
    "fetch",
    "list_remotes",
    "open_remote",
    "push",
]

CONFIG_FILE = ".mltrail-remotes.yaml"
#: Objects in flight at once (network round trips overlap; hashing releases the GIL).
WORKERS = 8
_INDEX_BATCH = 1000  # objects sent between two appends to the index


class TransferProgress(Protocol):
    """What a progress display gets: the objects and bytes to move, then each object."""

    def start(self, objects: int, nbytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Transfer:
    """What a push or fetch did for one pointer."""

    pointer: str
    objects: int  # objects the pointer needs (manifest included)
    checked: int  # asked the remote about (not known from the index)
    transferred: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "pointer": self.pointer,
            "objects": self.objects,
            "checked": self.checked,
            "transferred": self.transferred,
            "bytes": self.bytes,
        }


def _config_path(root: Path) -> Path:
    return root / CONFIG_FILE


def _load(root: Path) -> dict[str, Any]:
    import yaml

    path = _config_path(root)
    if not path.exists():
        return {"remotes": {}}
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from None
    remotes = doc.get("remotes") if isinstance(doc, dict) else None
    if not isinstance(remotes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in remotes.items()
    ):
        raise ConfigurationError(
            f"{path} has no 'remotes' mapping of names to URLs",
            hint="mltrail data remote add NAME URL writes it",
        )
    return {"default": doc.get("default"), "remotes": remotes}


def list_remotes(root: Path) -> tuple[str | None, dict[str, str]]:
    """The default remote's name and every remote (name -> URL) configured at ``root``."""
    doc = _load(root)
    return doc.get("default"), dict(doc["remotes"])


def add_remote(root: Path, name: str, url: str, *, default: bool = False) -> Path:
    """Add (or change) a remote; the first one becomes the default. Returns the file."""
    import yaml

    from mltrail.artifacts.names import validate_name

    validate_name(name, "remote name")
    if not url:
        raise InvalidValueError("the remote URL is empty", hint="give a folder or s3://bucket/x")
    doc = _load(root)
    doc["remotes"][name] = url
    if default or not doc.get("default") or doc["default"] not in doc["remotes"]:
        doc["default"] = name
    path = _config_path(root)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def open_remote(root: Path, name: str | None) -> tuple[str, ObjectStore]:
    """The URL and object store of remote ``name`` (the default if ``None``)."""
    from mltrail.objects import open_object_store

    default, remotes = list_remotes(root)
    chosen = name or default
    if not remotes or chosen is None:
        raise ConfigurationError(
            f"no data remote configured in {_config_path(root)}",
            hint="add one: mltrail data remote add NAME PATH|s3://bucket/prefix",
        )
    if chosen not in remotes:
        raise ConfigurationError(
            f"no data remote {chosen!r}", hint=f"known: {', '.join(sorted(remotes))}"
        )
    url = remotes[chosen]
    if "://" not in url and not os.path.isabs(url):
        url = str((root / url).resolve())
    return url, open_object_store(url)


class RemoteIndex:
    """Object ids a remote is known to hold (a local file, appended to)."""

    def __init__(self, folder: Path, url: str) -> None:
        from mltrail.objects.hashing import hash_bytes

        self.path = folder / "remote-index" / f"{hash_bytes(url.encode())[:24]}.txt"
        try:
            self.known = set(self.path.read_text().split())
        except FileNotFoundError:
            self.known = set()

    def add(self, oids: Iterable[str]) -> None:
        """Remember that the remote holds ``oids``."""
        new = sorted(set(oids) - self.known)
        if not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write("".join(o + "\n" for o in new))
        self.known.update(new)


def _copy(
    src: ObjectStore,
    dst: ObjectStore,
    oids: list[str],
    *,
    jobs: int = WORKERS,
    index: RemoteIndex | None = None,
    progress: TransferProgress | None = None,
) -> int:
    """Copy objects from ``src`` to ``dst`` (via a temporary file unless local); bytes.

    With ``index``, objects are recorded there as they arrive, in batches.
    """
    local = getattr(src, "path_of", None)

    def one(oid: str) -> int:
        if local is not None:
            info = dst.put_file(local(oid))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "obj"
                src.get_file(oid, path)
                info = dst.put_file(path)
        if info.oid != oid:
            raise InvalidValueError(f"object {oid} arrived as {info.oid}: the source is damaged")
        if progress is not None:
            progress.advance(info.size)
        return info.size

    total, done = 0, []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            for oid, size in zip(oids, pool.map(one, oids), strict=True):
                total += size
                done.append(oid)
                if index is not None and len(done) >= _INDEX_BATCH:
                    index.add(done)
                    done = []
        finally:  # what arrived before a failure (or Ctrl-C) is not sent again
            if index is not None:
                index.add(done)
    return total


def _resolve(path: str | os.PathLike[str]) -> tuple[Path, Pointer]:
    pfile = pointer_path(path)
    return pfile, read_pointer(pfile)


def push(
    objects: ObjectStore,
    remote: ObjectStore,
    index: RemoteIndex,
    path: str | os.PathLike[str],
    *,
    jobs: int = WORKERS,
    verify: bool = False,
    progress: TransferProgress | None = None,
) -> Transfer:
    """Copy the objects of a pointer the remote lacks; the manifest last.

    Objects the index lists are not asked about unless ``verify``.
    """
    from mltrail.data.ops import load_manifest

    pfile, pointer = _resolve(path)
    entries = load_manifest(objects, pointer, str(pfile))
    sizes = {e.oid: e.size for e in entries if e.ref is None}
    files = sorted(sizes)
    todo = files if verify else [o for o in files if o not in index.known]
    missing = sorted(set(todo) - remote.exists_many(todo)) if todo else []
    if progress is not None:
        progress.start(len(missing), sum(sizes[o] for o in missing))
    sent = _copy(objects, remote, missing, jobs=jobs, index=index, progress=progress)
    index.add(todo)
    checked = len(todo)
    if verify or pointer.hash not in index.known:
        checked += 1
        if not remote.exists(pointer.hash):
            sent += _copy(objects, remote, [pointer.hash])
            missing.append(pointer.hash)
        index.add([pointer.hash])
    return Transfer(str(pfile), len(files) + 1, checked, len(missing), sent)


def fetch(
    objects: ObjectStore,
    remote: ObjectStore,
    index: RemoteIndex,
    path: str | os.PathLike[str],
    *,
    jobs: int = WORKERS,
    progress: TransferProgress | None = None,
) -> Transfer:
    """Copy the objects of a pointer this store lacks from the remote."""
    from mltrail.artifacts.ops import read_manifest
    from mltrail.errors import ObjectNotFound

    pfile, pointer = _resolve(path)
    got, sent = 0, 0
    if not objects.exists(pointer.hash):
        if not remote.exists(pointer.hash):
            raise ObjectNotFound(
                f"the manifest {pointer.hash} of {pfile} is not in {remote.uri}",
                hint="push it from where it was added: mltrail data push",
            )
        sent += _copy(remote, objects, [pointer.hash])
        got += 1
    sizes = {e.oid: e.size for e in read_manifest(objects, pointer.hash) if e.ref is None}
    files = sorted(sizes)
    missing = sorted(set(files) - objects.exists_many(files))
    if progress is not None:
        progress.start(len(missing), sum(sizes[o] for o in missing))
    sent += _copy(remote, objects, missing, jobs=jobs, progress=progress)
    index.add([*missing, pointer.hash] if got else missing)
    return Transfer(str(pfile), len(files) + 1, len(missing), got + len(missing), sent)
