"""Engines for SQLite and PostgreSQL, schema migration on first open."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from mltrail.errors import ExtraNotInstalled, SchemaVersionError, StoreUnavailable
from mltrail.store.sql.schema import HEAD, REVISIONS

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
WRITE = "mltrail_write"  # execution option: begin an IMMEDIATE (writer) transaction
SQLITE_MMAP_BYTES = 1 << 30  # PRAGMA mmap_size: the first GiB of the file is mapped


def make_engine(uri: str) -> Engine:
    if uri.startswith("sqlite:///"):
        return _sqlite_engine(Path(uri[len("sqlite:///") :]))
    return _postgres_engine(uri)


def _sqlite_engine(path: Path) -> Engine:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create the store folder {path.parent}: {exc.strerror}",
            hint="check the path in MLTRAIL_TRACKING_URI and its permissions",
        ) from exc
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": 60},
        pool_size=4,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (see _on_begin); pysqlite must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA case_sensitive_like = ON")  # LIKE as in PostgreSQL
        # Reads through a memory map instead of a read() per page: a search that visits
        # a few thousand runs spends half its time in those calls otherwise. Address
        # space only; the pages are the OS page cache's, shared by every connection.
        cur.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that later
        # writes fails with "database is locked" instead of waiting its turn.
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgres_engine(uri: str) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ExtraNotInstalled("psycopg", "postgres", "A PostgreSQL tracking store") from None
    url = re.sub(r"^(postgresql|postgres)(\+psycopg)?://", "postgresql+psycopg://", uri)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _current_revision(conn: Any) -> str | None:
    try:
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):
        return None
    return None if row is None else str(row[0])


def ensure_schema(engine: Engine, uri: str) -> None:
    """Bring a store to ``HEAD``; safe when several processes open a new store at once.

    SQLite serialises through the IMMEDIATE write transaction, PostgreSQL through an
    advisory lock held by the migrating transaction. A store at ``HEAD`` costs one
    SELECT and never imports Alembic.
    """
    try:
        with engine.connect() as conn:
            current = _current_revision(conn)
            conn.rollback()
        if current == HEAD:
            return
        _check_known(current, uri)
        with engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(827364519)"))
                    # A failed probe above aborted nothing: it ran in its own connection.
                current = _current_revision_safe(conn, engine)
                _check_known(current, uri)
                if current != HEAD:
                    _upgrade(conn)
    except OperationalError as exc:
        raise StoreUnavailable(
            f"cannot open the tracking store {redact(uri)}: {exc.orig}",
            hint="check that the database exists and is reachable (MLTRAIL_TRACKING_URI)",
        ) from exc


def _current_revision_safe(conn: Any, engine: Engine) -> str | None:
    if engine.dialect.name == "postgresql":
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if exists is None:
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])
    return _current_revision(conn)


def _check_known(current: str | None, uri: str) -> None:
    if current is not None and current not in REVISIONS:
        raise SchemaVersionError(
            f"the store {redact(uri)} has schema version {current!r}, which this mltrail "
            f"does not know (it knows up to {HEAD!r}); it was written by a newer mltrail",
            hint="upgrade mltrail (pip install -U mltrail), or use another store",
        )


def _upgrade(conn: Any) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def redact(uri: str) -> str:
    """The URI without a password, for messages."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", uri)
