"""search: params.value_text (string params compare as plain text), search indexes

No index on unbounded text columns: PostgreSQL refuses btree entries over ~2.7 kB.

Revision ID: 0004_search
Revises: 0003_artifacts
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004_search"
down_revision = "0003_artifacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("params") as batch:
        batch.add_column(sa.Column("value_text", sa.Text))
    conn = op.get_bind()
    params = sa.table(
        "params",
        sa.column("run_id", sa.String),
        sa.column("key", sa.String),
        sa.column("value_json", sa.Text),
        sa.column("value_text", sa.Text),
    )
    rows = conn.execute(sa.select(params.c.run_id, params.c.key, params.c.value_json)).all()
    for run_id, key, value_json in rows:
        value = json.loads(value_json)
        text = value if isinstance(value, str) else value_json
        conn.execute(
            params.update()
            .where((params.c.run_id == run_id) & (params.c.key == key))
            .values(value_text=text)
        )
    op.create_index("ix_metric_summary_key_last", "metric_summary", ["key", "last_value"])
    op.create_index("ix_params_key_num", "params", ["key", "value_num"])


def downgrade() -> None:
    op.drop_index("ix_params_key_num", "params")
    op.drop_index("ix_metric_summary_key_last", "metric_summary")
    with op.batch_alter_table("params") as batch:
        batch.drop_column("value_text")
