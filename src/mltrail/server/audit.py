"""The audit log: every API request that writes, whoever made it and however it ended.

:class:`AuditMiddleware` (ASGI, outermost) sees each ``POST``/``PUT``/``PATCH``/
``DELETE`` under ``/api`` (ours and MLflow's, refused ones too; POST searches, which
change nothing, are left out) and records time, actor, method, path, status, project
(when the access check found one) and a request id (the client's ``X-Request-Id``, else
a new one; sent back in the response's ``X-Request-Id``).

Cost on the metric hot path: appending a small dict to a list. A background thread
writes what gathered in one multi-row INSERT every :data:`FLUSH_EVERY` seconds (and
at shutdown), so the log costs one transaction per half second per worker, not one
per request. What a killed worker had not flushed yet (at most ``FLUSH_EVERY``
seconds of entries) is lost; a graceful stop flushes.

The actor is the authenticated user with ``--auth``; without it, the name the client
gave in ``X-Mltrail-User`` (nothing checks it: auth is off).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FLUSH_EVERY", "AuditLog", "AuditMiddleware"]

log = logging.getLogger("mltrail.server.audit")

FLUSH_EVERY = 0.5  # seconds between two writes of the gathered entries
MAX_PENDING = 50_000  # entries kept while the store cannot be written (then dropped)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_READ_ONLY_POST = re.compile(  # POSTs that only read (a body too big for a query string)
    r"(/search|:search|:count|/get-history-bulk[^/]*|/get-latest-versions|/objects/exists"
    r"|/validate-input)$"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class AuditLog:
    """Entries waiting to be written, and the thread that writes them."""

    def __init__(self, store: Callable[[], Any]) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def add(self, entry: dict[str, Any]) -> None:
        """Queue one entry (cheap: no I/O)."""
        with self._lock:
            if len(self._pending) < MAX_PENDING:
                self._pending.append(entry)
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._loop, name="mltrail-audit", daemon=True
                )
                self._thread.start()

    def flush(self) -> None:
        """Write every queued entry now (in one transaction)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._store().append_audit(batch)
        except Exception:
            log.exception("could not write %d audit entries; keeping them", len(batch))
            with self._lock:
                self._pending[:0] = batch[: MAX_PENDING - len(self._pending)]
            raise

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.flush()
        except Exception:  # logged by flush; nothing else can be done at exit
            pass

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(FLUSH_EVERY)
            try:
                self.flush()
            except Exception:  # logged by flush; retried on the next tick
                continue


def _is_audited(method: str, path: str) -> bool:
    if method not in WRITES or not path.startswith("/api/"):
        return False
    return not (method == "POST" and _READ_ONLY_POST.search(path))


class AuditMiddleware:
    """Record every write request under ``/api`` (see the module's doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.audit: AuditLog | None = None

    def _log(self, scope: Scope) -> AuditLog:
        if self.audit is None:
            server_app = scope["app"]
            state = server_app.state.mltrail
            self.audit = AuditLog(lambda: state.store)
            server_app.state.mltrail_audit = self.audit  # the audit route flushes it
        return self.audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._on_shutdown(scope, receive), send)
            return
        if scope["type"] != "http" or not _is_audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                extra = [(b"x-request-id", request_id.encode("latin-1"))]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            principal = state.get("principal")
            actor = None
            if principal is not None:
                actor = principal.name
            elif not scope["app"].state.mltrail.config.auth:  # a claim is all there is
                claimed = headers.get(b"x-mltrail-user", b"").decode("utf-8", "replace")
                actor = claimed[:250] or None
            project = state.get("project")
            self._log(scope).add(
                {
                    "at": time.time(),
                    "actor": actor,
                    "method": scope["method"],
                    "path": scope["path"][:4000],
                    "status": status,
                    "project": project[:250] if isinstance(project, str) else None,
                    "request_id": request_id,
                }
            )

    def _on_shutdown(self, scope: Scope, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self.audit is not None:
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(self.audit.close)
            return message

        return wrapped
