"""Alembic environment: always driven by mltrail with a live connection."""

from __future__ import annotations

from alembic import context

from mltrail.store.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "mltrail migrations run through mltrail.store.sql.migrate, not the alembic CLI"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
