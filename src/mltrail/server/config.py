"""How a server process is set up: where its stores are, whether auth is on, its limits.

``mltrail server`` passes its options to worker processes through the environment
(``MLTRAIL_SERVER_*``), so that uvicorn's ``--workers`` can build the same app in each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mltrail.config import objects_uri, resolve_uri
from mltrail.errors import ConfigurationError

__all__ = ["ServerConfig"]

MiB = 1 << 20


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class ServerConfig:
    """One server's settings (the same in every replica of a deployment)."""

    store_uri: str
    objects_uri: str
    auth: bool = False
    # bodies of API requests (JSON, metric batches); object uploads stream, see below
    max_body_bytes: int = 64 * MiB
    # one streamed object upload through the server (when the objects are not on S3)
    max_object_bytes: int = 64 * 1024 * MiB
    max_page_size: int = 10_000  # rows one list/search request may ask for
    presign_expiry: int = 3600  # seconds a presigned S3 URL stays valid

    @classmethod
    def create(  # limits from MLTRAIL_SERVER_MAX_BODY / _MAX_OBJECT / _MAX_PAGE
        cls, store: str | None = None, objects: str | None = None, *, auth: bool = False
    ) -> ServerConfig:
        """Resolve ``store`` like a tracking URI (default: the embedded store of the
        working directory) and ``objects`` like ``MLTRAIL_OBJECTS``."""
        store_uri = resolve_uri(store)
        if store_uri.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"a server cannot use another server as its store: {store_uri!r}",
                hint="give --store sqlite:///path or postgresql://...",
            )
        if not objects:
            objects = objects_uri(store_uri)  # MLTRAIL_OBJECTS, else beside the SQLite file
        elif "://" not in objects:
            objects = str(Path(objects).expanduser().absolute())
        return cls(
            store_uri=store_uri,
            objects_uri=objects,
            auth=auth,
            max_body_bytes=_env_int("MLTRAIL_SERVER_MAX_BODY", cls.max_body_bytes),
            max_object_bytes=_env_int("MLTRAIL_SERVER_MAX_OBJECT", cls.max_object_bytes),
            max_page_size=_env_int("MLTRAIL_SERVER_MAX_PAGE", cls.max_page_size),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "MLTRAIL_SERVER_STORE": self.store_uri,
            "MLTRAIL_SERVER_OBJECTS": self.objects_uri,
            "MLTRAIL_SERVER_AUTH": "1" if self.auth else "0",
            "MLTRAIL_SERVER_MAX_BODY": str(self.max_body_bytes),
            "MLTRAIL_SERVER_MAX_OBJECT": str(self.max_object_bytes),
            "MLTRAIL_SERVER_MAX_PAGE": str(self.max_page_size),
        }

    @classmethod
    def from_env(cls) -> ServerConfig:
        store = os.environ.get("MLTRAIL_SERVER_STORE")
        objects = os.environ.get("MLTRAIL_SERVER_OBJECTS")
        return cls.create(store, objects, auth=os.environ.get("MLTRAIL_SERVER_AUTH") == "1")
