"""Objects in a local directory: ``<root>/<oid[:2]>/<oid[2:]>``, read-only files.

>>> import tempfile
>>> store = LocalObjectStore(tempfile.mkdtemp())
>>> oid = store.put_bytes(b"hello").oid
>>> store.path_of(oid).relative_to(store.root).as_posix()[:10]
'ea/8f163db'

How a write goes:

- content below :data:`SMALL_MAX` (``put_bytes``, small files) is read into memory and
  hashed; if the object is already stored nothing is written, else it goes to a
  hidden temp file beside its final name and is renamed into place;
- bigger files are copied by the kernel into a temp file under ``.tmp/`` while a
  second thread hashes the copied bytes (:func:`~mltrail.objects._io.kernel_copy_and_hash`),
  then renamed into place unless the object is already there (first write wins).

A partial object is never visible under an object name, and a killed writer leaves at
most a hidden ``*.tmp`` file, which no read or listing takes for an object.

Durability: nothing is fsynced. An object is complete in the page cache when it gets
its name, which survives the writing process dying at any point, but not the machine
losing power before the kernel writes it back (about 30 s later by default): such an
object can then be missing, empty or short. Reads verify hashes, so that surfaces as
``ObjectCorrupted`` or ``ObjectNotFound``, never as wrong bytes; storing the same
content again repairs it (a wrong-sized object is not taken for stored). This is what
a plain file copy, DVC's cache and MLflow's local artifact store give as well.
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
from mltrail.objects._io import (
    KernelCopyUnsupported,
    SourceShrank,
    atomic_write,
    kernel_copy_and_hash,
    open_verified,
    temp_name,
)
from mltrail.objects.hashing import (
    OID_LENGTH,
    ProgressCallback,
    copy_and_hash,
    hash_bytes,
    validate_oid,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["LocalObjectStore"]

#: Objects are immutable; making them read-only also protects hardlinked checkouts.
OBJECT_MODE = 0o444
#: Files smaller than this are read whole, hashed, then written only if new.
SMALL_MAX = 1 << 20
_TMP_DIR = ".tmp"
_HEX = frozenset("0123456789abcdef")
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_CLOEXEC
_CREATE_RW = os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_CLOEXEC


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
        self._root = str(self.root)
        self._dirs: set[str] = set()  # fan-out and temp dirs known to exist
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

        A small file is read whole and hashed, and written only if the object is new.
        A bigger one is copied by the kernel (``copy_file_range``, else ``sendfile``)
        while a second thread hashes the copy, chunk by chunk, from the page cache the
        copy fills: the bytes never pass through Python, both threads release the GIL,
        and the object id is the hash of exactly what was stored. A file that changes
        while it is stored raises ``ObjectStoreError`` and stores nothing.
        """
        with _os_errors(f"store {os.fspath(path)!r}"):
            fd = os.open(path, os.O_RDONLY | _O_BINARY | _O_CLOEXEC)
            try:
                before = os.fstat(fd)
                if not stat.S_ISREG(before.st_mode):  # a pipe, a device: just stream it
                    with open(fd, "rb", buffering=0, closefd=False) as src:
                        return self._put_stream(src, None, progress)
                if before.st_size < SMALL_MAX:
                    data = _read_to_end(fd, before.st_size)
                    info = self.put_bytes(data)
                else:
                    info = self._put_large(fd, before, path, progress)
                    progress = None  # reported chunk by chunk
            finally:
                os.close(fd)
        if progress is not None:
            progress(info.size)
        return info

    def _put_large(
        self,
        fd: int,
        before: os.stat_result,
        path: str | os.PathLike[str],
        progress: ProgressCallback | None,
    ) -> ObjectInfo:
        tmp = self._new_temp()
        size = before.st_size
        try:
            out = os.open(tmp, _CREATE_RW, 0o666)  # readable too: it is hashed in place
            try:
                try:
                    oid = kernel_copy_and_hash(fd, out, size, progress=progress)
                except KernelCopyUnsupported:  # nothing copied: stream it through Python
                    with (
                        open(fd, "rb", buffering=0, closefd=False) as src,
                        open(out, "wb", buffering=0, closefd=False) as dst,
                    ):
                        oid, size = copy_and_hash(src, dst, size_hint=size, progress=progress)
                except SourceShrank:
                    oid = ""
                after = os.fstat(fd)
            finally:
                os.close(out)
            if not oid or _changed(before, after) or size != after.st_size:
                raise ObjectStoreError(
                    f"{os.fspath(path)!r} changed while it was being stored; try again"
                )
            self._install(tmp, oid, size)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return ObjectInfo(oid, size)

    def _put_stream(
        self, src: BinaryIO, size_hint: int | None, progress: ProgressCallback | None
    ) -> ObjectInfo:
        tmp = self._new_temp()
        try:
            with open(tmp, "xb", buffering=0) as dst:
                oid, size = copy_and_hash(src, dst, size_hint=size_hint, progress=progress)
            self._install(tmp, oid, size)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return ObjectInfo(oid, size)

    def put_bytes(self, data: Buffer) -> ObjectInfo:
        """Store ``data``; a no-op (apart from refreshing its mtime) if already stored."""
        view = memoryview(data).cast("B")
        oid, size = hash_bytes(view), view.nbytes
        prefix, rest = oid[:2], oid[2:]
        with _os_errors(f"write object {oid}"):
            if self._present(os.path.join(self._root, prefix, rest), size):
                return ObjectInfo(oid, size)
            try:
                self._write_new(self._dir(prefix), rest, view)
            except FileNotFoundError:  # the folder was removed behind our back
                self._dirs.discard(prefix)
                self._write_new(self._dir(prefix), rest, view)
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

    def _dir(self, name: str) -> str:
        """``root/name``, created on first use (once per store object, not per write)."""
        path = os.path.join(self._root, name)
        if name not in self._dirs:
            with _os_errors(f"create {path}"):
                os.makedirs(path, exist_ok=True)
            self._dirs.add(name)
        return path

    def _new_temp(self) -> str:
        """A fresh temp file name under ``.tmp/`` (content whose id is not known yet)."""
        folder = self._dir(_TMP_DIR)
        if not os.path.isdir(folder):  # removed behind our back (one stat per big file)
            self._dirs.discard(_TMP_DIR)
            folder = self._dir(_TMP_DIR)
        return os.path.join(folder, temp_name("put"))

    def _present(self, dest: str, size: int) -> bool:
        """True if a complete-looking object is at ``dest``; refresh its mtime for gc.

        Touching matters: gc spares recent objects, so an old unreferenced object that a
        writer is about to reference again must look new.
        """
        try:
            if os.stat(dest).st_size != size:  # truncated by a crash: the new write repairs it
                return False
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            now = time.time()
            os.utime(dest, (now, now))
        return True

    def _write_new(self, folder: str, name: str, data: memoryview) -> None:
        """Write ``folder/name`` through a temp file beside it, read-only."""
        tmp = os.path.join(folder, temp_name(name))
        fd = os.open(tmp, _CREATE, 0o666)
        try:
            try:
                written = 0
                while written < data.nbytes:
                    written += os.write(fd, data[written:])
                _make_read_only(fd, tmp)
            finally:
                os.close(fd)
            # No second existence check: a concurrent writer's object holds the same
            # bytes, so replacing it changes nothing.
            os.replace(tmp, os.path.join(folder, name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _install(self, tmp: str, oid: str, size: int) -> None:
        """Rename the complete, hashed temp file ``tmp`` into place (first write wins)."""
        prefix, rest = oid[:2], oid[2:]
        if self._present(os.path.join(self._root, prefix, rest), size):
            return
        os.chmod(tmp, OBJECT_MODE)
        try:
            os.replace(tmp, os.path.join(self._dir(prefix), rest))
        except FileNotFoundError:  # the fan-out folder was removed behind our back
            self._dirs.discard(prefix)
            os.replace(tmp, os.path.join(self._dir(prefix), rest))

    def _not_found(self, oid: str) -> ObjectNotFound:
        return ObjectNotFound(f"object {oid} not found in {self.uri}")


def _is_hex(name: str, length: int) -> bool:
    return len(name) == length and _HEX.issuperset(name)


def _make_read_only(fd: int, path: str) -> None:
    if hasattr(os, "fchmod"):  # one syscall less than by path (POSIX; Windows from 3.13)
        os.fchmod(fd, OBJECT_MODE)
    else:
        os.chmod(path, OBJECT_MODE)


def _changed(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns)


def _read_to_end(fd: int, size: int) -> bytes:
    """Everything left in ``fd``: one ``read`` for a file of ``size`` bytes that did not
    change (asking for a byte more than ``size`` sees a grown file at once)."""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)
