"""The model registry: versions with scheme labels, aliases and stages under a policy,
an append-only audit trail, approvals, rollback, validated metadata, model cards,
signatures (input schemas and Ed25519), webhooks and retention.

The store keeps the rows (``mltrail.store.sql.registry``); this package decides what is
allowed. ``mltrail.Client`` exposes it; ``mltrail models ...`` is the CLI.
"""
