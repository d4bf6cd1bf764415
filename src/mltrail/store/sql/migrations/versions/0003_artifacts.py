"""artifacts: named, versioned manifests; aliases with their history; run edges

Revision ID: 0003_artifacts
Revises: 0002_run_logs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_artifacts"
down_revision = "0002_run_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_artifacts_project_name"),
    )
    op.create_table(
        "artifact_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("reference", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("artifact_id", "version", name="uq_artifact_versions_version"),
    )
    op.create_index("ix_artifact_versions_digest", "artifact_versions", ["digest"])
    op.create_table(
        "artifact_aliases",
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("from_version", sa.Integer),
        sa.Column("to_version", sa.Integer),
        sa.Column("actor", sa.String(250)),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_alias_events_artifact", "alias_events", ["artifact_id"])
    op.create_table(
        "run_edges",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("artifact_versions.id"), primary_key=True
        ),
        sa.Column("direction", sa.String(3), primary_key=True),
    )
    op.create_index("ix_run_edges_version", "run_edges", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_run_edges_version", "run_edges")
    op.drop_table("run_edges")
    op.drop_index("ix_alias_events_artifact", "alias_events")
    op.drop_table("alias_events")
    op.drop_table("artifact_aliases")
    op.drop_index("ix_artifact_versions_digest", "artifact_versions")
    op.drop_table("artifact_versions")
    op.drop_table("artifacts")
