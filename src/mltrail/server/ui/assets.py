"""The UI's static files: our JS and CSS, and Plotly.js from the installed ``plotly``.

Files are served under ``/ui/static/<version>/``, where the version is a hash of every
static file (and of Plotly's), so a browser may cache them for a year and still gets
new files after an upgrade; ES modules import each other by relative paths and stay in
the same version. Each file is read once, kept in memory with its gzip form (Plotly.js
is 4.8 MB, 1.4 MB compressed: compressed once, not on every request).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import mimetypes
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["PLOTLY", "STATIC_DIR", "asset_version", "serve_asset"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLOTLY = "vendor/plotly.min.js"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_lock = threading.Lock()


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _plotly_path() -> Path | None:
    try:
        path = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def _source(name: str) -> Path | None:
    """The file behind an asset name, never outside the static folder."""
    if name == PLOTLY:
        return _plotly_path()
    if not name or name.startswith("/") or "\\" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = STATIC_DIR.joinpath(*parts)
    return path if path.is_file() else None


@cache
def asset_version() -> str:
    """A hash of every static file, Plotly's included: the cache-busting path segment."""
    digest = hashlib.blake2b(digest_size=6)
    files = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())
    plotly = _plotly_path()
    for path in [*files, *([plotly] if plotly else [])]:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


_cache: dict[str, Asset] = {}


def _load(name: str) -> Asset | None:
    asset = _cache.get(name)
    if asset is not None:
        return asset
    path = _source(name)
    if path is None:
        return None
    with _lock:
        asset = _cache.get(name)
        if asset is None:
            body = path.read_bytes()
            media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            compressible = len(body) > 1024 and path.suffix in (".js", ".css", ".svg", ".json")
            asset = Asset(
                body=body,
                gzipped=gzip.compress(body, compresslevel=6) if compressible else None,
                media_type=media or "application/octet-stream",
                etag='"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"',
            )
            _cache[name] = asset
    return asset


def serve_asset(request: Request, version: str, name: str) -> Response:
    """One static file; cached for a year when ``version`` is the current one."""
    asset = _load(name)
    if asset is None:
        hint = (
            " (install the server extra: pip install 'mltrail[server]')" if name == PLOTLY else ""
        )
        return Response(f"no such file: {name}{hint}", status_code=404, media_type="text/plain")
    current = version == asset_version()
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)
