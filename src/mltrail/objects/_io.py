"""Streams shared by the backends: verifying readers, hashing writers, atomic files."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from mltrail.errors import ObjectCorrupted
from mltrail.objects.hashing import BLOCK_SIZE, Hasher, new_hasher


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


def temp_path(dest: Path) -> Path:
    """A unique hidden temp name beside ``dest`` (same filesystem: the rename is atomic)."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")


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
