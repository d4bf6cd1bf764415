"""The ASGI application: ``/api/v1`` (our API), ``/api/2.0/mlflow`` (MLflow's), health,
and the web UI's pages (:mod:`mltrail.server.ui`).

Errors are JSON ``{"error": {"code", "message", "hint"}}`` with the HTTP status the
exception class carries (``MltrailError.http_status`` and ``.code``), so the remote
client can raise the same class the embedded store would have raised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mltrail._version import __version__
from mltrail.errors import MltrailError, QuerySyntaxError, RequestTooLarge
from mltrail.server.config import ServerConfig
from mltrail.server.state import ServerState
from mltrail.wire import to_wire

__all__ = ["API", "WireResponse", "app_from_env", "create_app", "error_body"]

API = "/api/v1"
log = logging.getLogger("mltrail.server")


class WireResponse(JSONResponse):
    """JSON that keeps NaN and infinities (as strings, see :mod:`mltrail.wire`)."""

    def render(self, content: Any) -> bytes:
        return super().render(to_wire(content))


def error_body(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint}}


def _error(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, hint), status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MltrailError)
    async def mltrail_error(request: Request, exc: MltrailError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        if isinstance(exc, QuerySyntaxError):  # the UI marks the spot in the search box
            body = error_body(exc.code, exc.message, exc.hint)
            body["error"].update(position=exc.position, reason=exc.reason)
            return JSONResponse(body, status_code=exc.http_status)
        return _error(exc.http_status, exc.code, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "invalid_argument", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        from mltrail.server.ui.pages import render_error, wants_html

        if wants_html(request):  # a browser asked for a page: the UI's error page
            return render_error(request, exc.status_code, str(exc.detail))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # SQLite's driver refuses integers past 64 bits (PostgreSQL just finds nothing)
        return _error(
            400, "invalid_argument", f"a number in the request is out of range: {exc}",
            "ids, steps and offsets are whole numbers below 2**63",
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        from mltrail.server.ui.pages import render_error, wants_html

        if wants_html(request):
            return render_error(request, 500, f"internal server error: {type(exc).__name__}")
        return _error(500, "internal_error", f"internal server error: {type(exc).__name__}")


class BodyLimit:
    """Refuse request bodies over the limit (413) before a route reads them.

    Object uploads stream to the object store and have a limit of their own.
    """

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        streaming = path.startswith((f"{API}/objects", "/api/2.0/mlflow-artifacts"))
        limit = self.config.max_object_bytes if streaming else self.config.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise RequestTooLarge(
                        f"request body over the limit of {limit} bytes",
                        hint="send it in smaller batches",
                    )
            return message

        await self.app(scope, counted, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        response = _error(
            413,
            RequestTooLarge.code,
            f"request body over the limit of {limit} bytes",
            "send it in smaller batches (or raise the server's limit)",
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The server application for ``config`` (default: from the environment)."""
    config = config or ServerConfig.from_env()
    state = ServerState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starlette.concurrency import run_in_threadpool

        # open (and migrate) the store now: a wrong URI fails at start, not at first use
        await run_in_threadpool(lambda: state.store)
        yield
        state.close()

    app = FastAPI(
        title="mltrail",
        version=__version__,
        description="Experiment tracking, model registry and data versioning.",
        default_response_class=WireResponse,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url=f"{API}/openapi.json",
    )
    app.state.mltrail = state
    _install_error_handlers(app)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    from mltrail.server.routes import include_routes
    from mltrail.server.ui import install as install_ui

    include_routes(app)
    install_ui(app)  # the web UI: pages at /, static files under /ui/static
    from starlette.middleware.gzip import GZipMiddleware

    app.add_middleware(GZipMiddleware, minimum_size=1024)
    from mltrail.server.inflate import InflateRequest

    app.add_middleware(InflateRequest, config=config)  # gzip bodies, inside the byte limit
    app.add_middleware(BodyLimit, config=config)
    from mltrail.server.audit import AuditMiddleware

    app.add_middleware(AuditMiddleware)  # outermost: refused and too-large writes too
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory for worker processes (``mltrail server --workers N``)."""
    return create_app(ServerConfig.from_env())
