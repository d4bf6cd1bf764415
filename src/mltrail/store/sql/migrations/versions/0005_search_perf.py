"""search performance: an index for tag filters

Revision ID: 0005_search_perf
Revises: 0004_search
"""

from __future__ import annotations

from alembic import op

revision = "0005_search_perf"
down_revision = "0004_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tags_key", "tags", ["key"])


def downgrade() -> None:
    op.drop_index("ix_tags_key", "tags")
