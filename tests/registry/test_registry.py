"""The model registry on SQLite and PostgreSQL: the governed workflow end to end,
labels, policy (stages, transitions, roles, approvals), validation, audit, signing,
cards and retention."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

import mltrail
from mltrail.entities import Approval, ModelVersion
from mltrail.errors import (
    ConflictError,
    InvalidValueError,
    MetadataValidationError,
    ModelNotFound,
    ObjectCorrupted,
    PermissionDenied,
    SignatureInvalid,
    TransitionNotAllowed,
)
from mltrail.store.sql.store import SqlStore
from tests.registry.conftest import Train

SIG = {"format": 1, "inputs": {"type": "columns", "columns": [{"name": "x", "type": "int64"}]}}


def _version(result: object) -> ModelVersion:
    assert isinstance(result, ModelVersion), result
    return result


def test_the_workflow_users_run_first(train: Train, client: mltrail.Client, tmp_path: Path) -> None:
    """Register only good candidates, staging -> production, archive the previous
    production version, deploy, roll back after a bad deployment; all audited."""
    gate = "metrics.val_accuracy >= 0.90"
    _, weak = train(0.85)
    assert client.register_model(weak, "churn-xgboost", when=gate, signature=SIG) is None
    with pytest.raises(ModelNotFound):
        client.get_model("churn-xgboost")

    _, good = train(0.92)
    v1 = client.register_model(good, "churn-xgboost", when=gate, signature=SIG)
    assert v1 is not None and (v1.version, v1.label, v1.stage) == (1, "1.0.0", "development")
    assert v1.valid, v1.validation_errors
    assert v1.metadata["metrics"]["val_accuracy"] == pytest.approx(0.92)
    assert v1.metadata["training_dataset"][0]["name"] == "churn/churn-data:v0"
    assert v1.metadata["hyperparameters"]["depth"] == 6
    assert (v1.metadata["framework"], v1.metadata["framework_version"]) == ("sklearn", "1.5.0")
    assert v1.signed and v1.run_id == good.run_id
    _version(client.promote("churn-xgboost@1", "staging", reason="offline eval ok"))
    _version(client.promote("churn-xgboost@1", "production", reason="canary ok"))

    _, better = train(0.95)
    v2 = client.register_model(better, "churn-xgboost", when=gate, signature=SIG)
    assert v2 is not None and v2.label == "1.1.0"
    client.promote("churn-xgboost@2", "staging")
    client.promote("churn-xgboost@2", "production", reason="better on holdout")
    assert client.get_model_version("churn-xgboost@1").stage == "archived"  # automatic

    deployed = client.get_model_version("churn-xgboost@production")
    assert deployed.version == 2
    path = client.download_model("churn-xgboost@production", tmp_path / "deploy")
    assert (path / "model.bin").read_text() == "weights 3 " * 100

    back = client.rollback_model("churn-xgboost", stage="production", reason="latency spike")
    assert back.version == 1 and back.stage == "production"
    assert client.get_model_version("churn-xgboost@2").stage == "archived"
    assert client.get_model_version("churn-xgboost@production").version == 1

    steps = [
        (e.action, e.version, e.from_value, e.to_value, e.reason)
        for e in client.model_history("churn-xgboost")
    ]
    assert steps == [
        ("model.created", None, None, "churn-xgboost", None),
        ("version.created", 1, None, "1.0.0", None),
        ("stage.changed", 1, "development", "staging", "offline eval ok"),
        ("stage.changed", 1, "staging", "production", "canary ok"),
        ("version.created", 2, None, "1.1.0", None),
        ("stage.changed", 2, "development", "staging", None),
        ("stage.changed", 2, "staging", "production", "better on holdout"),
        ("stage.changed", 1, "production", "archived", "better on holdout"),
        ("stage.changed", 2, "production", "archived", "latency spike"),
        ("stage.changed", 1, "archived", "production", "latency spike"),
    ]
    assert {e.actor for e in client.model_history("churn-xgboost")} == {"alice"}


def test_labels_follow_the_models_scheme(train: Train, client: mltrail.Client) -> None:
    run, art = train(0.9)
    client.store.merge_metadata(run.id, {"git": {"commit": "a1b2c3d4e5f6a7b8"}})
    client.create_model("churn-semver")
    labels = [
        client.register_model(art, "churn-semver", bump=b, sign=False).label  # type: ignore[union-attr]
        for b in ("minor", "minor", "patch", "major")
    ]
    assert labels == ["1.0.0", "1.1.0", "1.1.1", "2.0.0"]
    client.create_model("churn-dated", scheme="date")
    dated = [client.register_model(art, "churn-dated", sign=False) for _ in range(2)]
    day = dated[0].label.rsplit(".", 1)[0]  # type: ignore[union-attr]
    assert [d.label for d in dated] == [f"{day}.1", f"{day}.2"]  # type: ignore[union-attr]
    client.create_model("churn-hashed", scheme="hash")
    hashed = client.register_model(art, "churn-hashed", sign=False)
    assert hashed is not None and hashed.label == "a1b2c3d"
    client.create_model("churn-hybrid", scheme="hybrid")
    hybrid = client.register_model(art, "churn-hybrid", sign=False)
    assert hybrid is not None and hybrid.label == "1.0.0+a1b2c3d"
    assert client.get_model_version("churn-hybrid@1.0.0+a1b2c3d").version == 1
    explicit = client.register_model(art, "churn-semver", label="3.0.0-rc1", sign=False)
    assert explicit is not None and explicit.version == 5
    with pytest.raises(InvalidValueError, match="already taken"):
        client.register_model(art, "churn-semver", label="3.0.0-rc1", sign=False)
    with pytest.raises(InvalidValueError, match="semantic versioning"):
        client.register_model(art, "churn-semver", label="banana", sign=False)


def test_hash_scheme_needs_a_git_commit(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    client.create_model("churn-hashed", scheme="hash")
    with pytest.raises(InvalidValueError, match="git commit"):
        client.register_model(art, "churn-hashed", sign=False)
    assert client.model_versions("churn-hashed") == []


def test_names_follow_the_pattern(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    for bad in ("Churn", "churn", "churn xgboost", "-churn", "churn-"):
        with pytest.raises(InvalidValueError, match="naming pattern"):
            client.register_model(art, bad, sign=False)
    client.set_registry_policy({"name_pattern": r"^team-[a-z]+$"})
    with pytest.raises(InvalidValueError, match="naming pattern"):
        client.create_model("churn-xgboost")
    assert client.create_model("team-churn").name == "team-churn"
    with pytest.raises(ConflictError, match="already registered"):
        client.create_model("team-churn")


def test_custom_stages_and_transitions(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    client.set_registry_policy({
        "stages": ["candidate", "shadow", "live", "retired"],
        "initial_stage": "candidate",
        "archive_stage": "retired",
        "transitions": {"candidate": ["shadow", "retired"], "shadow": ["live", "retired"],
                        "live": ["retired", "shadow"], "retired": ["candidate"]},
        "exclusive_stages": ["live"],
        "protected": {"stage:live": {"roles": ["maintainer"]}},
    })  # fmt: skip
    v = client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    assert v is not None and v.stage == "candidate"
    with pytest.raises(TransitionNotAllowed, match="may go to: shadow, retired"):
        client.promote(v, "live")
    with pytest.raises(InvalidValueError, match="not a stage"):
        client.promote(v, "production")
    client.promote(v, "shadow")
    assert _version(client.promote(v, "live")).stage == "live"
    w = client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    assert w is not None
    client.promote(w, "shadow")
    client.promote(w, "live")
    assert client.get_model_version("churn-xgboost@1").stage == "retired"
    with pytest.raises(InvalidValueError, match="not one of the stages"):
        client.set_registry_policy({"stages": ["a"], "initial_stage": "b"})
    with pytest.raises(InvalidValueError, match="unknown registry policy keys"):
        client.set_registry_policy({"stagez": []})


def test_protected_stage_needs_valid_metadata(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    v = client.register_model(art, "churn-xgboost", sign=False)  # no signature
    assert v is not None and not v.valid
    assert client.validate_model(v) == ["signature: missing (required)"]
    client.promote(v, "staging")  # not protected: fine
    with pytest.raises(MetadataValidationError) as info:
        client.promote(v, "production")
    assert info.value.errors == ["signature: missing (required)"]
    assert "signature: missing (required)" in str(info.value)
    fixed = client.update_model_version(v, metadata={"signature": SIG}, reason="add signature")
    assert fixed.valid
    assert _version(client.promote(v, "production")).stage == "production"
    with pytest.raises(MetadataValidationError, match="must stay valid"):
        client.update_model_version(v, metadata={"author": ""})
    history = [e.action for e in client.model_history("churn-xgboost")]
    assert history[-2:] == ["metadata.updated", "stage.changed"]


def test_custom_metadata_schema_lists_every_problem(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    client.set_registry_policy({"metadata_schema": {
        "type": "object",
        "required": ["owner_team", "license"],
        "properties": {"license": {"enum": ["apache-2.0", "mit"]}},
    }})  # fmt: skip
    v = client.register_model(art, "churn-xgboost", metadata={"license": "gpl"}, sign=False)
    assert v is not None
    assert list(v.validation_errors) == [
        "owner_team: missing (required)",
        "license: 'gpl' is not one of ['apache-2.0', 'mit']",
    ]


def test_roles_and_approvals(
    train: Train, client: mltrail.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, art = train(0.9)
    v = client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    assert v is not None
    client.set_registry_policy({
        "roles": {"alice": ["admin"], "carol": ["maintainer"], "dave": ["maintainer"]},
        "default_roles": ["writer"],
        "protected": {"stage:production": {"roles": ["maintainer"], "approval": True},
                      "alias:champion": {"roles": ["maintainer"]}},
    })  # fmt: skip
    monkeypatch.setenv("MLTRAIL_USER", "bob")  # a writer
    client.promote(v, "staging")
    with pytest.raises(PermissionDenied, match="needs one of the roles maintainer"):
        client.promote(v, "production")
    with pytest.raises(PermissionDenied, match="alias 'champion' is protected"):
        client.set_model_alias("churn-xgboost", "champion", 1)
    client.set_model_alias("churn-xgboost", "challenger", 1)  # unprotected
    with pytest.raises(PermissionDenied, match="admin"):
        client.set_registry_policy({})

    monkeypatch.setenv("MLTRAIL_USER", "carol")
    request = client.promote(v, "production", reason="ready")
    assert isinstance(request, Approval) and request.status == "pending"
    assert client.get_model_version(v).stage == "staging"  # nothing moved yet
    with pytest.raises(ConflictError, match="already pending"):
        client.promote(v, "production")
    with pytest.raises(PermissionDenied, match="a second person"):
        client.approve(request.id)

    monkeypatch.setenv("MLTRAIL_USER", "bob")
    with pytest.raises(PermissionDenied):
        client.approve(request.id)
    monkeypatch.setenv("MLTRAIL_USER", "dave")
    done = client.approve(request.id, reason="looks good")
    assert (done.status, done.decided_by) == ("approved", "dave")
    assert client.get_model_version(v).stage == "production"
    with pytest.raises(ConflictError, match="already approved"):
        client.approve(request.id)

    w = client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    assert w is not None
    client.promote(w, "staging")
    second = client.promote(w, "production")
    assert isinstance(second, Approval)
    monkeypatch.setenv("MLTRAIL_USER", "carol")
    rejected = client.reject(second.id, reason="not yet")
    assert rejected.status == "rejected"
    assert client.get_model_version(w).stage == "staging"
    assert [a.id for a in client.list_approvals(status=None)] == [request.id, second.id]
    assert client.list_approvals() == []
    actions = [(e.action, e.actor) for e in client.model_history("churn-xgboost")]
    assert ("approval.requested", "carol") in actions
    assert ("approval.approved", "dave") in actions
    assert ("approval.rejected", "carol") in actions
    moved = [e for e in client.model_history("churn-xgboost") if e.to_value == "production"]
    assert moved[0].actor == "dave" and moved[0].payload["requested_by"] == "carol"


def test_aliases_move_and_roll_back(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    for _ in range(3):
        client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    client.set_model_alias("churn-xgboost", "champion", 1)
    client.set_model_alias("churn-xgboost", "champion", "1.1.0")
    client.set_model_alias("churn-xgboost", "champion", 3)
    assert client.get_model_version("churn-xgboost@champion").version == 3
    assert client.get_model("churn-xgboost").aliases == {"champion": 3}
    back = client.rollback_model("churn-xgboost", alias="champion")
    assert back.version == 2 and back.aliases == ("champion",)
    for bad in ("production", "latest", "7"):
        with pytest.raises(InvalidValueError):
            client.set_model_alias("churn-xgboost", bad, 1)
    client.delete_model_alias("churn-xgboost", "champion")
    with pytest.raises(ModelNotFound):
        client.get_model_version("churn-xgboost@champion")
    actions = [e.action for e in client.model_history("churn-xgboost") if e.target == "champion"]
    assert actions == ["alias.set", "alias.moved", "alias.moved", "alias.moved", "alias.removed"]
    with pytest.raises(ConflictError, match="nothing to roll back"):
        client.rollback_model("churn-xgboost", stage="production")


def test_audit_rows_cannot_be_changed(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    client.register_model(art, "churn-xgboost", sign=False)
    store = client.store
    assert isinstance(store, SqlStore)
    public = [m for m in dir(store) if not m.startswith("_")]
    assert not [m for m in public if "event" in m and ("update" in m or "delete" in m)]
    before = client.model_history("churn-xgboost")
    for sql in ("UPDATE registry_events SET actor = 'mallory'", "DELETE FROM registry_events"):
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))
    assert client.model_history("churn-xgboost") == before


def test_signed_downloads_refuse_tampering(
    train: Train, client: mltrail.Client, tmp_path: Path
) -> None:
    _, art = train(0.9)
    v = client.register_model(art, "churn-xgboost", signature=SIG)
    assert v is not None and v.signed and v.signing_key_id
    assert client.verify_model("churn-xgboost@1").version == 1
    assert (client.download_model(v, tmp_path / "ok") / "model.bin").exists()

    # one byte of the stored weights changes: the hash check refuses it
    entry = next(e for e in client.manifest(f"churn/{art.spec}") if e.path == "model.bin")
    blob = tmp_path / "objects" / entry.oid[:2] / entry.oid[2:]
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[10] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(ObjectCorrupted):
        client.download_model(v, tmp_path / "tampered")
    assert not (tmp_path / "tampered" / "model.bin").exists()

    # the registry row is pointed at other bytes: the signature no longer matches
    _, other = train(0.5, weights="evil")
    store = client.store
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        target = conn.execute(
            text("SELECT id FROM artifact_versions WHERE digest = :d"), {"d": other.digest}
        ).scalar_one()
        conn.execute(text("UPDATE model_versions SET artifact_version_id = :t"), {"t": target})
    with pytest.raises(SignatureInvalid, match="no longer matches what was signed"):
        client.download_model(v, tmp_path / "swapped")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE model_versions SET crypto_signature = :s"), {"s": "00" * 64})
    with pytest.raises(SignatureInvalid, match="does not verify"):
        client.verify_model(v)
    _, fresh = train(0.7, weights="fresh")
    unsigned = client.register_model(fresh, "churn-xgboost", sign=False)
    assert unsigned is not None
    with pytest.raises(SignatureInvalid, match="not signed"):
        client.download_model(unsigned, tmp_path / "unsigned")
    assert client.download_model(unsigned, tmp_path / "unsigned", verify=False).is_dir()


def test_model_cards_are_generated_and_edited(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.93)
    v = client.register_model(art, "churn-xgboost", signature=SIG, description="Churn risk")
    assert v is not None
    client.set_model_alias("churn-xgboost", "champion", 1)
    card = client.model_card("churn-xgboost@champion")
    assert card.startswith("# churn-xgboost 1.0.0 (version 1)")
    assert "Churn risk" in card and "| val_accuracy | 0.93 |" in card
    assert "churn/churn-data:v0" in card and "| depth | 6 |" in card
    edited = card.replace("_Who should use this model", "Retention team only. _Who")
    client.update_model_card("churn-xgboost@1", edited, reason="intended use")
    assert client.model_card("churn-xgboost@1") == edited
    event = client.model_history("churn-xgboost")[-1]
    assert (event.action, event.payload["from"], event.payload["to"]) == (
        "card.updated", card, edited
    )  # fmt: skip


def test_retention_archives_and_deletes_only_what_is_unreferenced(
    train: Train, client: mltrail.Client
) -> None:
    kept_run, art = train(0.9)
    lone_run, _ = train(0.8)
    for _ in range(3):
        client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    client.set_model_alias("churn-xgboost", "champion", 2)
    client.promote("churn-xgboost@3", "staging")
    dry = client.apply_retention(archive_versions_older_than_days=0, delete_runs_older_than_days=0)
    assert dry.dry_run and dry.archived_versions == [("churn-xgboost", 1)]
    assert lone_run.id in dry.deleted_runs and kept_run.id not in dry.deleted_runs
    assert dry.kept_runs == 1
    assert client.get_model_version("churn-xgboost@1").stage == "development"  # dry run
    done = client.apply_retention(
        archive_versions_older_than_days=0, delete_runs_older_than_days=0, dry_run=False
    )
    assert done.deleted_runs == dry.deleted_runs
    assert client.get_model_version("churn-xgboost@1").stage == "archived"
    assert client.get_run(kept_run.id).id == kept_run.id
    with pytest.raises(Exception, match="no run"):
        client.get_run(lone_run.id)
    deleted = [e for e in client.model_history() if e.action == "runs.deleted"]
    assert deleted and lone_run.id in deleted[0].payload["run_ids"]


def test_model_specs_and_errors(train: Train, client: mltrail.Client) -> None:
    _, art = train(0.9)
    client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    assert client.get_model_version("churn-xgboost").version == 2
    assert client.get_model_version("churn-xgboost@latest").version == 2
    assert client.get_model_version("churn-xgboost@v1").version == 1
    assert client.get_model_version("churn-xgboost@1.1.0").version == 2
    with pytest.raises(ModelNotFound, match="has no version 'nope'"):
        client.get_model_version("churn-xgboost@nope")
    with pytest.raises(ModelNotFound, match="no registered model"):
        client.get_model_version("nobody-here@1")
    with pytest.raises(InvalidValueError, match="malformed"):
        client.get_model_version("churn-xgboost@")
    model = client.get_model("churn-xgboost")
    assert (model.latest_version, model.owner, model.scheme) == (2, "alice", "semver")
    assert [m.name for m in client.list_models()] == ["churn-xgboost"]


def test_input_example_gives_a_signature_payloads_are_checked(
    train: Train, client: mltrail.Client
) -> None:
    import pandas as pd

    from mltrail.errors import InputValidationError

    _, art = train(0.9)
    frame = pd.DataFrame({"tenure": [1, 24, 60], "plan": ["basic", "pro", "pro"]})
    v = client.register_model(art, "churn-xgboost", input_example=frame, sign=False)
    assert v is not None and v.signature is not None and v.valid
    assert v.input_example is not None
    assert v.metadata["signature"] == v.signature
    client.validate_input("churn-xgboost@1", frame)
    client.validate_input("churn-xgboost@1", [{"tenure": 3, "plan": "basic"}])
    with pytest.raises(InputValidationError) as info:
        client.validate_input("churn-xgboost@1", [{"tenure": "long"}])
    problems = " ".join(info.value.errors)
    assert "plan" in problems and "tenure" in problems


def test_when_gate_cannot_be_escaped_and_uploads_nothing_when_closed(
    train: Train, client: mltrail.Client, tmp_path: Path
) -> None:
    from mltrail.errors import QuerySyntaxError

    train(0.95)  # another run that would match an escaped gate
    weak_run, weak = train(0.85)
    with pytest.raises(QuerySyntaxError):
        client.register_model(
            weak, "churn-xgboost",
            when="metrics.val_accuracy > 100) or (metrics.val_accuracy > 0.9",
        )  # fmt: skip
    assert client.register_model(weak, "churn-xgboost", when="metrics.val_accuracy > 0.9") is None
    folder = tmp_path / "local-model"
    folder.mkdir()
    (folder / "w.bin").write_text("w")
    before = len(client.list_artifacts())
    gated = client.register_model(
        folder, "churn-xgboost", run_id=weak_run.id, when="metrics.val_accuracy > 0.9"
    )
    assert gated is None and len(client.list_artifacts()) == before  # nothing uploaded
    with pytest.raises(InvalidValueError, match="needs a source run"):
        client.register_model(folder, "churn-xgboost", when="metrics.val_accuracy > 0.9")
    v = client.register_model(str(folder), "churn-xgboost", run_id=weak_run.id, sign=False)
    assert v is not None and v.artifact.endswith("churn-xgboost:v0")


def test_a_local_folder_does_not_shadow_an_artifact_name(
    train: Train, client: mltrail.Client
) -> None:
    _, art = train(0.9)
    Path("churn-model").mkdir()  # an empty folder named like the artifact, in the cwd
    v = client.register_model("churn/churn-model:v0", "churn-xgboost", sign=False)
    w = client.register_model("churn-model", "churn-xgboost", project="churn", sign=False)
    assert v is not None and w is not None and v.artifact == w.artifact == f"churn/{art.spec}"


def test_each_missing_field_is_listed_once(train: Train, client: mltrail.Client) -> None:
    from mltrail.registry.metadata import validate_metadata

    assert validate_metadata({}, None) == [
        f"{k}: missing (required)"
        for k in ("model_id", "version", "created_date", "author", "framework",
                  "framework_version", "training_dataset", "metrics", "hyperparameters",
                  "signature")
    ]  # fmt: skip


def test_lineage_reaches_from_data_to_model_stage_and_back(
    train: Train, client: mltrail.Client
) -> None:
    run, art = train(0.93)
    client.register_model(art, "churn-xgboost", signature=SIG, sign=False)
    client.promote("churn-xgboost@1", "production")
    client.set_model_alias("churn-xgboost", "champion", 1)

    def walk(node: mltrail.entities.LineageNode) -> list[tuple[str, str]]:
        out = [(node.kind, node.label)]
        for child in node.children:
            out += walk(child)
        return out

    down = walk(client.lineage("churn/churn-data:v0", direction="down", depth=4))
    assert ("model", "model churn-xgboost@1 (1.0.0) [production, champion]") in down
    kinds = [k for k, _ in down]
    assert kinds.index("artifact") < kinds.index("run") < kinds.index("model")
    up = client.lineage("churn-xgboost@champion", direction="up", depth=4)
    assert up.kind == "model" and up.children[0].id == art.spec
    up_nodes = walk(up)
    assert any(label.startswith(f"run {run.name}") for _, label in up_nodes)
    assert ("artifact", "dataset churn-data:v0 [latest]") in up_nodes
