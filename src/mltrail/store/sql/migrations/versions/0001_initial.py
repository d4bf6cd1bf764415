"""initial schema: projects, runs, params, tags, chunked metrics, spool commits

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

KEY = 250
RID = 64


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(KEY), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(RID), primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(KEY), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("exit_reason", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("user", sa.String(KEY)),
        sa.Column("group_name", sa.String(KEY)),
        sa.Column("job_type", sa.String(KEY)),
        sa.Column("parent_id", sa.String(RID)),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("summary_json", sa.Text, nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
    )
    op.create_index("ix_runs_project_created", "runs", ["project_id", "created_at"])
    op.create_index("ix_runs_parent", "runs", ["parent_id"])
    op.create_table(
        "params",
        sa.Column("run_id", sa.String(RID), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(KEY), primary_key=True),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.Column("value_num", sa.Float),
    )
    op.create_table(
        "tags",
        sa.Column("run_id", sa.String(RID), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(KEY), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.String(RID), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(KEY), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("first_step", sa.BigInteger, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("num_points", sa.Integer, nullable=False),
        sa.Column("ordered", sa.Boolean, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "metric_summary",
        sa.Column("run_id", sa.String(RID), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(KEY), primary_key=True),
        sa.Column("last_value", sa.Float),
        sa.Column("last_is_nan", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("last_timestamp", sa.Float, nullable=False),
        sa.Column("min_value", sa.Float),
        sa.Column("max_value", sa.Float),
        sa.Column("num_points", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "spool_commits",
        sa.Column("spool_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(RID), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("spool_commits", "metric_summary", "metric_chunks", "tags", "params"):
        op.drop_table(name)
    op.drop_index("ix_runs_parent", "runs")
    op.drop_index("ix_runs_project_created", "runs")
    op.drop_table("runs")
    op.drop_table("projects")
