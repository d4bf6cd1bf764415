"""Objects in an S3-compatible bucket: keys ``<prefix>/<oid[:2]>/<oid[2:]>``.

Needs the ``s3`` extra (boto3). Large transfers are multipart and parallel (boto3's
``TransferConfig``); uploads are skipped when the object already exists; downloads are
hashed as they arrive and verified. Every botocore error becomes an
:class:`~mltrail.errors.ObjectStoreError` (or ``ObjectNotFound``), chained with ``from``.

>>> store = S3ObjectStore("my-bucket", "team/objects",
...                       endpoint_url="http://127.0.0.1:9000")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from mltrail.errors import ExtraNotInstalled, ObjectNotFound, ObjectStoreError

try:
    import boto3

    # pyproject's mypy override names "boto3", not "boto3.*"; the ignores cover both.
    from boto3.exceptions import Boto3Error  # type: ignore[import-untyped, unused-ignore]
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped, unused-ignore]
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ExtraNotInstalled("boto3", "s3", "The S3 object store") from exc

from mltrail.objects import ObjectInfo, StoredObject
from mltrail.objects._io import CheckedSource, HashingWriter, atomic_write, corrupted, open_verified
from mltrail.objects.hashing import (
    OID_LENGTH,
    ProgressCallback,
    hash_bytes,
    hash_file,
    validate_oid,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["S3ObjectStore"]

MiB = 1 << 20
_BOTO_ERRORS = (BotoCoreError, ClientError, Boto3Error)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_HEX = frozenset("0123456789abcdef")


class S3ObjectStore:
    """An :class:`~mltrail.objects.ObjectStore` in ``s3://bucket/prefix``.

    ``max_concurrency`` threads move the parts of one big object; objects of at least
    ``multipart_threshold`` bytes go in parts of ``multipart_chunksize``. Pass a ready
    ``client`` to control credentials and retries yourself.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        max_concurrency: int = 10,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.max_concurrency = max_concurrency
        self.multipart_threshold = multipart_threshold
        if client is None:
            config = Config(
                max_pool_connections=max(10, max_concurrency + 2),
                retries={"mode": "standard"},
                # S3-compatible servers (moto, MinIO, Ceph) want path-style URLs.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            )
            try:
                client = boto3.session.Session().client(
                    "s3", endpoint_url=endpoint_url, config=config
                )
            except _BOTO_ERRORS as exc:
                raise ObjectStoreError(f"cannot create an S3 client: {exc}") from exc
            except ValueError as exc:  # e.g. a malformed endpoint URL
                raise ObjectStoreError(
                    f"invalid S3 endpoint {endpoint_url!r}: {exc}",
                    hint="set MLTRAIL_S3_ENDPOINT_URL to a URL like http://127.0.0.1:9000",
                ) from exc
        self.client = client
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            use_threads=max_concurrency > 1,
            preferred_transfer_client="classic",  # CRT would bypass our hashing streams
        )

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.uri!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key_of(self, oid: str) -> str:
        """The S3 key of object ``oid``; validates ``oid``."""
        oid = validate_oid(oid)
        rel = f"{oid[:2]}/{oid[2:]}"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def exists(self, oid: str) -> bool:
        """True if the object is stored (one HEAD request)."""
        return self._head(oid) is not None

    def exists_many(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` that is stored, with ``max_concurrency`` parallel HEADs."""
        unique = sorted({validate_oid(o) for o in oids})
        if len(unique) <= 1 or self.max_concurrency <= 1:
            return {o for o in unique if self.exists(o)}
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            found = pool.map(self.exists, unique)
            return {o for o, present in zip(unique, found, strict=True) if present}

    def put_file(
        self, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> ObjectInfo:
        """Upload the file unless its object exists.

        A small file is read once into memory. A big one is hashed first (the key is the
        hash, and a HEAD can then skip the upload), then uploaded in parallel parts from
        a second, sequential read that is checked against the first.
        """
        try:
            size = os.stat(path).st_size
            if size < self.multipart_threshold:
                with open(path, "rb") as f:
                    data = f.read()
                info = self.put_bytes(data)
                if progress is not None:
                    progress(info.size)
                return info
            oid, size = hash_file(path)
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {os.fspath(path)!r}: {exc}") from exc
        if self.exists(oid):
            if progress is not None:
                progress(size)
            return ObjectInfo(oid, size)
        try:
            with open(path, "rb") as f:
                self._upload(CheckedSource(f, oid, size, os.fspath(path)), oid, progress)
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {os.fspath(path)!r}: {exc}") from exc
        return ObjectInfo(oid, size)

    def put_bytes(self, data: Buffer) -> ObjectInfo:
        """Upload ``data`` unless its object exists."""
        payload = bytes(data)
        oid = hash_bytes(payload)
        if not self.exists(oid):
            self._upload(io.BytesIO(payload), oid, None)
        return ObjectInfo(oid, len(payload))

    def open(self, oid: str) -> BinaryIO:
        """A streaming reader that raises ``ObjectCorrupted`` at EOF on a hash mismatch."""
        key = self.key_of(oid)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except _BOTO_ERRORS as exc:
            self._raise(exc, "download", oid)
        return open_verified(_Body(body, oid), oid, self.uri)

    def get_file(
        self,
        oid: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Download to ``dest`` (parallel ranged GETs, hashed in order, verified, atomic)."""
        key = self.key_of(oid)
        try:
            with atomic_write(Path(dest)) as f:
                writer = HashingWriter(f)
                self.client.download_fileobj(
                    self.bucket, key, writer, Config=self.transfer_config, Callback=progress
                )
                actual = writer.hexdigest()
                if actual != oid:
                    raise corrupted(oid, actual, self.uri)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "download", oid)
        except OSError as exc:
            raise ObjectStoreError(f"cannot write {os.fspath(dest)!r}: {exc}") from exc
        return ObjectInfo(oid, writer.size)

    def size(self, oid: str) -> int:
        """Size in bytes; raises ``ObjectNotFound``."""
        head = self._head(oid)
        if head is None:
            raise ObjectNotFound(f"object {oid} not found in {self.uri}")
        return int(head["ContentLength"])

    def delete(self, oid: str) -> None:
        """Remove the object; a missing object is not an error."""
        key = self.key_of(oid)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "delete", oid)

    def iter_oids(self) -> Iterator[StoredObject]:
        """Every stored object under the prefix (paginated listing); foreign keys skipped."""
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    rel = item["Key"][len(start) :]
                    oid = rel.replace("/", "", 1)
                    if rel[2:3] == "/" and len(oid) == OID_LENGTH and _HEX.issuperset(oid):
                        yield StoredObject(oid, int(item["Size"]), item["LastModified"].timestamp())
        except _BOTO_ERRORS as exc:
            self._raise(exc, "list")

    # -- internals ------------------------------------------------------------------

    def _upload(self, source: Any, oid: str, progress: ProgressCallback | None) -> None:
        """Upload ``source`` under the object's key.

        A failed upload is still a success if the object exists afterwards: a concurrent
        writer stored it, S3 PUTs are atomic, and any object under the key holds these bytes.
        """
        try:
            self.client.upload_fileobj(
                source,
                self.bucket,
                self.key_of(oid),
                Config=self.transfer_config,
                Callback=progress,
            )
        except _BOTO_ERRORS as exc:
            try:
                stored = self.exists(oid)
            except ObjectStoreError:
                stored = False
            if not stored:
                self._raise(exc, "upload", oid)

    def _head(self, oid: str) -> dict[str, Any] | None:
        key = self.key_of(oid)
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            self._raise(exc, "look up", oid)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "look up", oid)
        return head

    def _raise(self, exc: Exception, action: str, oid: str | None = None) -> NoReturn:
        """Translate a boto error into ours, chained to the original."""
        what = f"object {oid}" if oid else self.uri
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code in _MISSING_CODES and oid is not None:
                raise ObjectNotFound(f"object {oid} not found in {self.uri}") from exc
            if code == "NoSuchBucket":
                raise ObjectStoreError(
                    f"S3 bucket {self.bucket!r} does not exist",
                    hint="create the bucket, or fix the bucket name in the object store URI",
                ) from exc
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ObjectStoreError(
                    f"S3 refused to {action} {what}: {code}",
                    hint="check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and permissions",
                ) from exc
            message = exc.response.get("Error", {}).get("Message", "")
            raise ObjectStoreError(
                f"S3 failed to {action} {what}: {code} {message}".rstrip()
            ) from exc
        if isinstance(exc, NoCredentialsError):
            raise ObjectStoreError(
                "no S3 credentials found",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            ) from exc
        if isinstance(exc, EndpointConnectionError):
            raise ObjectStoreError(
                f"cannot reach the S3 endpoint to {action} {what}: {exc}",
                hint="check MLTRAIL_S3_ENDPOINT_URL / AWS_ENDPOINT_URL and the network",
            ) from exc
        raise ObjectStoreError(f"S3 failed to {action} {what}: {exc}") from exc


class _Body:
    """A botocore StreamingBody whose read errors are translated."""

    def __init__(self, body: Any, oid: str) -> None:
        self._body = body
        self._oid = oid

    def read(self, n: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(None if n < 0 else n)
        except _BOTO_ERRORS as exc:
            raise ObjectStoreError(f"S3 download of object {self._oid} failed: {exc}") from exc
        return data

    def close(self) -> None:
        with contextlib.suppress(*_BOTO_ERRORS):
            self._body.close()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
