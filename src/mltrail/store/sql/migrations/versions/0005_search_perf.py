"""search performance: indexes for tag filters, run numbering and sorted metric search

- ``ix_tags_key``: tag filters find a key's rows without reading every tag.
- ``ix_runs_project_seq``: ``create_run`` numbers a run ``max(seq) + 1`` in its project;
  without it that reads every run of the project (25-40 ms at 100,000 runs).
- ``ix_metric_summary_key_last_run`` replaces ``ix_metric_summary_key_last``: the same
  order plus ``run_id``, so a search sorted and filtered on a metric reads runs from the
  index alone (an index-only scan on PostgreSQL, a covering index on SQLite).

No index on unbounded text columns (tags.value, params.value_text): PostgreSQL refuses
btree entries over ~2.7 kB.

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
    op.create_index("ix_runs_project_seq", "runs", ["project_id", "seq"])
    op.drop_index("ix_metric_summary_key_last", "metric_summary")
    op.create_index(
        "ix_metric_summary_key_last_run", "metric_summary", ["key", "last_value", "run_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_metric_summary_key_last_run", "metric_summary")
    op.create_index("ix_metric_summary_key_last", "metric_summary", ["key", "last_value"])
    op.drop_index("ix_runs_project_seq", "runs")
    op.drop_index("ix_tags_key", "tags")
