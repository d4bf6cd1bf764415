"""registry: registered models, versions, aliases, append-only events, approvals,
settings, signing keys, webhooks and their delivery outbox

Revision ID: 0006_registry
Revises: 0005_search_perf
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_registry"
down_revision = "0005_search_perf"
branch_labels = None
depends_on = None

_APPEND_ONLY = "registry_events is append-only: the audit trail cannot be changed"


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(250)),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("tags_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column(
            "artifact_version_id",
            sa.Integer,
            sa.ForeignKey("artifact_versions.id"),
            nullable=False,
        ),
        sa.Column("run_id", sa.String(64)),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("validation_json", sa.Text, nullable=False),
        sa.Column("signature_json", sa.Text),
        sa.Column("input_example_json", sa.Text),
        sa.Column("card", sa.Text),
        sa.Column("signed_payload", sa.Text),
        sa.Column("crypto_signature", sa.String(128)),
        sa.Column("signing_key_id", sa.String(64)),
        sa.Column("created_by", sa.String(250)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
        sa.UniqueConstraint("model_id", "label", name="uq_model_versions_label"),
    )
    op.create_index("ix_model_versions_stage", "model_versions", ["model_id", "stage"])
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "registry_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id")),
        sa.Column("version", sa.Integer),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128)),
        sa.Column("from_value", sa.Text),
        sa.Column("to_value", sa.Text),
        sa.Column("actor", sa.String(250)),
        sa.Column("reason", sa.Text),
        sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_registry_events_model", "registry_events", ["model_id", "id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(250)),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("decided_by", sa.String(250)),
        sa.Column("decided_at", sa.Float),
        sa.Column("decision_reason", sa.Text),
    )
    op.create_index("ix_approvals_model_status", "approvals", ["model_id", "status"])
    op.create_table(
        "registry_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.Column("updated_by", sa.String(250)),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("owner", sa.String(250)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events_json", sa.Text, nullable=False),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id")),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(250)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("registry_events.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION mltrail_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{_APPEND_ONLY}'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER registry_events_append_only BEFORE UPDATE OR DELETE "
            "ON registry_events FOR EACH ROW EXECUTE FUNCTION mltrail_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER registry_events_no_{what.lower()} BEFORE {what} "
                f"ON registry_events BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER registry_events_append_only ON registry_events")
        op.execute("DROP FUNCTION mltrail_append_only()")
    else:
        op.execute("DROP TRIGGER registry_events_no_update")
        op.execute("DROP TRIGGER registry_events_no_delete")
    op.drop_index("ix_webhook_deliveries_due", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("signing_keys")
    op.drop_table("registry_settings")
    op.drop_index("ix_approvals_model_status", "approvals")
    op.drop_table("approvals")
    op.drop_index("ix_registry_events_model", "registry_events")
    op.drop_table("registry_events")
    op.drop_table("model_aliases")
    op.drop_index("ix_model_versions_run", "model_versions")
    op.drop_index("ix_model_versions_stage", "model_versions")
    op.drop_table("model_versions")
    op.drop_table("registered_models")
