"""HTTP to an mltrail server: one keep-alive connection pool per server per process.

Errors come back as the exception classes the embedded store raises (the server sends
their ``code``); a server that cannot be reached is :class:`StoreUnavailable`, which the
background writer answers by spooling and retrying.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

import httpx

from mltrail._version import __version__
from mltrail.errors import MltrailError, StoreError, StoreUnavailable, error_class

__all__ = ["Transport", "raise_for_error"]

API = "/api/v1"
GZIP_OVER = 4096  # bytes: smaller request bodies are not worth compressing


def raise_for_error(response: httpx.Response, base_url: str) -> None:
    """Raise the error a non-2xx response carries."""
    if response.status_code < 400:
        return
    try:
        err = response.json()["error"]
        code, message, hint = str(err["code"]), str(err["message"]), err.get("hint")
    except (ValueError, KeyError, TypeError):
        code, message, hint = "", f"HTTP {response.status_code} from {base_url}", None
        if response.status_code >= 502:
            raise StoreUnavailable(
                f"the mltrail server at {base_url} is not answering "
                f"(HTTP {response.status_code} from a proxy in front of it)",
                hint="check the server; logged data waits in the local spool",
            ) from None
    cls = error_class(code, response.status_code)
    exc = cls.__new__(cls)
    MltrailError.__init__(exc, message, hint=hint)
    raise exc


class Transport:
    """Requests to one server's ``/api/v1`` (thread-safe; httpx pools connections)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        user: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": f"mltrail/{__version__}", "Accept-Encoding": "gzip"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if user:
            headers["X-Mltrail-User"] = user
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        api: bool = True,
    ) -> httpx.Response:
        """Send one request; raise the server's error (or StoreUnavailable)."""
        url = (API + path) if api else path
        extra = dict(headers or {})
        if json is not None:
            import json as jsonlib

            from mltrail.wire import to_wire

            content = jsonlib.dumps(to_wire(json), ensure_ascii=False).encode()
            extra.setdefault("Content-Type", "application/json")
        if content is not None and len(content) > GZIP_OVER:
            content = gzip.compress(content, compresslevel=1)
            extra["Content-Encoding"] = "gzip"
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.client.request(
                method, url, params=clean, content=content, headers=extra, **kwargs
            )
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"cannot reach the mltrail server at {self.base_url}: {exc}",
                hint="check that the server runs and the URL is right; "
                "logged data waits in the local spool (mltrail sync pushes it later)",
            ) from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"request to {self.base_url}{url} failed: {exc}") from exc
        raise_for_error(response, self.base_url)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose answer is JSON; returns it decoded (None for no content)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
