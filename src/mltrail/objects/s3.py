"""Objects in an S3-compatible bucket: keys ``<prefix>/<oid[:2]>/<oid[2:]>``.

Needs the ``s3`` extra (boto3). Every botocore error becomes an
:class:`~mltrail.errors.ObjectStoreError` (or ``ObjectNotFound``), chained with ``from``.

**Uploads read the file once.** A file below ``multipart_threshold`` is read into
memory, hashed, and PUT unless its object exists. A bigger file is read part by part:
each part is hashed (in order, in the calling thread) and handed to a thread pool
that uploads it into a multipart upload under a temporary key,
``<prefix>/.uploads/<random>``. Once the last part is in, the hash is known: if the
object exists, the upload is aborted; otherwise it is completed and copied server-side
(``CopyObject``, or parallel ``UploadPartCopy`` for objects over ``copy_chunksize``)
to its content-addressed key, and the temporary object deleted. The price: a big file
whose object is already stored is uploaded before that is known (callers that know
the hash, like the artifacts hash cache, ask ``exists`` first).

**Uploads resume.** Before the first part goes out, a small JSON record (temporary key,
upload id, part size) is written under ``state_dir``, named after (endpoint, bucket,
prefix, real path, size, mtime). A later ``put_file`` of the unchanged file finds it,
asks the server which parts it holds (``ListParts``), reads the whole file again to
hash it (BLAKE3 state cannot be saved, so the prefix is re-read, not re-sent) and
uploads only the missing parts. A kept part must have the same size and, where its
ETag is an MD5 (AWS without KMS, MinIO, Ceph, moto), the same MD5 as the part re-read.
The record is ``flock``-ed while in use: a second process uploading the same file at
the same time uploads on its own, without resume (as on platforms without ``flock``).

**Downloads resume.** An object of at least ``multipart_threshold`` bytes is fetched
with parallel ranged GETs (``If-Match`` its ETag), written in order to
``.<name>.<oid[:16]>.part`` beside ``dest`` and hashed as it is written. An interrupted
download leaves that file; the next ``get_file`` re-hashes it, fetches only the rest,
verifies the whole and renames it onto ``dest``. A kept prefix that does not verify is
dropped and the download done once more from the start; a full download that does not
verify raises ``ObjectCorrupted`` and leaves nothing.

**Garbage collection.** LastModified is the object's age for gc, and S3 has no
"touch". A write that finds its object already stored and older than
``refresh_after`` (default 30 min, half of gc's default grace) copies the object onto
itself, which resets LastModified; so an object a writer relied on stays young for at
least ``grace - refresh_after``. :meth:`S3ObjectStore.delete_if_older` re-reads the
age right before deleting, and :meth:`S3ObjectStore.clean_stale_uploads` aborts
multipart uploads and deletes temporary objects that crashed writers left behind. See
:mod:`mltrail.objects.gc`.

>>> store = S3ObjectStore("my-bucket", "team/objects",
...                       endpoint_url="http://127.0.0.1:9000")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NoReturn

from mltrail.errors import ExtraNotInstalled, ObjectNotFound, ObjectStoreError

try:
    import boto3

    # pyproject's mypy override names "boto3", not "boto3.*"; the ignores cover both.
    from boto3.exceptions import Boto3Error  # type: ignore[import-untyped, unused-ignore]
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        IncompleteReadError,
        NoCredentialsError,
        ReadTimeoutError,
        ResponseStreamingError,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ExtraNotInstalled("boto3", "s3", "The S3 object store") from exc

from mltrail.objects import ObjectInfo, StoredObject
from mltrail.objects._io import atomic_write, corrupted, open_verified
from mltrail.objects.hashing import (
    BLOCK_SIZE,
    OID_LENGTH,
    Hasher,
    ProgressCallback,
    hash_bytes,
    new_hasher,
    validate_oid,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["S3ObjectStore"]

MiB = 1 << 20
GiB = 1 << 30
MAX_PARTS = 10_000  # S3's limit per multipart upload
MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_COPY = 5 * GiB  # S3's limit for CopyObject and for one UploadPartCopy
TMP_DIR = ".uploads"  # temporary upload keys live under <prefix>/.uploads/
_STATE_FORMAT = 1
_STATE_MAX_AGE = 7 * 86400  # unused resume records are pruned after a week
_BOTO_ERRORS = (BotoCoreError, ClientError, Boto3Error)
#: A body that broke while being read: the ranged GET is sent again.
_STREAM_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_HEX = frozenset("0123456789abcdef")

_Part = tuple[int, str]  # (size, ETag) of a part the server holds


class S3ObjectStore:
    """An :class:`~mltrail.objects.ObjectStore` in ``s3://bucket/prefix``.

    Objects of at least ``multipart_threshold`` bytes move in parts of
    ``multipart_chunksize`` (at least 5 MiB, more if 10,000 parts would not do), with at
    most ``max_concurrency`` parts in flight per store, whatever the number of calling
    threads. Resume records of big uploads go to ``state_dir`` (an attribute; default
    ``$XDG_CACHE_HOME/mltrail/s3-uploads``). ``refresh_after`` (seconds) is how old a
    stored object may get before a write that finds it refreshes its LastModified;
    keep it at most half of gc's grace period. Pass a ready ``client`` to control
    credentials and retries yourself.
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
        refresh_after: float = 1800.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.max_concurrency = max(1, max_concurrency)
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = max(MIN_PART, multipart_chunksize)
        #: Objects bigger than this are copied server-side in parallel parts of this size.
        self.copy_chunksize = int(os.environ.get("MLTRAIL_S3_COPY_CHUNK") or 256 * MiB)
        #: Where resume records of big uploads go (set it to keep them elsewhere).
        self.state_dir = _default_state_dir()
        self.refresh_after = refresh_after
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        if client is None:
            config = Config(
                max_pool_connections=self.max_concurrency + 2,
                retries={"mode": "standard"},
                read_timeout=float(os.environ.get("MLTRAIL_S3_READ_TIMEOUT") or 60),
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

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.uri!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key_of(self, oid: str) -> str:
        """The S3 key of object ``oid``; validates ``oid``."""
        oid = validate_oid(oid)
        return f"{self._start}{oid[:2]}/{oid[2:]}"

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
        """Store the file, reading it once; resumes an interrupted upload of the same file.

        ``progress`` gets byte counts as parts are stored (or found already stored).
        """
        where = os.fspath(path)
        try:
            with open(where, "rb") as f:
                before = os.fstat(f.fileno())
                if before.st_size >= self.multipart_threshold:
                    return self._put_stream(f, where, before, progress)
                data = f.read()
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {where!r}: {exc}") from exc
        info = self.put_bytes(data)
        if progress is not None:
            progress(info.size)
        return info

    def put_bytes(self, data: Buffer) -> ObjectInfo:
        """Store ``data`` unless its object exists (then refresh its age if it is old)."""
        payload = bytes(data)
        oid = hash_bytes(payload)
        key = self.key_of(oid)
        try:
            if not self._keep_existing(key):
                if len(payload) < self.multipart_threshold:
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=payload)
                else:
                    self._put_multipart(key, payload)
        except _BOTO_ERRORS as exc:
            if not self._stored_anyway(key):
                self._raise(exc, "upload", oid)
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
        """Download to ``dest``: parallel ranged GETs, hashed in order, verified, atomic.

        A big download that is interrupted resumes on the next call (see the module doc).
        """
        key = self.key_of(oid)
        target = Path(dest)
        try:
            head = self._head_key(key)
            if head is None:
                raise ObjectNotFound(f"object {oid} not found in {self.uri}")
            size, etag = int(head["ContentLength"]), str(head.get("ETag") or "")
            if size >= self.multipart_threshold:
                self._get_resumable(key, oid, target, size, etag, progress)
            else:
                with atomic_write(target) as f:
                    self._get_verified(key, oid, f, 0, size, etag, new_hasher(), progress)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "download", oid)
        except OSError as exc:
            raise ObjectStoreError(f"cannot write {os.fspath(dest)!r}: {exc}") from exc
        return ObjectInfo(oid, size)

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
        """Every stored object under the prefix (paginated listing); other keys skipped."""
        start = self._start
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

    # -- for gc ---------------------------------------------------------------------

    def delete_if_older(self, oid: str, cutoff: float) -> bool:
        """Delete the object unless it was written or refreshed after ``cutoff`` (POSIX).

        The age is read again (HEAD) right before the DELETE, so a write that refreshed
        the object after gc listed it is seen. True if the object is gone.
        """
        key = self.key_of(oid)
        try:
            head = self._head_key(key)
            if head is None:
                return True
            if head["LastModified"].timestamp() > cutoff:
                return False
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "delete", oid)
        return True

    def clean_stale_uploads(self, cutoff: float, dry_run: bool = True) -> list[str]:
        """Abort multipart uploads idle since ``cutoff`` and delete older temporary objects.

        Crashed or abandoned writers leave both; an upload counts as idle when it was
        started and its newest part stored before ``cutoff``, so a long upload that is
        still moving is kept. An aborted upload can no longer be resumed: its next
        ``put_file`` starts over. Returns what was (or, on a dry run, would be) removed.
        """
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._start
            )
            for page in pages:
                for upload in page.get("Uploads", ()):
                    key, upload_id = upload["Key"], upload["UploadId"]
                    if upload["Initiated"].timestamp() > cutoff:
                        continue
                    last = self._last_part_time(key, upload_id)
                    if last is None or last > cutoff:
                        continue  # completed or aborted meanwhile, or still moving
                    found.append(f"multipart upload of {key} ({upload_id})")
                    if not dry_run:
                        self._abort_quietly(key, upload_id)
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self._start}{TMP_DIR}/"
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    if item["LastModified"].timestamp() <= cutoff:
                        found.append(f"temporary object {item['Key']}")
                        if not dry_run:
                            self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
        except _BOTO_ERRORS as exc:
            self._raise(exc, "clean up the uploads in")
        return found

    # -- uploads --------------------------------------------------------------------

    @property
    def _start(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _put_stream(
        self, f: IO[bytes], where: str, before: os.stat_result, progress: ProgressCallback | None
    ) -> ObjectInfo:
        """Hash and upload a big file in one read, then move it to its key (see module doc)."""
        ident = [
            self.endpoint_url or "",
            self.bucket,
            self.prefix,
            os.path.realpath(where),
            before.st_size,
            before.st_mtime_ns,
        ]
        state = _UploadState.acquire(self.state_dir, ident)
        upload: tuple[str, str] | None = None  # an upload this call may have to abort
        try:
            key, upload_id, part_size, stored = self._resume_or_start(state, before.st_size)
            upload = (key, upload_id)
            hasher = new_hasher(before.st_size)
            chunks = _file_parts(f, before.st_size, part_size, hasher)
            parts = self._send_parts(key, upload_id, chunks, stored, progress)
            after = os.fstat(f.fileno())
            if (
                f.tell() != before.st_size  # shrank
                or f.read(1)  # grew
                or after.st_mtime_ns != before.st_mtime_ns
            ):
                state.discard()  # these parts are of no use to anyone: abort below
                raise ObjectStoreError(
                    f"{where!r} changed while it was being stored; try again",
                    hint="store files that no process is writing to",
                )
            oid = hasher.hexdigest()
            final = self.key_of(oid)
            if self._keep_existing(final):  # first write wins: drop ours
                state.discard()
                return ObjectInfo(oid, before.st_size)
            self._complete(key, upload_id, parts)
            upload = None
            state.discard()
            try:
                self._copy(key, final, before.st_size)
            except _BOTO_ERRORS:
                if not self._stored_anyway(final):
                    raise
            finally:
                with contextlib.suppress(*_BOTO_ERRORS):  # else gc removes it later
                    self.client.delete_object(Bucket=self.bucket, Key=key)
            return ObjectInfo(oid, before.st_size)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "upload", subject=repr(where))
        finally:
            # Kept (for a resume) only while its record is: an interrupted upload of a
            # file, not a finished, changed or unlockable one. gc aborts it otherwise.
            if upload is not None and not (state.resumable and state.load() is not None):
                self._abort_quietly(*upload)
            state.close()

    def _resume_or_start(
        self, state: _UploadState, size: int
    ) -> tuple[str, str, int, dict[int, _Part]]:
        """(temp key, upload id, part size, parts the server holds) of this file's upload."""
        record = state.load()
        if record is not None:
            stored = self._list_parts(record["key"], record["upload_id"])
            if stored is not None:
                return record["key"], record["upload_id"], int(record["part_size"]), stored
        part_size = self._part_size(size)
        key = f"{self._start}{TMP_DIR}/{uuid.uuid4().hex}"
        upload_id = self._create_upload(key)
        state.save({"key": key, "upload_id": upload_id, "part_size": part_size})
        return key, upload_id, part_size, {}

    def _put_multipart(self, key: str, payload: bytes) -> None:
        """Upload bytes whose hash is known straight to ``key``, in parallel parts."""
        step = self._part_size(len(payload))
        chunks = (
            (number, payload[offset : offset + step])
            for number, offset in enumerate(range(0, len(payload), step), 1)
        )
        upload_id = self._create_upload(key)
        try:
            self._complete(key, upload_id, self._send_parts(key, upload_id, chunks, {}, None))
        except BaseException:
            self._abort_quietly(key, upload_id)
            raise

    def _send_parts(
        self,
        key: str,
        upload_id: str,
        chunks: Iterable[tuple[int, bytes]],
        stored: dict[int, _Part],
        progress: ProgressCallback | None,
    ) -> list[dict[str, Any]]:
        """Upload ``chunks`` (read in the calling thread) as parts, skipping stored ones.

        Progress is reported from the calling thread, as parts finish.
        """
        etags: dict[int, str] = {}
        pending: dict[Future[str], tuple[int, int]] = {}

        def reap(block: bool) -> None:
            done, _ = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for fut in done:
                number, n = pending.pop(fut)
                etags[number] = fut.result()
                if progress is not None:
                    progress(n)

        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            try:
                for number, data in chunks:
                    old = stored.get(number)
                    if old is not None and _same_part(old, data):
                        etags[number] = old[1]
                        if progress is not None:
                            progress(len(data))
                        continue
                    while not self._slots.acquire(timeout=0.05):
                        reap(False)
                    fut = pool.submit(self._upload_part, key, upload_id, number, data)
                    fut.add_done_callback(self._release_slot)
                    pending[fut] = (number, len(data))
                    reap(False)
                while pending:
                    reap(True)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        return [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        response = self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return str(response["ETag"])

    def _release_slot(self, _: Future[Any]) -> None:
        self._slots.release()

    def _keep_existing(self, key: str) -> bool:
        """True if the object at ``key`` is stored and young enough for gc (refreshed if not).

        A self-copy resets LastModified; the server's clock (its ``Date`` header) is used
        to judge the age. False if the object is missing, or vanished during the refresh
        (a gc deleted it): the caller then stores it again.
        """
        head = self._head_key(key)
        if head is None:
            return False
        if _server_time(head) - head["LastModified"].timestamp() >= self.refresh_after:
            try:
                self._copy(key, key, int(head["ContentLength"]))
            except ClientError as exc:
                if _error_code(exc) in _MISSING_CODES:
                    return False
                raise
        return True

    def _stored_anyway(self, key: str) -> bool:
        """After a failed write: is the object there all the same (a concurrent writer)?

        Any object under a content-addressed key holds the same bytes, and S3 writes
        are atomic, so it then counts as stored.
        """
        try:
            return self._head_key(key) is not None
        except _BOTO_ERRORS:
            return False

    def _copy(self, src: str, dst: str, size: int) -> None:
        """Server-side copy (onto itself to refresh LastModified); parallel parts if big."""
        source = {"Bucket": self.bucket, "Key": src}
        if size <= min(self.copy_chunksize, MAX_COPY):
            extra = {"MetadataDirective": "REPLACE"} if src == dst else {}
            self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource=source, **extra)
            return
        step = min(MAX_COPY, max(self.copy_chunksize, MIN_PART, -(-size // MAX_PARTS)))

        def one(number: int, offset: int) -> dict[str, Any]:
            last = min(offset + step, size) - 1
            response = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=dst,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={offset}-{last}",
            )
            return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

        offsets = range(0, size, step)
        upload_id = self._create_upload(dst)
        try:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(offsets))) as pool:
                parts = list(pool.map(one, range(1, len(offsets) + 1), offsets))
            self._complete(dst, upload_id, parts)
        except BaseException:
            self._abort_quietly(dst, upload_id)
            raise

    def _part_size(self, size: int) -> int:
        return max(self.multipart_chunksize, -(-size // MAX_PARTS))

    def _create_upload(self, key: str) -> str:
        response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        return str(response["UploadId"])

    def _complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(*_BOTO_ERRORS):  # else gc aborts it after the grace period
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _list_parts(self, key: str, upload_id: str) -> dict[int, _Part] | None:
        """Parts the server holds for an upload; None if it no longer exists."""
        stored: dict[int, _Part] = {}
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                for part in page.get("Parts", ()):
                    stored[int(part["PartNumber"])] = (int(part["Size"]), str(part["ETag"]))
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchUpload", *_MISSING_CODES):
                return None
            raise
        return stored

    def _last_part_time(self, key: str, upload_id: str) -> float | None:
        """When the upload's newest part was stored (-inf if none); None if it is gone."""
        latest = float("-inf")
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                for part in page.get("Parts", ()):
                    latest = max(latest, part["LastModified"].timestamp())
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchUpload", *_MISSING_CODES):
                return None
            raise
        return latest

    # -- downloads ------------------------------------------------------------------

    def _get_resumable(
        self,
        key: str,
        oid: str,
        target: Path,
        size: int,
        etag: str,
        progress: ProgressCallback | None,
    ) -> None:
        """Download through ``.<name>.<oid[:16]>.part``, resuming what an earlier call kept."""
        part = target.with_name(f".{target.name}.{oid[:16]}.part")
        f = None if sys.platform == "win32" else open(part, "a+b", buffering=0)  # noqa: SIM115
        if f is None or not _try_lock(f.fileno()):  # no flock, or another download of it
            if f is not None:
                f.close()
            with atomic_write(target) as g:  # runs: go alone, without resume
                self._get_verified(key, oid, g, 0, size, etag, new_hasher(size), progress)
            return
        with f:
            have = os.fstat(f.fileno()).st_size
            while True:
                if have > size:
                    have = 0
                f.truncate(have)
                hasher = new_hasher(size)
                f.seek(0)
                left = have
                while left:  # the kept prefix is read again to hash it, not downloaded
                    data = f.read(min(BLOCK_SIZE, left))
                    if not data:
                        break
                    hasher.update(data)
                    left -= len(data)
                if progress is not None and have:
                    progress(have)
                f.seek(have)
                actual = self._fetch(key, f, have, size, etag, hasher, progress)
                if actual == oid:
                    break
                if have == 0:
                    part.unlink()
                    raise corrupted(oid, actual, self.uri)
                have = 0  # the kept prefix was not this object's: start over once
        os.replace(part, target)

    def _get_verified(
        self,
        key: str,
        oid: str,
        sink: IO[bytes],
        start: int,
        end: int,
        etag: str,
        hasher: Hasher,
        progress: ProgressCallback | None,
    ) -> None:
        actual = self._fetch(key, sink, start, end, etag, hasher, progress)
        if actual != oid:
            raise corrupted(oid, actual, self.uri)

    def _fetch(
        self,
        key: str,
        sink: IO[bytes],
        start: int,
        end: int,
        etag: str,
        hasher: Hasher,
        progress: ProgressCallback | None,
    ) -> str:
        """Write bytes ``[start, end)`` of ``key`` to ``sink`` in order; return the hex digest.

        Ranges are fetched in parallel but written and hashed in order, so at most
        ``max_concurrency`` parts wait in memory. A caller waiting for a slot holds
        none, so concurrent downloads cannot deadlock on the store's slots.
        """
        step = self._part_size(end)
        ranges = deque((lo, min(lo + step, end)) for lo in range(start, end, step))
        pending: deque[Future[bytes]] = deque()
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(ranges)))) as pool:
            try:
                while ranges or pending:
                    while (
                        ranges
                        and len(pending) < self.max_concurrency
                        and self._slots.acquire(blocking=not pending)
                    ):
                        lo, hi = ranges.popleft()
                        pending.append(pool.submit(self._get_range, key, etag, lo, hi))
                    fut = pending.popleft()
                    try:
                        data = fut.result()
                    finally:
                        self._slots.release()
                    _write_all(sink, data)
                    hasher.update(data)
                    if progress is not None:
                        progress(len(data))
            except BaseException:
                for fut in pending:
                    fut.cancel()
                    self._slots.release()
                raise
        return hasher.hexdigest()

    def _get_range(self, key: str, etag: str, lo: int, hi: int) -> bytes:
        """Bytes ``[lo, hi)``; a broken or short body is fetched again (three tries)."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Range": f"bytes={lo}-{hi - 1}",
        }
        if etag:
            params["IfMatch"] = etag  # every range from the same object
        for attempt in range(3):
            try:
                body = self.client.get_object(**params)["Body"]
                try:
                    data: bytes = body.read()
                finally:
                    body.close()
            except _STREAM_ERRORS:
                if attempt == 2:
                    raise
                continue
            if len(data) == hi - lo:
                return data
        raise ObjectStoreError(f"S3 sent a short body for bytes {lo}-{hi - 1} of {key}")

    # -- errors ---------------------------------------------------------------------

    def _head(self, oid: str) -> dict[str, Any] | None:
        key = self.key_of(oid)
        try:
            return self._head_key(key)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "look up", oid)

    def _head_key(self, key: str) -> dict[str, Any] | None:
        """HEAD ``key``; None if missing. Other boto errors are raised untranslated."""
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise
        return head

    def _raise(
        self, exc: Exception, action: str, oid: str | None = None, *, subject: str | None = None
    ) -> NoReturn:
        """Translate a boto error into ours, chained to the original."""
        what = subject or (f"object {oid}" if oid else self.uri)
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


class _UploadState:
    """The resume record of one big upload: a JSON file under ``state_dir``, flock-ed.

    When the record cannot be had (another process holds it, no ``flock``, the state
    dir is not writable) this acts as a null record: nothing is loaded or saved and
    ``resumable`` is False.
    """

    def __init__(self, path: Path | None, fd: int | None, ident: list[Any]) -> None:
        self._path = path
        self._fd = fd
        self._ident = ident

    @classmethod
    def acquire(cls, state_dir: Path, ident: list[Any]) -> _UploadState:
        name = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32] + ".json"
        path = state_dir / name
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            _prune_records(state_dir)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return cls(None, None, ident)
        try:  # locked, and still the file at that name (not one a finisher just unlinked)
            if _try_lock(fd) and os.fstat(fd).st_ino == os.stat(path).st_ino:
                return cls(path, fd, ident)
        except OSError:
            pass
        os.close(fd)
        return cls(None, None, ident)

    @property
    def resumable(self) -> bool:
        return self._fd is not None

    def load(self) -> dict[str, Any] | None:
        if self._fd is None:
            return None
        try:
            raw = os.pread(self._fd, 1 << 16, 0)
            record = json.loads(raw) if raw else None
        except (OSError, ValueError):
            return None
        if (
            not isinstance(record, dict)
            or record.get("format") != _STATE_FORMAT
            or record.get("ident") != self._ident
        ):
            return None
        return record

    def save(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            return
        data = json.dumps({"format": _STATE_FORMAT, "ident": self._ident, **record}).encode()
        with contextlib.suppress(OSError):  # without a record the upload just won't resume
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
            os.fsync(self._fd)

    def discard(self) -> None:
        """Forget the record (the upload is done, aborted or unusable)."""
        if self._fd is None or self._path is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            self._path.unlink()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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


def _file_parts(
    f: IO[bytes], size: int, part_size: int, hasher: Hasher
) -> Iterator[tuple[int, bytes]]:
    """The first ``size`` bytes of ``f`` as numbered parts, each hashed as it is read.

    Reading stops at ``size`` (from ``stat``), so a file that keeps growing cannot keep
    the upload going; the caller then checks that the file did not change.
    """
    number, left = 0, size
    while left and (data := f.read(min(part_size, left))):
        hasher.update(data)
        left -= len(data)
        number += 1
        yield number, data


def _same_part(stored: _Part, data: bytes) -> bool:
    """Whether a part the server holds has ``data``: same size, and same MD5 where known."""
    size, etag = stored
    if size != len(data):
        return False
    tag = etag.strip('"').lower()
    if len(tag) == 32 and _HEX.issuperset(tag):
        return hashlib.md5(data, usedforsecurity=False).hexdigest() == tag
    return True  # not an MD5 (e.g. SSE-KMS): the record is keyed by size and mtime


def _write_all(sink: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[sink.write(view) or 0 :]


def _try_lock(fd: int) -> bool:
    """Take an exclusive ``flock`` without waiting; False if held elsewhere or unsupported."""
    if sys.platform == "win32":
        return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _prune_records(state_dir: Path) -> None:
    """Delete resume records unused for a week (their uploads are long aborted by gc)."""
    cutoff = time.time() - _STATE_MAX_AGE
    with contextlib.suppress(OSError), os.scandir(state_dir) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.name.endswith(".json") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mltrail" / "s3-uploads"


def _server_time(response: dict[str, Any]) -> float:
    """The server's clock from a response's ``Date`` header (else ours)."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(date).timestamp()
    return time.time()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
