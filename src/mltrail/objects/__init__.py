"""Content-addressed object storage: immutable blobs named by their BLAKE3 hash.

One small :class:`ObjectStore` protocol, two backends chosen by URI:

>>> import tempfile
>>> store = open_object_store(tempfile.mkdtemp())        # or "file:///...", "s3://bucket/prefix"
>>> info = store.put_bytes(b"hello")
>>> info.oid[:12], info.size
('ea8f163db386', 5)
>>> with store.open(info.oid) as f:
...     f.read()
b'hello'

Writes are idempotent (same bytes, same object, stored once) and atomic (temp name,
then rename). Reads verify the hash and raise :class:`~mltrail.errors.ObjectCorrupted`.
Neither ``boto3`` nor ``blake3`` is imported until a store needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mltrail.errors import ConfigurationError
from mltrail.objects.hashing import ProgressCallback

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "ProgressCallback",
    "StoredObject",
    "open_object_store",
]

#: Environment variables naming the S3 endpoint, first match wins (after the keyword).
S3_ENDPOINT_ENV_VARS = ("MLTRAIL_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")


class ObjectInfo(NamedTuple):
    """What a write returns: the object id (hex BLAKE3) and the size in bytes."""

    oid: str
    size: int


class StoredObject(NamedTuple):
    """One object as listed by :meth:`ObjectStore.iter_oids`; ``mtime`` is a POSIX time."""

    oid: str
    size: int
    mtime: float


@runtime_checkable
class ObjectStore(Protocol):
    """A blob store keyed by content hash. Every ``oid`` argument is validated first."""

    @property
    def uri(self) -> str:
        """Where the objects live, as a URI ``open_object_store`` accepts."""
        ...

    def exists(self, oid: str) -> bool:
        """True if the object is stored."""
        ...

    def exists_many(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` that is stored."""
        ...

    def put_file(
        self, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> ObjectInfo:
        """Store the file's content (read once where possible); no-op if already stored."""
        ...

    def put_bytes(self, data: Buffer) -> ObjectInfo:
        """Store ``data``; no-op if already stored."""
        ...

    def open(self, oid: str) -> BinaryIO:
        """A binary reader; reading to the end raises ``ObjectCorrupted`` on a hash mismatch."""
        ...

    def get_file(
        self,
        oid: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Write the object to ``dest`` atomically, verified; ``dest`` is never left corrupt."""
        ...

    def size(self, oid: str) -> int:
        """Size in bytes; raises ``ObjectNotFound``."""
        ...

    def delete(self, oid: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def iter_oids(self) -> Iterator[StoredObject]:
        """Every stored object, with size and modification time (for gc)."""
        ...


def open_object_store(
    uri: str | os.PathLike[str],
    *,
    endpoint_url: str | None = None,
    max_concurrency: int | None = None,
) -> ObjectStore:
    """Open the object store that ``uri`` names.

    - a plain path or ``file:///abs/path``: :class:`~mltrail.objects.local.LocalObjectStore`
    - ``s3://bucket/prefix``: :class:`~mltrail.objects.s3.S3ObjectStore`; the endpoint is
      ``endpoint_url``, else ``$MLTRAIL_S3_ENDPOINT_URL``, else ``$AWS_ENDPOINT_URL``, else AWS.
      Needs the ``s3`` extra (boto3).
    - ``http(s)://host:port``: the objects of an mltrail server (presigned S3 URLs when the
      server's objects are on S3, else streamed through the server)

    >>> import tempfile
    >>> open_object_store(tempfile.mkdtemp()).uri.startswith("file://")
    True
    """
    text = os.fspath(uri)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("", "file"):
        from mltrail.objects.local import LocalObjectStore

        return LocalObjectStore(_local_path(text) if scheme else Path(text).expanduser())
    if scheme == "s3":
        from mltrail.objects.s3 import S3ObjectStore  # raises ExtraNotInstalled without boto3

        bucket, prefix = _s3_location(text)
        if endpoint_url is None:
            endpoint_url = next(
                (os.environ[v] for v in S3_ENDPOINT_ENV_VARS if os.environ.get(v)), None
            )
        kwargs = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
        return S3ObjectStore(bucket, prefix, endpoint_url=endpoint_url, **kwargs)
    if scheme in ("http", "https"):
        from mltrail.objects.http import HttpObjectStore
        from mltrail.store import open_store

        # the server's metadata store shares its connection pool (closed by close_all)
        server: Any = open_store(text.rstrip("/"))
        return HttpObjectStore(text, transport=server.transport)
    raise ConfigurationError(
        f"unsupported object store URI {text!r} (scheme {scheme!r})",
        hint="use a directory path, file:///absolute/path or s3://bucket/prefix",
    )


def _local_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"unsupported file URI {uri!r}",
            hint="write file:///absolute/path (three slashes), or a plain path",
        )
    return Path(url2pathname(parts.path))


def _s3_location(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket or parts.query or parts.fragment or "//" in prefix:
        raise ConfigurationError(
            f"invalid S3 URI {uri!r}", hint="write s3://bucket or s3://bucket/some/prefix"
        )
    return bucket, prefix
