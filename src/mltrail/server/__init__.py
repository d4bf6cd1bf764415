"""The team server: a thin ASGI layer over the same stores the embedded client uses.

``mltrail server`` starts it (uvicorn); :func:`mltrail.server.app.create_app` builds the
FastAPI application for tests and embedding. The server holds no state of its own
beyond open connection pools, so any number of replicas can serve one PostgreSQL +
S3 store. Needs the ``server`` extra.
"""

from __future__ import annotations

__all__ = ["require_server_extra"]


def require_server_extra(purpose: str = "the mltrail server") -> None:
    """Raise :class:`~mltrail.errors.ExtraNotInstalled` unless FastAPI and uvicorn import."""
    from mltrail.errors import ExtraNotInstalled

    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            raise ExtraNotInstalled(module, "server", purpose) from None
