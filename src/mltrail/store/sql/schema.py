"""The metadata schema, as SQLAlchemy Core tables.

Alembic migrations in ``migrations/versions`` own the real schema; these table objects
are what queries are built from. ``tests/store/test_migrations.py`` checks that the two
agree (autogenerate finds no difference) and that ``HEAD`` is Alembic's head.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Every revision this version of mltrail knows, oldest first.
REVISIONS = (
    "0001_initial",
    "0002_run_logs",
    "0003_artifacts",
    "0004_search",
    "0005_search_perf",
    "0006_registry",
    "0007_auth",
    "0008_sweeps",
)
HEAD = REVISIONS[-1]

KEY_LEN = 250  # longest metric/param/tag key
RUN_ID_LEN = 64

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LEN), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(RUN_ID_LEN), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("name", String(KEY_LEN), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("heartbeat_at", Float),
    Column("exit_reason", Text),
    Column("exit_code", Integer),
    Column("user", String(KEY_LEN)),
    Column("group_name", String(KEY_LEN)),
    Column("job_type", String(KEY_LEN)),
    Column("parent_id", String(RUN_ID_LEN)),
    Column("notes", Text, nullable=False),
    Column("summary_json", Text, nullable=False),  # explicit summary overrides
    Column("metadata_json", Text, nullable=False),  # captured system/git/env info
    Index("ix_runs_project_created", "project_id", "created_at"),
    Index("ix_runs_project_seq", "project_id", "seq"),  # create_run's max(seq) + 1
    Index("ix_runs_parent", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value_json", Text, nullable=False),
    Column("value_num", Float),  # set when the value is (or reads as) a number
    Column("value_text", Text),  # a string value as is, else the JSON text
    Index("ix_params_key_num", "key", "value_num"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key", "key"),
)

# A contiguous block of one series: steps (int64), values and timestamps (float64),
# packed and zlib-compressed (see store/sql/chunks.py). Never a row per point.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("num_points", Integer, nullable=False),
    Column("ordered", Boolean, nullable=False),  # steps strictly increasing inside
    Column("data", LargeBinary, nullable=False),
)

# One row per (run, key), updated with every batch: what tables and search read.
metric_summary = Table(
    "metric_summary",
    metadata,
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("last_value", Float),  # NULL when last_is_nan (SQLite cannot store NaN)
    Column("last_is_nan", Boolean, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("last_timestamp", Float, nullable=False),
    Column("min_value", Float),
    Column("max_value", Float),
    Column("num_points", BigInteger, nullable=False),
    # run_id too: a search sorted and filtered on a metric reads runs off the index alone
    Index("ix_metric_summary_key_last_run", "key", "last_value", "run_id"),
)

# How far each spool file has been written to the store (exactly-once replay).
spool_commits = Table(
    "spool_commits",
    metadata,
    Column("spool_id", String(64), primary_key=True),
    Column("run_id", String(RUN_ID_LEN), nullable=False),
    Column("offset", BigInteger, nullable=False),
)

# Console output (stdout/stderr) of a run, appended in chunks while it runs.
run_logs = Table(
    "run_logs",
    metadata,
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("data", Text, nullable=False),
)

# A named artifact in a project; its versions are manifests in the object store.
artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_artifacts_project_name"),
)

artifact_versions = Table(
    "artifact_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # the manifest's object id
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("run_id", String(RUN_ID_LEN)),  # the producing run
    Column("reference", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("artifact_id", "version", name="uq_artifact_versions_version"),
)
Index("ix_artifact_versions_digest", artifact_versions.c.digest)

artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Append-only: every alias move (who, when, from -> to, why).
alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("actor", String(KEY_LEN)),
    Column("reason", Text),
    Column("at", Float, nullable=False),
    Index("ix_alias_events_artifact", "artifact_id"),
)

# Lineage: a run's inputs ("in") and outputs ("out").
run_edges = Table(
    "run_edges",
    metadata,
    Column("run_id", String(RUN_ID_LEN), ForeignKey("runs.id"), primary_key=True),
    Column("version_id", Integer, ForeignKey("artifact_versions.id"), primary_key=True),
    Column("direction", String(3), primary_key=True),
    Index("ix_run_edges_version", "version_id"),
)


# -- model registry (0006) ---------------------------------------------------------------

NAME_LEN = 128

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("owner", String(KEY_LEN)),
    Column("scheme", String(16), nullable=False),  # version labels: semver|date|hash|hybrid
    Column("tags_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("label", String(64), nullable=False),
    Column("artifact_version_id", Integer, ForeignKey("artifact_versions.id"), nullable=False),
    Column("run_id", String(RUN_ID_LEN)),
    Column("stage", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("validation_json", Text, nullable=False),  # the schema's complaints, [] when valid
    Column("signature_json", Text),  # model input/output signature
    Column("input_example_json", Text),
    Column("card", Text),
    Column("signed_payload", Text),  # what the Ed25519 signature covers (canonical JSON)
    Column("crypto_signature", String(128)),  # hex
    Column("signing_key_id", String(64)),
    Column("created_by", String(KEY_LEN)),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
    UniqueConstraint("model_id", "label", name="uq_model_versions_label"),
    Index("ix_model_versions_stage", "model_id", "stage"),
    Index("ix_model_versions_run", "run_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(NAME_LEN), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Append-only (triggers refuse UPDATE and DELETE): every change to the registry.
registry_events = Table(
    "registry_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id")),
    Column("version", Integer),
    Column("action", String(32), nullable=False),
    Column("target", String(NAME_LEN)),
    Column("from_value", Text),
    Column("to_value", Text),
    Column("actor", String(KEY_LEN)),
    Column("reason", Text),
    Column("payload_json", Text, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_registry_events_model", "model_id", "id"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(8), nullable=False),  # stage | alias
    Column("target", String(NAME_LEN), nullable=False),
    Column("status", String(16), nullable=False),  # pending|approved|rejected|cancelled
    Column("requested_by", String(KEY_LEN)),
    Column("requested_at", Float, nullable=False),
    Column("reason", Text),
    Column("decided_by", String(KEY_LEN)),
    Column("decided_at", Float),
    Column("decision_reason", Text),
    Index("ix_approvals_model_status", "model_id", "status"),
)

# Registry-wide settings (the policy document), changed only through audited calls.
registry_settings = Table(
    "registry_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value_json", Text, nullable=False),
    Column("updated_by", String(KEY_LEN)),
    Column("updated_at", Float, nullable=False),
)

# Public halves of the Ed25519 keys that signed model versions.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("public_key", Text, nullable=False),  # PEM
    Column("owner", String(KEY_LEN)),
    Column("created_at", Float, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("url", Text, nullable=False),
    Column("events_json", Text, nullable=False),  # actions it wants; [] = all
    Column("model_id", Integer, ForeignKey("registered_models.id")),  # NULL = every model
    Column("secret", Text, nullable=False),  # HMAC key; never returned by the API
    Column("active", Boolean, nullable=False),
    Column("created_by", String(KEY_LEN)),
    Column("created_at", Float, nullable=False),
)

# The outbox: one row per (webhook, event), written in the event's transaction.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id"), nullable=False),
    Column("event_id", Integer, ForeignKey("registry_events.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# -- auth (server with --auth): users, roles per project, API tokens, audit log ---------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LEN), nullable=False, unique=True),
    Column("created_by", String(KEY_LEN)),
    Column("created_at", Float, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

# One role per (user, project); project "*" is every project.
user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("project", String(KEY_LEN), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("granted_by", String(KEY_LEN)),
    Column("granted_at", Float, nullable=False),
)

# Only the SHA-256 of a token is stored; the token itself is shown once.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(NAME_LEN), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # the first characters, to recognise it
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Index("ix_api_tokens_user", "user_id"),
)

# Append-only (triggers refuse UPDATE and DELETE): every API request that writes.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(KEY_LEN)),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("project", String(KEY_LEN)),
    Column("request_id", String(64), nullable=False),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor", "actor", "id"),
)

# -- sweeps (0008): hyperparameter searches and their trials ----------------------------

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", String(RUN_ID_LEN), primary_key=True),  # also the id of the sweep's run
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(KEY_LEN), nullable=False),
    Column("method", String(16), nullable=False),
    Column("metric", String(KEY_LEN)),
    Column("goal", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # running|stopped|canceled|finished
    Column("config_json", Text, nullable=False),  # the configuration as given (W&B format)
    Column("seed", BigInteger, nullable=False),
    Column("run_cap", Integer),
    Column("max_retries", Integer, nullable=False),
    Column("created_by", String(KEY_LEN)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_sweeps_project_created", "project_id", "created_at"),
)

# One row per trial; a crashed trial's retry is a new row (retry_of names the first).
# An agent owns a running trial while its lease lasts; claims are serialised per sweep.
sweep_trials = Table(
    "sweep_trials",
    metadata,
    Column("sweep_id", String(RUN_ID_LEN), ForeignKey("sweeps.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("run_id", String(RUN_ID_LEN)),
    Column("status", String(16), nullable=False),
    Column("params_json", Text, nullable=False),
    Column("internal_json", Text, nullable=False),
    Column("value", Float),
    Column("attempt", Integer, nullable=False),
    Column("retry_of", Integer),
    Column("agent", String(KEY_LEN)),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("heartbeat_at", Float),
    Column("lease_until", Float),
    Column("reason", Text),
    Index("ix_sweep_trials_status", "sweep_id", "status"),
    Index("ix_sweep_trials_run", "run_id", unique=True),
)
