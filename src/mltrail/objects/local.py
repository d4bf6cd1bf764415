"""Objects in a local directory: ``<root>/<oid[:2]>/<oid[2:]>``, read-only files.

>>> import tempfile
>>> store = LocalObjectStore(tempfile.mkdtemp())
>>> oid = store.put_bytes(b"hello").oid
>>> store.path_of(oid).relative_to(store.root).as_posix()[:10]
'ea/8f163db'
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from mltrail.errors import ObjectNotFound, ObjectStoreError
from mltrail.objects import ObjectInfo, StoredObject
from mltrail.objects._io import atomic_write, create_exclusive, open_verified, temp_path
from mltrail.objects.hashing import (
    OID_LENGTH,
    ProgressCallback,
    copy_and_hash,
    hash_bytes,
    new_hasher,
    validate_oid,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["LocalObjectStore"]

#: Objects are immutable; making them read-only also protects hardlinked checkouts.
OBJECT_MODE = 0o444
_TMP_DIR = ".tmp"
_KERNEL_COPY_MIN = 16 * 2**20
_HEX = frozenset("0123456789abcdef")


@contextlib.contextmanager
def _os_errors(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ObjectStoreError(f"local object store: cannot {action}: {exc}") from exc


class LocalObjectStore:
    """An :class:`~mltrail.objects.ObjectStore` in a directory (created if missing).

    Safe for concurrent writers (threads and processes): content goes to a temp file,
    is hashed on the way, made read-only, then renamed into place; first write wins.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        with _os_errors(f"create {self.root}"):
            self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    @property
    def uri(self) -> str:
        """``file://`` URI of the root directory."""
        return self.root.as_uri()

    def path_of(self, oid: str) -> Path:
        """Where object ``oid`` lives (whether or not it exists); validates ``oid``."""
        oid = validate_oid(oid)
        return self.root / oid[:2] / oid[2:]

    def exists(self, oid: str) -> bool:
        """True if the object is stored."""
        return self.path_of(oid).is_file()

    def exists_many(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` that is stored."""
        return {oid for oid in oids if self.exists(oid)}

    def put_file(
        self, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> ObjectInfo:
        """Copy the file in, hashing while copying (the source is read once).

        Files of 16 MiB and more are copied by the kernel (``copy_file_range``) while a
        second thread hashes the source: the copy never passes through Python, the hash
        reads from the page cache the copy fills, and both release the GIL.
        """
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0
        if size >= _KERNEL_COPY_MIN and progress is None:
            return self._put_large(path)
        tmp_dir = self.root / _TMP_DIR
        with _os_errors(f"store {os.fspath(path)!r}"):
            tmp_dir.mkdir(exist_ok=True)
            tmp = temp_path(tmp_dir / "put")
            try:
                with open(path, "rb", buffering=0) as src, create_exclusive(tmp) as dst:
                    size_hint = os.fstat(src.fileno()).st_size
                    oid, size = copy_and_hash(src, dst, size_hint=size_hint, progress=progress)
                self._install(tmp, oid, size)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return ObjectInfo(oid, size)

    def _put_large(self, path: str | os.PathLike[str]) -> ObjectInfo:
        import shutil
        from concurrent.futures import ThreadPoolExecutor

        tmp_dir = self.root / _TMP_DIR
        with _os_errors(f"store {os.fspath(path)!r}"):
            tmp_dir.mkdir(exist_ok=True)
            tmp = temp_path(tmp_dir / "put")
            try:
                before = os.stat(path)

                def digest() -> str:  # one reused buffer: memory stays flat
                    hasher = new_hasher(before.st_size)
                    buf = bytearray(8 * 2**20)
                    view = memoryview(buf)
                    with open(path, "rb", buffering=0) as src:
                        while n := src.readinto(buf):
                            hasher.update(view[:n])
                    return str(hasher.hexdigest())

                with ThreadPoolExecutor(max_workers=1) as pool:
                    hashed = pool.submit(digest)
                    shutil.copyfile(path, tmp)  # copy_file_range/sendfile: in the kernel
                    oid = hashed.result()
                after = os.stat(path)
                if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
                    raise ObjectStoreError(
                        f"{os.fspath(path)!r} changed while it was being stored; try again"
                    )
                self._install(tmp, oid, before.st_size)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return ObjectInfo(oid, before.st_size)

    def put_bytes(self, data: Buffer) -> ObjectInfo:
        """Store ``data``; a no-op (apart from refreshing its mtime) if already stored."""
        view = memoryview(data).cast("B")
        oid, size = hash_bytes(view), view.nbytes
        dest = self.path_of(oid)
        if self._present(dest, size):
            return ObjectInfo(oid, size)
        with _os_errors(f"write object {oid}"):
            dest.parent.mkdir(exist_ok=True)
            tmp = temp_path(dest)
            try:
                with create_exclusive(tmp) as dst:
                    dst.write(view)
                self._install(tmp, oid, size)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return ObjectInfo(oid, size)

    def open(self, oid: str) -> BinaryIO:
        """A reader that raises ``ObjectCorrupted`` at EOF if the content does not match."""
        path = self.path_of(oid)
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the returned reader
        except FileNotFoundError:
            raise self._not_found(oid) from None
        except OSError as exc:
            raise ObjectStoreError(f"cannot open object {oid}: {exc}") from exc
        return open_verified(f, oid, self.uri)

    def get_file(
        self,
        oid: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Copy the object to ``dest`` (atomically, verified). For links see ``checkout``."""
        with (
            self.open(oid) as src,
            _os_errors(f"write {os.fspath(dest)!r}"),
            atomic_write(Path(dest)) as dst,
        ):
            _, size = copy_and_hash(src, dst, progress=progress)  # src verifies at EOF
        return ObjectInfo(oid, size)

    def size(self, oid: str) -> int:
        """Size in bytes; raises ``ObjectNotFound``."""
        try:
            return self.path_of(oid).stat().st_size
        except FileNotFoundError:
            raise self._not_found(oid) from None

    def delete(self, oid: str) -> None:
        """Remove the object; a missing object is not an error. Fan-out dirs are kept."""
        path = self.path_of(oid)
        with _os_errors(f"delete object {oid}"):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except PermissionError:  # Windows refuses to unlink read-only files
                path.chmod(stat.S_IWRITE | stat.S_IREAD)
                path.unlink(missing_ok=True)

    def iter_oids(self) -> Iterator[StoredObject]:
        """Every stored object; temp files and foreign files are skipped."""
        with _os_errors(f"list {self.root}"):
            with os.scandir(self.root) as top:
                fanout = sorted(e.name for e in top if _is_hex(e.name, 2) and e.is_dir())
            for prefix in fanout:
                try:
                    with os.scandir(self.root / prefix) as entries:
                        for entry in entries:
                            if not _is_hex(entry.name, OID_LENGTH - 2):
                                continue
                            try:
                                st = entry.stat()
                            except FileNotFoundError:  # deleted while listing
                                continue
                            yield StoredObject(prefix + entry.name, st.st_size, st.st_mtime)
                except FileNotFoundError:
                    continue

    # -- internals ------------------------------------------------------------------

    def _present(self, dest: Path, size: int) -> bool:
        """True if a complete-looking object is at ``dest``; refresh its mtime for gc.

        Touching matters: gc spares recent objects, so an old unreferenced object that a
        writer is about to reference again must look new.
        """
        try:
            if dest.stat().st_size != size:  # truncated by a crash: let the new write repair it
                return False
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            now = time.time()
            os.utime(dest, (now, now))
        return True

    def _install(self, tmp: Path, oid: str, size: int) -> None:
        dest = self.path_of(oid)
        if self._present(dest, size):
            return  # first write wins
        os.chmod(tmp, OBJECT_MODE)
        dest.parent.mkdir(exist_ok=True)
        os.replace(tmp, dest)

    def _not_found(self, oid: str) -> ObjectNotFound:
        return ObjectNotFound(f"object {oid} not found in {self.uri}")


def _is_hex(name: str, length: int) -> bool:
    return len(name) == length and _HEX.issuperset(name)
