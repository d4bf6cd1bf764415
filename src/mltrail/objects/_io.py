"""Streams shared by the backends: verifying readers, hashing writers, atomic files,
and the kernel copy that hashes what it wrote."""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from mltrail.errors import ObjectCorrupted
from mltrail.objects.hashing import (
    BLOCK_SIZE,
    MAP_WINDOW,
    Hasher,
    ProgressCallback,
    hash_mapped,
    new_hasher,
)

#: Bytes per kernel copy call; one chunk is hashed while the next one is copied.
KERNEL_CHUNK = MAP_WINDOW
#: errnos meaning "the kernel cannot copy between these two files": use the next way.
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}
    | {errno.EPERM, errno.ETXTBSY}
)
#: Unique temp names without a syscall: a per-process random tag and a counter (the
#: pid is part of the name, so a forked child never repeats its parent's names).
_TEMP_TAG = os.urandom(4).hex()
_temp_counter = itertools.count()


class Readable(Protocol):
    """Anything with ``read(n)`` and ``close()``: a file, a botocore body adapter."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def corrupted(oid: str, actual: str, where: str) -> ObjectCorrupted:
    """The error for an object whose content hashes to ``actual`` instead of ``oid``."""
    return ObjectCorrupted(
        f"object {oid} in {where} is corrupted: its content hashes to {actual}",
        hint="delete the object from the store, then add or push the original file again",
    )


class _VerifyingRaw(io.RawIOBase):
    """Raw reader that hashes everything it returns and checks the hash at EOF."""

    def __init__(self, source: Readable, oid: str, where: str) -> None:
        self._source = source
        self._oid = oid
        self._where = where
        self._hasher: Hasher = new_hasher()
        self._error: ObjectCorrupted | None = None
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._error is not None:
            raise self._error
        if self._eof or len(buffer) == 0:
            return 0
        data = self._source.read(len(buffer))
        if not data:
            self._eof = True
            actual = self._hasher.hexdigest()
            if actual != self._oid:
                self._error = corrupted(self._oid, actual, self._where)
                raise self._error
            return 0
        n = len(data)
        buffer[:n] = data
        self._hasher.update(data)
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._source.close()
            finally:
                super().close()


def open_verified(source: Readable, oid: str, where: str) -> BinaryIO:
    """Wrap ``source`` in a buffered reader that raises ``ObjectCorrupted`` at EOF on mismatch.

    Only a read to the end is verified; a reader closed early checks nothing.
    """
    return io.BufferedReader(_VerifyingRaw(source, oid, where), buffer_size=BLOCK_SIZE)


class HashingWriter:
    """Non-seekable writer that hashes what it forwards to ``dest``.

    Being non-seekable makes s3transfer deliver parallel ranged downloads in order.
    """

    def __init__(self, dest: IO[bytes]) -> None:
        self._dest = dest
        self._hasher: Hasher = new_hasher()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        self._dest.write(data)
        self.size += len(data)
        return len(data)

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


class CheckedSource:
    """Non-seekable reader over ``src`` that checks, at its end, the expected hash and size.

    Used to upload a file hashed earlier: if it changed in between, the upload fails
    instead of storing other content under the old id. A short read means EOF, so the
    check happens even when the uploader never asks for more.
    """

    def __init__(self, src: IO[bytes], oid: str, size: int, where: str) -> None:
        self._src = src
        self._oid = oid
        self._size = size
        self._where = where
        self._hasher: Hasher = new_hasher(size)
        self._seen = 0
        self._checked = False

    def read(self, n: int = -1, /) -> bytes:
        data = self._src.read(n)
        self._hasher.update(data)
        self._seen += len(data)
        if (n < 0 or len(data) < n or self._seen > self._size) and not self._checked:
            self._checked = True
            actual = self._hasher.hexdigest()
            if actual != self._oid or self._seen != self._size:
                raise corrupted(self._oid, actual, f"{self._where} (file changed while read)")
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def temp_name(name: str) -> str:
    """A unique hidden temp file name for ``name`` (``.name.<pid>-<tag><n>.tmp``).

    Unique within this machine's processes; ``O_EXCL`` catches anything else.
    """
    return f".{name}.{os.getpid():x}-{_TEMP_TAG}{next(_temp_counter):x}.tmp"


def temp_path(dest: Path) -> Path:
    """A unique hidden temp name beside ``dest`` (same filesystem: the rename is atomic)."""
    return dest.with_name(temp_name(dest.name))


class KernelCopyUnsupported(Exception):
    """Neither ``copy_file_range`` nor ``sendfile`` works between these files; nothing
    was copied, both file offsets are unchanged."""


class SourceShrank(Exception):
    """The source ended before the expected size: it changed while it was copied."""


def kernel_copy_and_hash(
    src: int, dst: int, size: int, *, progress: ProgressCallback | None = None
) -> str:
    """Copy ``size`` bytes from ``src`` to the empty file ``dst`` in the kernel; return the
    BLAKE3 hex digest of the bytes written to ``dst``.

    The copy is ``copy_file_range`` (else ``sendfile``): the bytes never pass through
    Python, and the source is read once. What is hashed is ``dst``, chunk by chunk, from
    the page cache the copy has just filled (:func:`~mltrail.objects.hashing.hash_mapped`,
    no second read from disk), in a second thread while the next chunk is copied. So
    the digest is the stored content's, even if the source changes meanwhile.

    ``src`` and ``dst`` are file descriptors at offset 0; ``dst`` must be open for
    reading and writing, and written by nobody else. Raises
    :class:`KernelCopyUnsupported` (nothing copied) or :class:`SourceShrank`.
    """
    hasher = new_hasher(size, threads=False)  # the copy keeps the other core busy
    copy = _copier()
    if size <= KERNEL_CHUNK:  # one chunk: nothing to overlap
        _copy_exactly(copy, src, dst, size)
        hash_mapped(hasher, dst, 0, size)
        if progress is not None:
            progress(size)
        return hasher.hexdigest()
    from concurrent.futures import Future, ThreadPoolExecutor

    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mltrail-hash") as pool:
        pending: Future[None] | None = None
        try:
            while done < size:
                n = min(KERNEL_CHUNK, size - done)
                _copy_exactly(copy, src, dst, n)
                if pending is not None:
                    pending.result()
                pending = pool.submit(hash_mapped, hasher, dst, done, n)
                done += n
                if progress is not None:
                    progress(n)
            if pending is not None:
                pending.result()
        finally:
            if pending is not None:
                with contextlib.suppress(BaseException):  # re-raised above, or superseded
                    pending.result()  # never leave the hasher mapping a file being closed
    return hasher.hexdigest()


class _Copy(Protocol):
    def __call__(self, src: int, dst: int, count: int, /) -> int: ...


def _copier() -> _Copy:
    """The first kernel copy that works between ``src`` and ``dst``, chosen on the first
    call (``copy_file_range`` needs one filesystem on many kernels; ``sendfile`` not)."""
    ways: list[_Copy] = []
    if hasattr(os, "copy_file_range"):
        ways.append(os.copy_file_range)
    if hasattr(os, "sendfile"):
        ways.append(lambda s, d, n: os.sendfile(d, s, None, n))
    state: dict[str, _Copy] = {}

    def copy(s: int, d: int, count: int) -> int:
        chosen = state.get("way")
        if chosen is not None:
            return chosen(s, d, count)
        for way in ways:
            try:
                n = way(s, d, count)
            except OSError as exc:
                if exc.errno in _NO_KERNEL_COPY:
                    continue  # nothing copied: try the next way
                raise
            if n == 0:  # some filesystems answer "nothing" instead of an error
                continue
            state["way"] = way
            return n
        raise KernelCopyUnsupported(f"no kernel copy between fds {s} and {d}")

    return copy


def _copy_exactly(copy: _Copy, src: int, dst: int, count: int) -> None:
    while count > 0:
        n = copy(src, dst, count)
        if n == 0:
            raise SourceShrank(f"source ended {count} bytes early")
        count -= n


def create_exclusive(path: Path, mode: int = 0o666) -> IO[bytes]:
    """Create and open ``path`` for writing; fail if it exists. ``mode`` honours the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    return os.fdopen(fd, "wb", buffering=0)


@contextlib.contextmanager
def atomic_write(dest: Path) -> Iterator[IO[bytes]]:
    """Yield a file opened at a temp name beside ``dest``; replace ``dest`` with it on success.

    On any error the temp file is removed and ``dest`` is left untouched.
    """
    tmp = temp_path(dest)
    f = create_exclusive(tmp)
    try:
        with f:
            yield f
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
