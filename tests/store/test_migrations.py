"""Schema ownership: Alembic migrations agree with the table definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from mltrail.errors import SchemaVersionError, StoreUnavailable
from mltrail.store import close_all, open_store
from mltrail.store.sql import schema
from mltrail.store.sql.engine import MIGRATIONS_DIR
from mltrail.store.sql.store import SqlStore


def test_head_constant_is_alembic_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_current_head() == schema.HEAD
    revisions = [r.revision for r in script.walk_revisions()]
    assert tuple(reversed(revisions)) == schema.REVISIONS


def test_migrations_match_table_definitions(store_uri: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = open_store(store_uri)
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, schema.metadata)
    assert diff == []


def test_newer_schema_is_a_clear_error(store_uri: str) -> None:
    store = open_store(store_uri)
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    close_all()
    with pytest.raises(SchemaVersionError, match="0099_from_the_future") as info:
        open_store(store_uri)
    assert "upgrade mltrail" in str(info.value)


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot open the tracking store"):
        open_store("postgresql://postgres@127.0.0.1:1/none")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable, match="cannot create the store folder"):
        open_store(f"sqlite:///{blocker}/sub/mltrail.db")
