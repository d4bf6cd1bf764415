"""The objects of an mltrail server, reached through its API (``open_object_store("http://...")``).

The server says how bytes move (``GET /api/v1/objects/config``):

- ``"s3"``: straight between this process and S3 with presigned URLs, the server only
  signing them and naming what arrived. A file below the part size is read, hashed and
  PUT to a temporary key; a bigger one is read part by part, each part hashed in order
  and uploaded by a few threads to a presigned multipart upload; then the server
  checks the bytes hash to the id we name and gives them that name (see
  :mod:`mltrail.objects.s3_presigned`). Downloads are presigned GETs.
- ``"stream"``: through the server, streamed both ways, never whole in memory; the
  server hashes what arrives.

Every download is hashed as it is written and verified (``ObjectCorrupted``, nothing
left at ``dest``). ``delete`` is for the server's admins; listing every object (gc) is
refused: gc runs on the server host.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from mltrail.errors import (
    ConfigurationError,
    ObjectNotFound,
    ObjectStoreError,
    StoreError,
    StoreUnavailable,
)
from mltrail.objects import ObjectInfo, StoredObject
from mltrail.objects._io import atomic_write, corrupted, open_verified
from mltrail.objects.hashing import (
    BLOCK_SIZE,
    ProgressCallback,
    hash_bytes,
    new_hasher,
    validate_oid,
)
from mltrail.store.http.transport import API, Transport, raise_for_error

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["HttpObjectStore"]

MiB = 1 << 20
EXISTS_BATCH = 5000  # object ids per exists request
URL_BATCH = 100  # presigned part URLs asked for at once (they expire: not all up front)
STREAM_SMALL = 8 * MiB  # stream mode: smaller files are read whole and PUT under their id
_TRIES = 3


class HttpObjectStore:
    """An :class:`~mltrail.objects.ObjectStore` behind an mltrail server at ``uri``.

    ``part_size`` (bytes, at least 5 MiB) asks the server for another part size of
    multipart uploads than its own; ``max_concurrency`` parts move at once (each held
    in memory while it does).
    """

    def __init__(
        self,
        uri: str,
        *,
        transport: Transport | None = None,
        part_size: int | None = None,
        max_concurrency: int = 4,
        timeout: float = 300.0,
    ) -> None:
        self._uri = uri.rstrip("/")
        if transport is None:
            from mltrail.registry.policy import current_user
            from mltrail.store.http.credentials import token_for

            transport = Transport(self._uri, token=token_for(self._uri), user=current_user())
            close: Callable[[], Any] | None = weakref.finalize(self, transport.close)
        else:
            close = None
        self._close_transport = close
        self._t = transport
        self.part_size = part_size
        self.max_concurrency = max(1, max_concurrency)
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        # presigned URLs carry their own signature: never our token, never to the server
        self._direct = httpx.Client(timeout=self._timeout, follow_redirects=False)
        # connections are closed when the store is dropped, or at exit (no leaked sockets)
        self._close_direct = weakref.finalize(self, self._direct.close)
        self._config: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpObjectStore({self._uri!r})"

    @property
    def uri(self) -> str:
        """The server's URL."""
        return self._uri

    def close(self) -> None:
        """Close the connections (the server's only if this store opened them)."""
        self._close_direct()
        if self._close_transport is not None:
            self._close_transport()

    def __enter__(self) -> HttpObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the server does -------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"s3"`` (presigned URLs) or ``"stream"`` (through the server)."""
        return str(self._server_config()["mode"])

    def _server_config(self) -> dict[str, Any]:
        if self._config is None:
            with self._lock:
                if self._config is None:
                    self._config = dict(self._t.call("GET", "/objects/config"))
        return self._config

    def _part_size(self) -> int:
        return int(self.part_size or self._server_config()["part_size"])

    # -- the protocol ---------------------------------------------------------------

    def exists(self, oid: str) -> bool:
        """True if the object is stored."""
        return validate_oid(oid) in self.exists_many([oid])

    def exists_many(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` that is stored (one request per 5,000 ids)."""
        unique = sorted({validate_oid(o) for o in oids})
        present: set[str] = set()
        for i in range(0, len(unique), EXISTS_BATCH):
            batch = unique[i : i + EXISTS_BATCH]
            data = self._t.call("POST", "/objects/exists", json={"oids": batch})
            present.update(data["present"])
        return present

    def put_file(
        self, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> ObjectInfo:
        """Store the file's content, reading it once; ``progress`` gets byte counts."""
        where = os.fspath(path)
        try:
            with open(where, "rb") as f:
                before = os.fstat(f.fileno())
                big = STREAM_SMALL if self.mode == "stream" else self._part_size()
                if before.st_size >= big:
                    if self.mode == "s3":
                        info = self._s3_put_stream(f, where, before, progress)
                    else:
                        info = self._stream_put_file(f, where, before, progress)
                    return info
                data = f.read()
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {where!r}: {exc}") from exc
        info = self.put_bytes(data)
        if progress is not None:
            progress(info.size)
        return info

    def put_bytes(self, data: Buffer) -> ObjectInfo:
        """Store ``data``; nothing is sent if the server already has it (S3 mode)."""
        payload = bytes(data)
        oid = hash_bytes(payload)
        if self.mode == "stream":
            answer = self._server("PUT", f"/objects/{oid}", content=payload)
            return ObjectInfo(str(answer["oid"]), int(answer["size"]))
        plan = self._t.call("POST", "/objects/uploads", json=self._plan_body(len(payload), oid))
        if plan["exists"]:
            return ObjectInfo(oid, len(payload))
        if "url" in plan:
            self._put_url(plan["url"], payload)
            return self._complete(plan, oid, len(payload), {})
        step = int(plan["part_size"])
        chunks = (
            (n, payload[off : off + step]) for n, off in enumerate(range(0, len(payload), step), 1)
        )
        etags = self._send_parts(plan, chunks, None)
        return self._complete(plan, oid, len(payload), etags)

    def open(self, oid: str) -> BinaryIO:
        """A streaming reader; reading to the end raises ``ObjectCorrupted`` on a mismatch."""
        oid = validate_oid(oid)
        response = self._open_response(oid, None)
        return open_verified(_ResponseReader(response), oid, self.uri)

    def get_file(
        self,
        oid: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Download to ``dest`` atomically, hashed as it is written; verified."""
        oid = validate_oid(oid)
        response = self._open_response(oid, None)
        hasher = new_hasher()
        size = 0
        try:
            with atomic_write(Path(dest)) as f:
                for data in _body(response):
                    hasher.update(data)
                    f.write(data)
                    size += len(data)
                    if progress is not None:
                        progress(len(data))
                actual = hasher.hexdigest()
                if actual != oid:
                    raise corrupted(oid, actual, self.uri)
        except OSError as exc:
            raise ObjectStoreError(f"cannot write {os.fspath(dest)!r}: {exc}") from exc
        finally:
            response.close()
        return ObjectInfo(oid, size)

    def size(self, oid: str) -> int:
        """Size in bytes; raises ``ObjectNotFound``."""
        return int(self._location(validate_oid(oid))["size"])

    def delete(self, oid: str) -> None:
        """Remove the object (the server allows it to its admins only)."""
        self._t.call("DELETE", f"/objects/{validate_oid(oid)}")

    def iter_oids(self) -> Iterator[StoredObject]:
        """Refused: a client does not list a server's objects; gc runs on the server host."""
        raise ConfigurationError(
            f"the objects of the mltrail server {self.uri} cannot be listed from a client "
            "(garbage collection runs on the server host)",
            hint="run `mltrail gc --uri STORE_URI` on the server host, with MLTRAIL_OBJECTS "
            "set to the server's --objects",
        )

    # -- stream mode ----------------------------------------------------------------

    def _server(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request to the server's object routes, body not gzipped (bytes are bytes)."""
        headers = {"Accept-Encoding": "identity", "Content-Type": "application/octet-stream"}
        headers.update(kwargs.pop("headers", None) or {})
        try:
            response = self._t.client.request(
                method, API + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"cannot reach the mltrail server at {self.uri}: {exc}",
                hint="check that the server runs and the URL is right",
            ) from exc
        raise_for_error(response, self.uri)
        return response.json()

    def _stream_put_file(
        self,
        f: BinaryIO,
        where: str,
        before: os.stat_result,
        progress: ProgressCallback | None,
    ) -> ObjectInfo:
        """POST the file as it is read; the server names it by its hash, we check ours."""
        hasher = new_hasher(before.st_size)
        size = before.st_size

        def body() -> Iterator[bytes]:
            left = size
            while left and (data := f.read(min(BLOCK_SIZE, left))):
                hasher.update(data)
                left -= len(data)
                if progress is not None:
                    progress(len(data))
                yield data
            if left:
                raise ObjectStoreError(f"{where!r} shrank while it was being stored; try again")

        answer = self._server("POST", "/objects", content=body(),
                              headers={"Content-Length": str(size)})  # fmt: skip
        _check_unchanged(f, where, before)
        oid = hasher.hexdigest()
        if answer["oid"] != oid:
            raise ObjectStoreError(
                f"the server stored {where!r} as object {answer['oid']}, but it hashes to "
                f"{oid} here: it changed while it was being stored, or the transfer was altered",
                hint="try again",
            )
        return ObjectInfo(oid, size)

    def _open_response(self, oid: str, headers: dict[str, str] | None) -> httpx.Response:
        if self.mode == "s3":
            url = self._location(oid)["url"]
            client, request = self._direct, self._direct.build_request("GET", url, headers=headers)
        else:
            request = self._t.client.build_request(
                "GET", f"{API}/objects/{oid}",
                headers={"Accept-Encoding": "identity", **(headers or {})},
                timeout=self._timeout,
            )  # fmt: skip
            client = self._t.client
        try:
            response = client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot download object {oid}: {exc}") from exc
        if response.status_code >= 400:
            response.read()
            response.close()
            if client is self._t.client:
                raise_for_error(response, self.uri)
            if response.status_code == 404:
                raise ObjectNotFound(f"object {oid} not found on S3 behind {self.uri}")
            raise _s3_error(response, f"download object {oid}")
        return response

    # -- s3 mode --------------------------------------------------------------------

    def _location(self, oid: str) -> dict[str, Any]:
        data: dict[str, Any] = self._t.call("GET", f"/objects/{oid}/location")
        return data

    def _plan_body(self, size: int, oid: str | None) -> dict[str, Any]:
        return {"size": size, "oid": oid, "part_size": self.part_size}

    def _s3_put_stream(
        self,
        f: BinaryIO,
        where: str,
        before: os.stat_result,
        progress: ProgressCallback | None,
    ) -> ObjectInfo:
        size = before.st_size
        plan = self._t.call("POST", "/objects/uploads", json=self._plan_body(size, None))
        if "url" in plan:  # the server's part size is bigger than ours: one PUT
            data = f.read(size + 1)
            _check_unchanged(f, where, before, len(data))
            self._put_url(plan["url"], data)
            info = self._complete(plan, hash_bytes(data), len(data), {})
            if progress is not None:
                progress(info.size)
            return info
        hasher = new_hasher(size)
        step = int(plan["part_size"])

        def chunks() -> Iterator[tuple[int, bytes]]:
            number, left = 0, size
            while left and (data := f.read(min(step, left))):
                hasher.update(data)
                left -= len(data)
                number += 1
                yield number, data

        try:
            etags = self._send_parts(plan, chunks(), progress)
            _check_unchanged(f, where, before)
        except BaseException:
            self._abort(plan)
            raise
        return self._complete(plan, hasher.hexdigest(), size, etags)

    def _send_parts(
        self,
        plan: dict[str, Any],
        chunks: Iterable[tuple[int, bytes]],
        progress: ProgressCallback | None,
    ) -> dict[int, str]:
        """Upload parts (read in this thread, in order) with a few threads; their ETags."""
        urls: dict[int, str] = {}
        total = int(plan["parts"])
        etags: dict[int, str] = {}
        pending: dict[Future[str], tuple[int, int]] = {}

        def url_of(number: int) -> str:
            if number not in urls:
                numbers = list(range(number, min(total, number + URL_BATCH - 1) + 1))
                answer = self._t.call(
                    "POST", f"/objects/uploads/{plan['upload']}/parts",
                    json={"upload_id": plan["upload_id"], "numbers": numbers},
                )  # fmt: skip
                urls.update({int(k): v for k, v in answer["urls"].items()})
            return urls.pop(number)

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
                    while len(pending) >= self.max_concurrency:
                        reap(True)
                    pending[pool.submit(self._put_url, url_of(number), data)] = (number, len(data))
                    reap(False)
                while pending:
                    reap(True)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        return etags

    def _put_url(self, url: str, data: bytes) -> str:
        """PUT ``data`` to a presigned URL (tried three times); the ETag S3 answers."""
        for attempt in range(_TRIES):
            try:
                response = self._direct.put(url, content=data)
            except httpx.TransportError as exc:
                if attempt == _TRIES - 1:
                    raise ObjectStoreError(f"upload to S3 failed: {exc}") from exc
                continue
            if response.status_code < 300:
                return str(response.headers.get("etag", ""))
            if response.status_code < 500 or attempt == _TRIES - 1:
                raise _s3_error(response, "upload")
        raise AssertionError("unreachable")

    def _complete(
        self, plan: dict[str, Any], oid: str, size: int, etags: dict[int, str]
    ) -> ObjectInfo:
        body = {
            "oid": oid,
            "size": size,
            "upload_id": plan.get("upload_id"),
            "parts": [{"number": n, "etag": etags[n]} for n in sorted(etags)],
        }
        # the server reads the upload back to verify it, then copies it: allow for that
        wait_s = 120.0 + size / (10 * MiB)
        path = f"/objects/uploads/{plan['upload']}/complete"
        answer = self._t.call("POST", path, json=body, timeout=wait_s)
        return ObjectInfo(str(answer["oid"]), int(answer["size"]))

    def _abort(self, plan: dict[str, Any]) -> None:
        with contextlib.suppress(StoreError, ObjectStoreError, OSError):
            self._t.call(
                "DELETE", f"/objects/uploads/{plan['upload']}",
                params={"upload_id": plan.get("upload_id")},
            )  # fmt: skip


class _ResponseReader:
    """``read(n)``/``close()`` over a streamed httpx response (for ``open_verified``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks = _body(response)
        self._buffer = b""

    def read(self, n: int = -1, /) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def close(self) -> None:
        self._response.close()


def _body(response: httpx.Response) -> Iterator[bytes]:
    """The response's bytes; a connection that breaks is an ``ObjectStoreError``."""
    try:
        yield from response.iter_bytes(BLOCK_SIZE)
    except httpx.HTTPError as exc:
        raise ObjectStoreError(f"download from {response.url.host} broke off: {exc}") from exc


def _check_unchanged(
    f: BinaryIO, where: str, before: os.stat_result, read: int | None = None
) -> None:
    after = os.fstat(f.fileno())
    grew = f.read(1) if read is None else b"x" * (read > before.st_size)
    if grew or after.st_mtime_ns != before.st_mtime_ns or after.st_size != before.st_size:
        raise ObjectStoreError(
            f"{where!r} changed while it was being stored; try again",
            hint="store files that no process is writing to",
        )


def _s3_error(response: httpx.Response, action: str) -> ObjectStoreError:
    text = response.text[:300].replace("\n", " ")
    return ObjectStoreError(
        f"S3 refused to {action}: HTTP {response.status_code} {text}",
        hint="a presigned URL may have expired (the server's presign_expiry); try again",
    )
