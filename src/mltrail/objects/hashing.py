"""One content hash for every object: BLAKE3, as 64 lowercase hex characters.

Files are hashed while they are streamed (read once, in blocks of :data:`BLOCK_SIZE`);
the store's own temp files can be hashed in place through a memory map
(:func:`hash_mapped`). ``blake3`` is imported on first use, so importing this module
stays cheap.

>>> hash_bytes(b"hello")
'ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f'
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Protocol

from mltrail.errors import InvalidValueError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "BLOCK_SIZE",
    "HASH_NAME",
    "OID_LENGTH",
    "Hasher",
    "copy_and_hash",
    "hash_bytes",
    "hash_file",
    "hash_mapped",
    "is_valid_oid",
    "new_hasher",
    "validate_oid",
]

HASH_NAME = "blake3"
OID_LENGTH = 64
#: Read/write block size for streaming. 4 MiB measured fastest here (bench/bench_hashing.py).
BLOCK_SIZE = 4 << 20
#: Inputs at least this big are hashed with ``max_threads=blake3.AUTO``.
MULTITHREAD_THRESHOLD = 64 << 20
#: Size of the memory-map windows :func:`hash_mapped` hashes (a multiple of every
#: platform's ``mmap.ALLOCATIONGRANULARITY``); bounds the mapped, resident part.
MAP_WINDOW = 8 << 20

_OID_RE = re.compile(r"[0-9a-f]{64}")

#: Called with the number of bytes just transferred (increments, not totals).
ProgressCallback = Callable[[int], None]


class Hasher(Protocol):
    """The part of a ``hashlib``-like hasher object that mltrail uses."""

    def update(self, data: Buffer, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_hasher(size_hint: int | None = None, *, threads: bool = True) -> Hasher:
    """Return a fresh BLAKE3 hasher; multithreaded when ``size_hint`` is big.

    ``threads=False`` keeps it single-threaded whatever the size: for a hash that runs
    beside another busy thread (the kernel copy of a big file), extra hashing threads
    only compete for the same cores.

    >>> h = new_hasher(); _ = h.update(b"hello"); h.hexdigest()[:8]
    'ea8f163d'
    """
    import blake3

    if threads and size_hint is not None and size_hint >= MULTITHREAD_THRESHOLD:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def hash_bytes(data: Buffer) -> str:
    """Return the object id (hex BLAKE3 digest) of ``data``."""
    hasher = new_hasher(memoryview(data).nbytes)
    hasher.update(data)
    return hasher.hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream the file at ``path`` once and return ``(oid, size)``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"; _ = p.write_bytes(b"hello")
    >>> hash_file(p)[1]
    5
    """
    with open(path, "rb", buffering=0) as src:
        return copy_and_hash(src, None, size_hint=os.fstat(src.fileno()).st_size)


def hash_mapped(hasher: Hasher, fd: int, offset: int, length: int) -> None:
    """Feed ``length`` bytes of the open file ``fd`` from ``offset`` to ``hasher``.

    Window by window through a read-only memory map (:data:`MAP_WINDOW` at a time,
    unmapped after use, so the resident mapped part stays bounded): the pages are
    hashed where they sit in the page cache, never copied into a buffer. ``offset``
    must be a multiple of :data:`MAP_WINDOW`; ``fd`` must be open for reading. Raises
    ``ValueError`` if the file is shorter than ``offset + length`` when mapped.

    Only for files nobody else writes (the store's own temp files): a file truncated
    while mapped kills the process with ``SIGBUS``. Users' files are streamed instead.
    """
    end = offset + length
    while offset < end:
        n = min(MAP_WINDOW, end - offset)
        with mmap.mmap(fd, n, access=mmap.ACCESS_READ, offset=offset) as window:
            hasher.update(window)
        offset += n


def copy_and_hash(
    src: IO[bytes],
    dst: IO[bytes] | None,
    *,
    size_hint: int | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (if given) in blocks, hashing on the way; return ``(oid, size)``.

    The source is read exactly once.
    """
    hasher = new_hasher(size_hint)
    size = copy_and_hash_into(hasher, src, dst, size_hint=size_hint, progress=progress)
    return hasher.hexdigest(), size


def copy_and_hash_into(
    hasher: Hasher,
    src: IO[bytes],
    dst: IO[bytes] | None,
    *,
    size_hint: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """:func:`copy_and_hash` into a given ``hasher``; return the number of bytes."""
    # A buffer no bigger than the input (plus one byte to see EOF in one read).
    wanted = BLOCK_SIZE if size_hint is None else min(BLOCK_SIZE, max(size_hint + 1, 1 << 16))
    buf = bytearray(wanted)
    view = memoryview(buf)
    size = 0
    readinto = getattr(src, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            chunk: Buffer = view[:n]
        else:
            data = src.read(wanted)
            if not data:
                break
            n, chunk = len(data), data
        hasher.update(chunk)
        if dst is not None:
            dst.write(chunk)
        size += n
        if progress is not None:
            progress(n)
    return size


def is_valid_oid(oid: object) -> bool:
    """True if ``oid`` is 64 lowercase hex characters."""
    return isinstance(oid, str) and _OID_RE.fullmatch(oid) is not None


def validate_oid(oid: object) -> str:
    """Return ``oid`` unchanged if it is a valid object id, else raise ``InvalidValueError``.

    Validating before building any path or key makes path traversal impossible.
    """
    if not is_valid_oid(oid):
        shown = repr(oid) if len(repr(oid)) <= 80 else repr(oid)[:77] + "..."
        raise InvalidValueError(
            f"invalid object id {shown}",
            hint=f"an object id is {OID_LENGTH} lowercase hex characters (a {HASH_NAME} digest)",
        )
    assert isinstance(oid, str)
    return oid
