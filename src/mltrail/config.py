"""Where things live and how they behave: one place for settings.

Resolution order for the tracking URI: explicit argument > ``MLTRAIL_TRACKING_URI`` >
``sqlite:///<cwd>/.mltrail/mltrail.db``. An ``http(s)://`` URI names an mltrail server.
The local directory (spool files, and the object folder of the embedded store) is
``MLTRAIL_DIR`` if set, else the folder of the SQLite file, else ``<cwd>/.mltrail``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mltrail.errors import ConfigurationError

__all__ = ["Settings", "cache_dir", "local_dir", "objects_uri", "resolve_uri", "settings"]

DEFAULT_DIRNAME = ".mltrail"


def resolve_uri(uri: str | None = None) -> str:
    """Return a canonical tracking URI (SQLite paths made absolute).

    >>> resolve_uri("sqlite:////tmp/x.db")
    'sqlite:////tmp/x.db'
    """
    raw = uri or os.environ.get("MLTRAIL_TRACKING_URI") or ""
    if not raw:
        return "sqlite:///" + str(Path.cwd() / DEFAULT_DIRNAME / "mltrail.db")
    if raw.startswith("sqlite:///"):
        path = raw[len("sqlite:///") :]
        if path in ("", ":memory:"):
            raise ConfigurationError(
                f"in-memory SQLite is not supported as a tracking store: {raw!r}",
                hint="use a file, e.g. sqlite:///./.mltrail/mltrail.db",
            )
        return "sqlite:///" + str(Path(path).expanduser().absolute())
    scheme = raw.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return raw
    if scheme in ("http", "https"):
        if not raw.split("://", 1)[1].split("/", 1)[0]:
            raise ConfigurationError(
                f"the server URI {raw!r} names no host", hint="e.g. http://127.0.0.1:5000"
            )
        return raw.rstrip("/")
    if "://" not in raw:  # a bare path to a directory or a .db file
        p = Path(raw).expanduser().absolute()
        return "sqlite:///" + str(p if p.suffix == ".db" else p / "mltrail.db")
    raise ConfigurationError(
        f"unsupported tracking URI {raw!r}",
        hint="use sqlite:///path/to/mltrail.db or postgresql://user@host:port/db",
    )


def local_dir(uri: str) -> Path:
    """The local folder for spool files (and objects of the embedded store)."""
    env = os.environ.get("MLTRAIL_DIR")
    if env:
        return Path(env).expanduser().absolute()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).parent
    return Path.cwd() / DEFAULT_DIRNAME


def objects_uri(uri: str) -> str:
    """Where blobs go: ``MLTRAIL_OBJECTS`` (a path or ``s3://bucket/prefix``), else the
    ``objects/`` folder beside an embedded (SQLite) store.

    A PostgreSQL store has no folder of its own, so it needs ``MLTRAIL_OBJECTS``: a
    default under the working directory could mix its objects with another store's
    (and ``gc`` of one would delete the other's).
    """
    if uri.startswith(("http://", "https://")):
        return uri  # the server says where objects go (presigned S3, or through itself)
    explicit = os.environ.get("MLTRAIL_OBJECTS")
    if explicit:
        return explicit
    if not uri.startswith("sqlite:///"):
        raise ConfigurationError(
            "artifacts of a PostgreSQL store need an object location of their own",
            hint="set MLTRAIL_OBJECTS=s3://bucket/prefix (or a folder used by this store only)",
        )
    return str(local_dir(uri) / "objects")


def cache_dir() -> Path:
    """The artifact download cache (``MLTRAIL_CACHE_DIR``, else ~/.cache/mltrail)."""
    env = os.environ.get("MLTRAIL_CACHE_DIR")
    if env:
        return Path(env).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mltrail" / "artifacts"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name}={raw!r} is not a number", hint=f"unset {name} or give seconds"
        ) from None


@dataclass(frozen=True)
class Settings:
    """Knobs read from the environment once per run."""

    flush_interval: float = 0.25  # seconds between background writes
    heartbeat_interval: float = 15.0  # seconds between heartbeats of a live run
    crash_after: float = 300.0  # a running run without heartbeat this long is crashed

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            flush_interval=_env_float("MLTRAIL_FLUSH_INTERVAL", cls.flush_interval),
            heartbeat_interval=_env_float("MLTRAIL_HEARTBEAT_INTERVAL", cls.heartbeat_interval),
            crash_after=_env_float("MLTRAIL_CRASH_AFTER", cls.crash_after),
        )


def settings() -> Settings:
    return Settings.from_env()
