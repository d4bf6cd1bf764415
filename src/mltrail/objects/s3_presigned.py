"""Presigned transfers for an :class:`~mltrail.objects.s3.S3ObjectStore` (server side).

An mltrail server whose objects are on S3 never carries their bytes: it hands out
presigned URLs and the client talks to S3 directly. Uploads follow the store's own
protocol for files whose hash is not known yet: the bytes go to a temporary key
``<prefix>/.uploads/<token>`` (one presigned PUT, or a multipart upload with a
presigned URL per part); once the client names the object id, :func:`adopt` reads the
temporary object back (one streamed GET, inside the S3 network), checks that it
hashes to that id, and copies it server-side to its content-addressed key. A client can
therefore never store bytes under a wrong name, nor overwrite an existing object (an
object already stored is kept and the upload dropped).

The upload token is random (128 bits) and the temporary key is derived from it, so the
server keeps no state between the calls of one upload: any replica can finish it.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from mltrail.errors import InvalidValueError, ObjectCorrupted, ObjectNotFound
from mltrail.objects import ObjectInfo
from mltrail.objects.hashing import BLOCK_SIZE, new_hasher
from mltrail.objects.s3 import _BOTO_ERRORS, MAX_PARTS, MIN_PART, TMP_DIR, S3ObjectStore

__all__ = [
    "MAX_PART",
    "abort",
    "adopt",
    "complete",
    "new_token",
    "part_size_for",
    "presign",
    "start_multipart",
    "upload_key",
]

MAX_PART = 5 << 30  # S3's limit for one part (and for one PUT)
_HEX = frozenset("0123456789abcdef")


def new_token() -> str:
    """A fresh upload token (32 hex characters)."""
    return uuid.uuid4().hex


def upload_key(store: S3ObjectStore, token: str) -> str:
    """The temporary key of the upload ``token``; refuses anything but 32 hex characters."""
    if not isinstance(token, str) or len(token) != 32 or not _HEX.issuperset(token):
        raise InvalidValueError(
            f"invalid upload id {token!r}",
            hint="use the upload id the server answered to POST /api/v1/objects/uploads",
        )
    return f"{store.prefix}/{TMP_DIR}/{token}" if store.prefix else f"{TMP_DIR}/{token}"


def part_size_for(size: int, wanted: int) -> int:
    """A part size of at least ``wanted`` (and S3's 5 MiB) that needs at most 10,000 parts."""
    return min(MAX_PART, max(MIN_PART, wanted, -(-size // MAX_PARTS)))


def presign(store: S3ObjectStore, operation: str, expiry: int, **params: Any) -> str:
    """A presigned URL for ``operation`` (``get_object``, ``put_object``, ``upload_part``)."""
    try:
        url: str = store.client.generate_presigned_url(
            operation, Params={"Bucket": store.bucket, **params}, ExpiresIn=expiry
        )
    except _BOTO_ERRORS as exc:
        store._raise(exc, "sign a URL for", subject=str(params.get("Key", "")))
    return url


def start_multipart(store: S3ObjectStore, key: str) -> str:
    """Start a multipart upload to ``key``; returns its upload id."""
    try:
        return store._create_upload(key)
    except _BOTO_ERRORS as exc:
        store._raise(exc, "start an upload to", subject=key)


def complete(store: S3ObjectStore, key: str, upload_id: str, etags: dict[int, str]) -> None:
    """Complete a multipart upload from the parts' ETags (as S3 answered the client)."""
    parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
    try:
        store._complete(key, upload_id, parts)
    except _BOTO_ERRORS as exc:
        store._raise(exc, "complete the upload to", subject=key)


def abort(store: S3ObjectStore, key: str, upload_id: str | None) -> None:
    """Drop an upload: abort its multipart upload and delete its temporary object."""
    if upload_id:
        store._abort_quietly(key, upload_id)
    with contextlib.suppress(*_BOTO_ERRORS):
        store.client.delete_object(Bucket=store.bucket, Key=key)


def adopt(store: S3ObjectStore, key: str, oid: str, size: int | None = None) -> ObjectInfo:
    """Store the uploaded temporary object ``key`` as object ``oid``, verified.

    If ``oid`` is already stored, the upload is dropped and the stored object kept
    (refreshed for gc). Otherwise the temporary object is read back and hashed; if it
    is not ``oid`` (or not ``size`` bytes), it is deleted and ``ObjectCorrupted``
    raised, so nothing is stored. The temporary object is deleted in every case.
    """
    final = store.key_of(oid)
    try:
        head = store._head_key(key)
        if head is None:
            raise ObjectNotFound(
                f"upload {key.rsplit('/', 1)[-1]} holds no object",
                hint="upload the bytes to the URL the server gave before completing it",
            )
        got, etag = int(head["ContentLength"]), str(head.get("ETag") or "")
        try:
            if store._keep_existing(final):  # first write wins, and it is never overwritten
                return ObjectInfo(oid, store.size(oid))
            if size is not None and got != size:
                raise _rejected(oid, f"{got} bytes arrived, not {size}")
            actual = _hash_key(store, key, etag, got)
            if actual != oid:
                raise _rejected(oid, f"the bytes that arrived hash to {actual}")
            store._copy(key, final, got)
        finally:
            with contextlib.suppress(*_BOTO_ERRORS):
                store.client.delete_object(Bucket=store.bucket, Key=key)
    except _BOTO_ERRORS as exc:
        store._raise(exc, "store", oid)
    return ObjectInfo(oid, got)


def _hash_key(store: S3ObjectStore, key: str, etag: str, size: int) -> str:
    """The object id of what is at ``key``: one streamed GET, hashed as it is read.

    One stream rather than parallel ranges: S3-compatible servers that read a whole
    object for every range (moto) would read it once per range.
    """
    params: dict[str, Any] = {"Bucket": store.bucket, "Key": key}
    if etag:
        params["IfMatch"] = etag
    body = store.client.get_object(**params)["Body"]
    hasher = new_hasher(size)
    try:
        while data := body.read(BLOCK_SIZE):
            hasher.update(data)
    finally:
        body.close()
    return hasher.hexdigest()


def _rejected(oid: str, why: str) -> ObjectCorrupted:
    err = ObjectCorrupted(
        f"upload refused: object {oid}: {why}; nothing was stored",
        hint="the file changed while it was uploaded, or the transfer was altered: try again",
    )
    err.http_status = 422  # the client sent the wrong bytes, the server is fine
    return err
