"""/api/v1/objects: content-addressed blobs, moved directly to S3 or streamed through us.

``GET /objects/config`` tells a client which way applies:

- ``"s3"`` (the server's objects are an :class:`~mltrail.objects.s3.S3ObjectStore`): the
  client downloads from a presigned GET URL (``GET /objects/{oid}/location``) and uploads
  to a temporary key with a presigned PUT, or a presigned multipart upload for big files
  (``POST /objects/uploads``, ``.../parts``, ``.../complete``); on completion the server
  verifies the bytes hash to the object id before they get that name (see
  :mod:`mltrail.objects.s3_presigned`). The streaming routes refuse: large files never
  pass through the server.
- ``"stream"`` (a local folder): ``GET /objects/{oid}`` streams the object,
  ``PUT /objects/{oid}`` streams a body in, hashed on arrival (``ObjectCorrupted`` and
  nothing stored on a mismatch), and ``POST /objects`` stores a body under whatever hash
  it has (for a client that learns the hash while it sends). Bodies are written to disk
  as they arrive, never held whole in memory, within ``max_object_bytes``.

Objects belong to no project: any writer (of some project) may upload, any reader may
read an object whose id it knows; deleting one is for admins (gc runs on the server).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mltrail.errors import ConflictError, ObjectCorrupted
from mltrail.objects import ObjectStore
from mltrail.objects.hashing import BLOCK_SIZE, Hasher, new_hasher, validate_oid
from mltrail.server.auth import ROLES, Principal, Scope, authenticate, global_scope, require

__all__ = ["DEFAULT_PART_SIZE", "member_scope", "router"]

router = APIRouter()
log = logging.getLogger("mltrail.server")

MiB = 1 << 20
#: Part size of presigned multipart uploads (``MLTRAIL_SERVER_PART_SIZE`` overrides it;
#: a client may ask for another, at least 5 MiB).
DEFAULT_PART_SIZE = 64 * MiB
MAX_BATCH = 10_000  # object ids per exists request, part URLs per parts request
_WRITE_BUFFER = 4 * MiB  # an upload's bytes are written and hashed in blocks of this


def member_scope(role: str) -> Scope:
    """For routes of no single project: a project where the caller has ``role``, if any.

    Objects belong to no project, yet a writer of one project must be able to upload
    the files of its artifacts.
    """
    rank = ROLES.index(role)

    async def scope(request: Request) -> str | None:
        principal: Principal = await authenticate(request)
        for project, have in sorted(principal.roles.items()):
            if have in ROLES and ROLES.index(have) >= rank:
                return project
        return None

    return scope


READ = require("reader", member_scope("reader"))
WRITE = require("writer", member_scope("writer"))


def _objects(request: Request) -> ObjectStore:
    objects: ObjectStore = request.app.state.mltrail.objects
    return objects


def _s3(request: Request) -> Any:
    """The server's S3 store, or None when objects are local (streamed through us)."""
    objects = _objects(request)
    from mltrail.objects.s3 import S3ObjectStore

    return objects if isinstance(objects, S3ObjectStore) else None


def _need_s3(request: Request) -> Any:
    store = _s3(request)
    if store is None:
        raise ConflictError(
            "this server keeps its objects in a local folder: presigned transfers do not apply",
            hint="stream them: GET/PUT /api/v1/objects/{oid} (the mltrail client does)",
        )
    return store


def _refuse_if_s3(request: Request) -> None:
    if _s3(request) is not None:
        raise ConflictError(
            "this server keeps its objects on S3 and does not carry their bytes",
            hint="transfer them with presigned URLs: GET /api/v1/objects/{oid}/location, "
            "POST /api/v1/objects/uploads (the mltrail client does)",
        )


def _part_size() -> int:
    raw = os.environ.get("MLTRAIL_SERVER_PART_SIZE")
    return int(raw) if raw and raw.isdecimal() else DEFAULT_PART_SIZE


def _expiry(request: Request) -> int:
    return int(request.app.state.mltrail.config.presign_expiry)


# -- both modes ---------------------------------------------------------------------


@router.get("/objects/config", dependencies=[READ])
def objects_config(request: Request) -> dict[str, Any]:
    """How objects move: ``mode`` is ``"s3"`` (presigned URLs) or ``"stream"``."""
    config = request.app.state.mltrail.config
    return {
        "mode": "s3" if _s3(request) is not None else "stream",
        "part_size": _part_size(),
        "max_object_bytes": config.max_object_bytes,
        "presign_expiry": config.presign_expiry,
    }


class Oids(BaseModel):
    oids: list[str] = Field(max_length=MAX_BATCH)


@router.post("/objects/exists", dependencies=[READ])
def objects_exist(body: Oids, request: Request) -> dict[str, list[str]]:
    """``{"present": [...]}``: which of the object ids are stored."""
    oids = [validate_oid(o) for o in body.oids]
    return {"present": sorted(_objects(request).exists_many(oids))}


@router.get("/objects/{oid}/location", dependencies=[READ])
def object_location(oid: str, request: Request) -> dict[str, Any]:
    """``{"oid", "size", "url"}``: a presigned GET URL on S3, else ``url`` is null
    (download through ``GET /objects/{oid}``). ``ObjectNotFound`` if it is not stored."""
    oid = validate_oid(oid)
    objects = _objects(request)
    size = objects.size(oid)
    url = None
    store = _s3(request)
    if store is not None:
        from mltrail.objects.s3_presigned import presign

        url = presign(store, "get_object", _expiry(request), Key=store.key_of(oid))
    return {"oid": oid, "size": size, "url": url}


@router.delete("/objects/{oid}", status_code=204, dependencies=[require("admin", global_scope())])
def delete_object(oid: str, request: Request) -> None:
    """Remove an object (admins only: artifacts that list it break; prefer ``mltrail gc``)."""
    _objects(request).delete(validate_oid(oid))


# -- stream mode: bytes through the server --------------------------------------------


@router.get("/objects/{oid}", dependencies=[READ], response_model=None)
def get_object(oid: str, request: Request) -> Response:
    """The object's bytes, streamed and verified against the id as they are read.

    An object of one block is verified before anything is sent (``ObjectCorrupted``);
    a bigger one is sent a block behind the reads, so if it turns out corrupted at the
    end the transfer breaks off before its last block: a client never receives a
    whole corrupted object.
    """
    oid = validate_oid(oid)
    _refuse_if_s3(request)
    objects = _objects(request)
    size = objects.size(oid)
    reader = objects.open(oid)
    headers = {"X-Mltrail-Oid": oid}
    if size <= BLOCK_SIZE:
        with reader:
            data = reader.read()
        return Response(data, media_type="application/octet-stream", headers=headers)

    def chunks() -> Iterator[bytes]:
        with reader:
            held = reader.read(BLOCK_SIZE)
            while True:
                try:
                    data = reader.read(BLOCK_SIZE)
                except ObjectCorrupted as exc:
                    log.error("GET object %s: %s (transfer broken off)", oid, exc.message)
                    raise
                if not data:
                    break
                yield held
                held = data
            yield held

    headers["Content-Length"] = str(size)
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


@router.put("/objects/{oid}", dependencies=[WRITE])
async def put_object(oid: str, request: Request) -> dict[str, Any]:
    """Store the body as object ``oid``; refused (nothing stored) if it hashes otherwise."""
    oid = validate_oid(oid)
    _refuse_if_s3(request)
    return await _receive(request, oid)


@router.post("/objects", dependencies=[WRITE])
async def post_object(request: Request) -> dict[str, Any]:
    """Store the body under its hash; ``{"oid", "size"}`` says which."""
    _refuse_if_s3(request)
    return await _receive(request, None)


class _Sink:
    """A temp file in the object store's own temp folder, hashed as it is written."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        new_temp = getattr(objects, "_new_temp", None)  # LocalObjectStore: rename into place
        if new_temp is not None:
            self.path: str = new_temp()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        else:
            fd, self.path = tempfile.mkstemp(prefix="mltrail-upload-")
        self.file = os.fdopen(fd, "wb", buffering=0)
        self.hasher: Hasher = new_hasher()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[self.file.write(view) or 0 :]
        self.size += len(data)

    def install(self) -> str:
        """Close, and store the temp file as its object; returns the object id."""
        self.file.close()
        oid = self.hasher.hexdigest()
        install = getattr(self.objects, "_install", None)
        if install is not None:
            install(self.path, oid, self.size)
        else:
            self.objects.put_file(self.path)
        return oid

    def discard(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


async def _receive(request: Request, expected: str | None) -> dict[str, Any]:
    objects = _objects(request)
    sink = await run_in_threadpool(_Sink, objects)
    try:
        pending: list[bytes] = []
        held = 0
        stream: AsyncIterator[bytes] = request.stream()
        async for chunk in stream:  # BodyLimit stops a body over max_object_bytes
            pending.append(chunk)
            held += len(chunk)
            if held >= _WRITE_BUFFER:
                await run_in_threadpool(sink.write, b"".join(pending))
                pending, held = [], 0
        if pending:
            await run_in_threadpool(sink.write, b"".join(pending))
        actual = sink.hasher.hexdigest()
        if expected is not None and actual != expected:
            err = ObjectCorrupted(
                f"upload refused: the body hashes to {actual}, not to object {expected}; "
                "nothing was stored",
                hint="the file changed while it was uploaded, or the transfer was altered: "
                "try again",
            )
            err.http_status = 422  # the client sent the wrong bytes, the server is fine
            raise err
        oid = await run_in_threadpool(sink.install)
        return {"oid": oid, "size": sink.size}
    finally:
        await run_in_threadpool(sink.discard)


# -- s3 mode: presigned URLs ------------------------------------------------------------


class StartUpload(BaseModel):
    size: int = Field(ge=0)
    oid: str | None = None  # known (small objects): nothing to send if it is stored
    part_size: int | None = Field(None, ge=1)


@router.post("/objects/uploads", dependencies=[WRITE])
def start_upload(body: StartUpload, request: Request) -> dict[str, Any]:
    """Plan an upload of ``size`` bytes straight to S3.

    ``{"exists": true}`` if ``oid`` is given and stored. Else ``{"upload", "url"}`` (one
    presigned PUT) below the part size, or ``{"upload", "upload_id", "part_size",
    "parts"}`` for a multipart upload whose part URLs ``POST .../parts`` gives.
    Either way ``POST /objects/uploads/{upload}/complete`` names and verifies it.
    """
    from mltrail.objects import s3_presigned as p

    store = _need_s3(request)
    if body.oid is not None and store.exists(validate_oid(body.oid)):
        return {"exists": True}
    token = p.new_token()
    key = p.upload_key(store, token)
    part = p.part_size_for(body.size, body.part_size or _part_size())
    if body.size < part:
        url = p.presign(store, "put_object", _expiry(request), Key=key)
        return {"exists": False, "upload": token, "url": url}
    return {
        "exists": False,
        "upload": token,
        "upload_id": p.start_multipart(store, key),
        "part_size": part,
        "parts": -(-body.size // part),
    }


class PartUrls(BaseModel):
    upload_id: str
    numbers: list[int] = Field(max_length=1000)


@router.post("/objects/uploads/{upload}/parts", dependencies=[WRITE])
def part_urls(upload: str, body: PartUrls, request: Request) -> dict[str, Any]:
    """``{"urls": {"N": url}}``: presigned UploadPart URLs (at most 1,000 a request)."""
    from mltrail.errors import InvalidValueError
    from mltrail.objects import s3_presigned as p

    store = _need_s3(request)
    key = p.upload_key(store, upload)
    expiry = _expiry(request)
    urls = {}
    for n in body.numbers:
        if not 1 <= n <= 10_000:
            raise InvalidValueError(f"part number {n} is not in 1..10000")
        urls[str(n)] = p.presign(
            store, "upload_part", expiry, Key=key, UploadId=body.upload_id, PartNumber=n
        )
    return {"urls": urls}


class Part(BaseModel):
    number: int = Field(ge=1, le=10_000)
    etag: str


class Complete(BaseModel):
    oid: str
    size: int | None = Field(None, ge=0)
    upload_id: str | None = None
    parts: list[Part] = Field(default_factory=list, max_length=10_000)


@router.post("/objects/uploads/{upload}/complete", dependencies=[WRITE])
def complete_upload(upload: str, body: Complete, request: Request) -> dict[str, Any]:
    """Name the uploaded bytes: verified to hash to ``oid``, else refused and dropped."""
    from mltrail.objects import s3_presigned as p

    store = _need_s3(request)
    key = p.upload_key(store, upload)
    oid = validate_oid(body.oid)
    if body.upload_id:
        try:
            p.complete(store, key, body.upload_id, {x.number: x.etag for x in body.parts})
        except BaseException:
            p.abort(store, key, body.upload_id)
            raise
    info = p.adopt(store, key, oid, body.size)
    return {"oid": info.oid, "size": info.size}


@router.delete("/objects/uploads/{upload}", status_code=204, dependencies=[WRITE])
def abort_upload(upload: str, request: Request, upload_id: str | None = Query(None)) -> None:
    """Give an upload up (its parts and temporary object are deleted)."""
    from mltrail.objects import s3_presigned as p

    store = _need_s3(request)
    p.abort(store, p.upload_key(store, upload), upload_id)
