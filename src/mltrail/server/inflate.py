"""Request bodies sent with ``Content-Encoding: gzip`` (the remote client compresses
bodies over 4 KiB: metric batches, large JSON), inflated before any route reads them.

The inflated size is held to the same limit as a plain body (a small gzip bomb must
not become gigabytes in memory): ``max_body_bytes``, or ``max_object_bytes`` on the
streaming object routes.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mltrail.errors import RequestTooLarge, ValidationError
from mltrail.server.config import ServerConfig

__all__ = ["InflateRequest"]


class InflateRequest:
    """ASGI middleware: inflate gzip request bodies, chunk by chunk, within the limit."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        encoding = next((v for k, v in headers if k == b"content-encoding"), b"")
        if encoding.strip().lower() != b"gzip":
            await self.app(scope, receive, send)
            return
        from mltrail.server.app import API

        streaming = scope["path"].startswith((f"{API}/objects", "/api/2.0/mlflow-artifacts"))
        limit = self.config.max_object_bytes if streaming else self.config.max_body_bytes
        kept = [(k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")]
        scope = dict(scope, headers=kept)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        total = 0

        async def inflated() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] != "http.request":
                return message
            try:
                body = inflater.decompress(message.get("body", b""), limit - total + 1)
                if inflater.unconsumed_tail:
                    body = b"x" * (limit + 1)  # over the limit either way
                elif not message.get("more_body", False):
                    body += inflater.flush()
                    if not inflater.eof:
                        raise ValidationError(
                            "the gzip request body is truncated",
                            hint="send the whole compressed body, or drop Content-Encoding",
                        )
            except zlib.error as exc:
                raise ValidationError(
                    f"the request body is not valid gzip ({exc})",
                    hint="compress the body with gzip, or drop Content-Encoding: gzip",
                ) from None
            total += len(body)
            if total > limit:
                raise RequestTooLarge(
                    f"request body over the limit of {limit} bytes (uncompressed)",
                    hint="send it in smaller batches",
                )
            return {**message, "body": body}

        await self.app(scope, inflated, send)
