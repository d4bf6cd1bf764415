"""sweeps: hyperparameter searches and their trials (leased by agents)

Revision ID: 0008_sweeps
Revises: 0007_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_sweeps"
down_revision = "0007_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(250)),
        sa.Column("goal", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("run_cap", sa.Integer),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(250)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sweeps_project_created", "sweeps", ["project_id", "created_at"])
    op.create_table(
        "sweep_trials",
        sa.Column("sweep_id", sa.String(64), sa.ForeignKey("sweeps.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("internal_json", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("retry_of", sa.Integer),
        sa.Column("agent", sa.String(250)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("lease_until", sa.Float),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_sweep_trials_status", "sweep_trials", ["sweep_id", "status"])
    op.create_index("ix_sweep_trials_run", "sweep_trials", ["run_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_sweep_trials_run", "sweep_trials")
    op.drop_index("ix_sweep_trials_status", "sweep_trials")
    op.drop_table("sweep_trials")
    op.drop_index("ix_sweeps_project_created", "sweeps")
    op.drop_table("sweeps")
