"""What the registry allows, on top of the store's atomic, audited writes.

``Registry(store, objects)`` is used by ``mltrail.Client`` (and later the server, which
passes the authenticated actor and roles). Every method that changes something checks
the policy first (roles, allowed transitions, valid metadata for protected stages,
approval by a second person), then asks the store for one transaction that also
records the change in the audit trail and queues its webhooks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.entities import Approval, ArtifactVersion, ModelVersion, RegisteredModel
from mltrail.errors import (
    ConflictError,
    InvalidValueError,
    MetadataValidationError,
    PermissionDenied,
    TransitionNotAllowed,
)
from mltrail.registry import labels as labels_mod
from mltrail.registry.policy import Actor, Policy
from mltrail.registry.webhooks import fires_webhooks
from mltrail.store.sql.registry import StageMove

if TYPE_CHECKING:
    from mltrail.objects import ObjectStore

__all__ = ["Registry", "RetentionReport", "parse_model_spec"]

POLICY_KEY = "policy"


def parse_model_spec(spec: str) -> tuple[str, int | str | None]:
    """``name``, ``name@3``, ``name@v3``, ``name@2.1.0``, ``name@champion``,
    ``name@production`` or ``name@latest`` -> ``(name, ref)``."""
    name, sep, ref = spec.partition("@")
    if not name or (sep and not ref):
        raise InvalidValueError(
            f"model reference {spec!r} is malformed",
            hint="write NAME, NAME@VERSION, NAME@LABEL, NAME@ALIAS or NAME@STAGE",
        )
    if not sep:
        return name, None
    return name, int(ref) if ref.isdecimal() else ref


@dataclass
class RetentionReport:
    dry_run: bool
    archived_versions: list[tuple[str, int]] = field(default_factory=list)
    deleted_runs: list[str] = field(default_factory=list)
    kept_runs: int = 0  # old enough, but a model version comes from them


class Registry:
    def __init__(
        self,
        store: Any,
        objects: Callable[[], ObjectStore],
        *,
        actor: str | None = None,
        roles: frozenset[str] | None = None,
    ) -> None:
        self.store = store
        self._objects = objects
        self._actor_name = actor
        self._roles = roles

    # -- policy ----------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return Policy.from_document(self.store.get_registry_setting(POLICY_KEY))

    def actor(self, policy: Policy | None = None) -> Actor:
        return (policy or self.policy).actor(self._actor_name, self._roles)

    @fires_webhooks
    def set_policy(self, document: Mapping[str, Any], *, reason: str | None = None) -> Policy:
        """Replace the policy (admins only, once anyone is admin). Audited."""
        current = self.policy
        actor = self.actor(current)
        if not current.can_edit_policy(actor):
            raise PermissionDenied(
                f"{actor.name} may not change the registry policy: it needs the admin role"
            )
        new = Policy.from_document(document)  # validates before anything is stored
        if new.roles and not any("admin" in r for r in new.roles.values()) and current.roles:
            raise InvalidValueError(
                "the new policy names nobody as admin, so nobody could change it again",
                hint='keep at least one admin under "roles"',
            )
        self.store.set_registry_setting(POLICY_KEY, dict(document), actor=actor.name, reason=reason)
        return new

    # -- models and versions ---------------------------------------------------------

    @fires_webhooks
    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        owner: str | None = None,
        scheme: str = "semver",
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        policy = self.policy
        actor = self._writer(policy, f"register the model {name!r}")
        policy.check_name(name)
        labels_mod.check_scheme(scheme)
        return self.store.create_model(  # type: ignore[no-any-return]
            name, description=description, owner=owner or actor.name, scheme=scheme,
            tags=dict(tags or {}), actor=actor.name,
        )  # fmt: skip

    def _writer(self, policy: Policy, what: str) -> Actor:
        actor = self.actor(policy)
        if not actor.has_any(("writer", "maintainer")):
            raise PermissionDenied(
                f"{actor.name} may not {what}: it needs the writer role",
                hint="ask an admin to grant a role in the registry policy",
            )
        return actor

    @fires_webhooks
    def register(
        self,
        artifact: ArtifactVersion,
        name: str,
        *,
        run: Any = None,
        run_inputs: Sequence[ArtifactVersion] = (),
        bump: str = "minor",
        label: str | None = None,
        scheme: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        input_example: Any = None,
        description: str = "",
        sign: bool = True,
        reason: str | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` (created with ``scheme`` if it does not exist yet)."""
        from mltrail.errors import ModelNotFound
        from mltrail.registry.card import render_card
        from mltrail.registry.metadata import fill_metadata, validate_metadata

        policy = self.policy
        actor = self._writer(policy, f"register a version of {name!r}")
        try:
            model = self.store.get_model(name)
        except ModelNotFound:
            model = self.create_model(name, scheme=scheme or "semver")
        if scheme is not None and scheme != model.scheme:
            raise InvalidValueError(
                f"model {name!r} labels its versions with the {model.scheme} scheme, not {scheme}"
            )
        if label is not None:
            labels_mod.validate_label(label)
        commit = None
        if run is not None:
            commit = (run.metadata.get("git") or {}).get("commit")

        def make_label(number: int, existing: Sequence[str]) -> str:
            return labels_mod.next_label(
                model.scheme, existing, bump=bump, commit=commit, explicit=label
            )

        def make_meta(number: int, text: str) -> Mapping[str, Any]:
            return fill_metadata(
                model=name, label=text, author=actor.name, given=dict(metadata or {}), run=run,
                artifact=artifact, run_inputs=list(run_inputs), signature=signature,
                description=description,
            )  # fmt: skip

        def make_card(number: int, text: str, meta: Mapping[str, Any]) -> str:
            return render_card(
                name=name, version=number, label=text, meta=meta, run=run,
                artifact=f"{artifact.project}/{artifact.spec}",
            )  # fmt: skip

        signer = None
        if sign:
            from mltrail.registry.signing import Signer

            signer = Signer()
            self.store.add_signing_key(signer.key_id, signer.public_pem, actor.name)
        return self.store.create_model_version(  # type: ignore[no-any-return]
            name, artifact_project=artifact.project, artifact_name=artifact.name,
            artifact_version=artifact.version, run_id=None if run is None else run.id,
            stage=policy.initial_stage, label=make_label, description=description,
            metadata=make_meta,
            validate=lambda meta: validate_metadata(meta, policy.metadata_schema),
            signature=signature, input_example=input_example, card=make_card,
            sign=None if signer is None else signer.sign, actor=actor.name, reason=reason,
        )  # fmt: skip

    @fires_webhooks
    def update_version(
        self,
        name: str,
        ref: int | str | None,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Change a version's description, or merge keys into its metadata (re-validated)."""
        from mltrail.registry.metadata import validate_metadata

        policy = self.policy
        actor = self._writer(policy, f"change {name}")
        version = self.store.get_model_version(name, ref)
        merged = problems = None
        if metadata is not None:
            merged = {**version.metadata, **dict(metadata)}
            problems = validate_metadata(merged, policy.metadata_schema)
            if problems and policy.rule("stage", version.stage) is not None:
                raise MetadataValidationError(
                    f"{name} version {version.version} is in the protected stage "
                    f"{version.stage!r}; its metadata must stay valid:",
                    problems,
                )
        return self.store.update_model_version(  # type: ignore[no-any-return]
            name, version.version, description=description, metadata=merged,
            validation_errors=problems, actor=actor.name, reason=reason,
        )  # fmt: skip

    def validate(self, name: str, ref: int | str | None = None) -> list[str]:
        """The version's metadata problems under the current policy's schema."""
        from mltrail.registry.metadata import validate_metadata

        version = self.store.get_model_version(name, ref)
        return validate_metadata(version.metadata, self.policy.metadata_schema)

    # -- stages ----------------------------------------------------------------------

    @fires_webhooks
    def promote(
        self,
        name: str,
        ref: int | str | None,
        stage: str,
        *,
        archive_existing: bool | None = None,
        reason: str | None = None,
    ) -> ModelVersion | Approval:
        """Move a version to ``stage``. Returns the version, or the pending
        :class:`Approval` when the stage needs a second person's approval."""
        policy = self.policy
        policy.check_stage(stage)
        actor = self._writer(policy, f"move {name} to {stage!r}")
        version: ModelVersion = self.store.get_model_version(name, ref)
        if version.stage == stage:
            return version
        rule = self._check_move(policy, actor, version, stage)
        if rule is not None and rule.approval:
            return self.store.create_approval(  # type: ignore[no-any-return]
                name, version.version, "stage", stage, actor=actor.name, reason=reason
            )
        moves = self._stage_moves(policy, name, version, stage, archive_existing)
        self.store.move_stages(
            name, moves, actor=actor.name, reason=reason, payload={"cause": "promote"}
        )
        return self.store.get_model_version(name, version.version)  # type: ignore[no-any-return]

    def _check_move(self, policy: Policy, actor: Actor, version: ModelVersion, stage: str) -> Any:
        if not policy.allows(version.stage, stage):
            allowed = (policy.transitions or {}).get(version.stage, ())
            raise TransitionNotAllowed(
                f"{version.model} version {version.version} is in {version.stage!r}; this "
                f"registry does not allow moving it to {stage!r}",
                hint=f"from {version.stage!r} it may go to: {', '.join(allowed) or 'nowhere'}",
            )
        rule = policy.require(actor, "stage", stage, f"move {version.model} to {stage!r}")
        if rule is not None:
            self._require_valid(policy, version, f"stage {stage!r}")
        return rule

    def _require_valid(self, policy: Policy, version: ModelVersion, where: str) -> None:
        from mltrail.registry.metadata import validate_metadata

        problems = validate_metadata(version.metadata, policy.metadata_schema)
        if problems:
            raise MetadataValidationError(
                f"{version.model} version {version.version} cannot go to the protected "
                f"{where}: its metadata fails the registry schema",
                problems,
                hint=f"fix it with Client.update_model_version({version.model!r}, "
                f"{version.version}, metadata={{...}})",
            )

    def _stage_moves(
        self,
        policy: Policy,
        name: str,
        version: ModelVersion,
        stage: str,
        archive_existing: bool | None,
    ) -> list[StageMove]:
        moves = [StageMove(version.version, version.stage, stage)]
        if archive_existing is None:
            archive_existing = stage in policy.exclusive_stages
        if archive_existing and stage != policy.archive_stage:
            for other in self.store.model_versions(name, stage=stage):
                if other.version != version.version:
                    moves.append(StageMove(other.version, stage, policy.archive_stage))
        return moves

    @fires_webhooks
    def rollback(
        self,
        name: str,
        *,
        stage: str | None = None,
        alias: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Give ``stage`` (or ``alias``) back to the version that held it before."""
        if (stage is None) == (alias is None):
            raise InvalidValueError("rollback needs exactly one of stage= or alias=")
        policy = self.policy
        actor = self._writer(policy, f"roll back {name}")
        why = reason or "rollback"
        if alias is not None:
            policy.require(actor, "alias", alias, f"move the alias {alias!r} of {name}")
            events = [
                e for e in self.store.registry_events(name)
                if e.target == alias and e.action.startswith("alias.")
            ]  # fmt: skip
            if not events or events[-1].from_value is None:
                raise ConflictError(
                    f"alias {alias!r} of {name} has no earlier version to go back to"
                )
            last = events[-1]
            back = int(last.from_value)
            current = None if last.to_value is None else int(last.to_value)
            self.store.move_model_alias(
                name, alias, back, expected=current, actor=actor.name, reason=why,
                payload={"cause": "rollback"},
            )  # fmt: skip
            return self.store.get_model_version(name, back)  # type: ignore[no-any-return]
        assert stage is not None
        policy.check_stage(stage)
        policy.require(actor, "stage", stage, f"move {name} to {stage!r}")
        holders = {v.version: v for v in self.store.model_versions(name, stage=stage)}
        if not holders:
            raise ConflictError(f"no version of {name} is in {stage!r}: nothing to roll back")
        entries = [
            int(e.version) for e in self.store.registry_events(name)
            if e.action == "stage.changed" and e.to_value == stage and e.version is not None
        ]  # fmt: skip
        previous = None
        seen_current = False
        for number in reversed(entries):
            if number in holders:
                seen_current = True
            elif seen_current:
                previous = number
                break
        if previous is None:
            raise ConflictError(f"{name} has no earlier version that held {stage!r} to go back to")
        target = self.store.get_model_version(name, previous)
        if policy.rule("stage", stage) is not None:
            self._require_valid(policy, target, f"stage {stage!r}")
        moves = [StageMove(v, stage, policy.archive_stage) for v in sorted(holders)]
        moves.append(StageMove(previous, target.stage, stage))
        self.store.move_stages(
            name, moves, actor=actor.name, reason=why, payload={"cause": "rollback"}
        )
        return self.store.get_model_version(name, previous)  # type: ignore[no-any-return]

    # -- aliases ---------------------------------------------------------------------

    @fires_webhooks
    def set_alias(
        self, name: str, alias: str, ref: int | str | None, *, reason: str | None = None
    ) -> ModelVersion | Approval | None:
        """Point ``alias`` at a version (``ref=None`` removes it). Returns the version,
        the pending :class:`Approval` for a protected alias that needs one, or None."""
        from mltrail.artifacts.names import validate_name

        policy = self.policy
        validate_name(alias, "alias")
        if alias in policy.stages or alias == "latest" or alias.isdecimal():
            raise InvalidValueError(
                f"{alias!r} cannot be an alias: it names a stage, a version or 'latest'"
            )
        actor = self._writer(policy, f"move the alias {alias!r} of {name}")
        rule = policy.require(actor, "alias", alias, f"move the alias {alias!r} of {name}")
        if ref is None:
            self.store.move_model_alias(name, alias, None, actor=actor.name, reason=reason)
            return None
        version = self.store.get_model_version(name, ref)
        if rule is not None:
            self._require_valid(policy, version, f"alias {alias!r}")
            if rule.approval:
                return self.store.create_approval(  # type: ignore[no-any-return]
                    name, version.version, "alias", alias, actor=actor.name, reason=reason
                )
        self.store.move_model_alias(name, alias, version.version, actor=actor.name, reason=reason)
        return self.store.get_model_version(name, version.version)  # type: ignore[no-any-return]

    # -- approvals -------------------------------------------------------------------

    @fires_webhooks
    def decide(self, approval_id: int, approve: bool, *, reason: str | None = None) -> Approval:
        """Approve (and carry out) or reject a pending request. The requester may not
        approve their own request; the approver needs the protecting rule's roles."""
        policy = self.policy
        actor = self.actor(policy)
        request = self.store.get_approval(approval_id)
        if request.status != "pending":
            raise ConflictError(f"approval #{approval_id} is already {request.status}")
        if not approve:
            if actor.name != request.requested_by:
                policy.require(actor, request.kind, request.target, "reject this request")
            return self.store.decide_approval(  # type: ignore[no-any-return]
                approval_id, "rejected", actor=actor.name, reason=reason
            )
        if actor.name == request.requested_by:
            raise PermissionDenied(
                f"{actor.name} requested approval #{approval_id} and may not approve it: "
                "a second person must",
            )
        what = f"approve moving {request.model} to {request.kind} {request.target!r}"
        policy.require(actor, request.kind, request.target, what)
        version = self.store.get_model_version(request.model, request.version)
        store = self.store
        if request.kind == "stage":
            self._check_move(policy, actor, version, request.target)
            moves = self._stage_moves(policy, request.model, version, request.target, None)

            def then(conn: Any, model: Any) -> None:
                store.apply_stage_moves(
                    conn, model, moves, action="stage.changed", actor=actor.name,
                    reason=request.reason,
                    payload={"cause": "approval", "approval_id": approval_id,
                             "requested_by": request.requested_by},
                )  # fmt: skip
        else:
            self._require_valid(policy, version, f"alias {request.target!r}")

            def then(conn: Any, model: Any) -> None:
                store.apply_alias_move(
                    conn, model, request.target, version.version, actor=actor.name,
                    reason=request.reason,
                    payload={"cause": "approval", "approval_id": approval_id,
                             "requested_by": request.requested_by},
                )  # fmt: skip

        return self.store.decide_approval(  # type: ignore[no-any-return]
            approval_id, "approved", actor=actor.name, reason=reason, then=then
        )

    # -- cards, signatures, downloads ------------------------------------------------

    @fires_webhooks
    def update_card(
        self, name: str, ref: int | str | None, text: str, *, reason: str | None = None
    ) -> ModelVersion:
        actor = self._writer(self.policy, f"edit the card of {name}")
        version = self.store.get_model_version(name, ref)
        return self.store.update_model_version(  # type: ignore[no-any-return]
            name, version.version, card=text, actor=actor.name, reason=reason
        )

    def verify(self, name: str, ref: int | str | None = None) -> ModelVersion:
        """Check a version's Ed25519 signature and that it still names the same bytes."""
        import json

        from mltrail.errors import SignatureInvalid
        from mltrail.registry.signing import verify

        version: ModelVersion = self.store.get_model_version(name, ref)
        payload, signature, key_id = self.store.signed_payload(name, version.version)
        what = f"{name} version {version.version}"
        public = None if key_id is None else self.store.signing_key(key_id)
        verify(public, payload, signature, what)
        signed = json.loads(payload)
        expected = {
            "model": name, "version": version.version, "label": version.label,
            "artifact": version.artifact, "digest": version.artifact_digest,
        }  # fmt: skip
        changed = sorted(k for k in expected if signed.get(k) != expected[k])
        if changed:
            raise SignatureInvalid(
                f"{what} no longer matches what was signed ({', '.join(changed)} changed)",
                hint="do not deploy it; see `mltrail models history` for what changed",
            )
        return version

    def download(
        self,
        name: str,
        ref: int | str | None,
        root: str | os.PathLike[str] | None = None,
        *,
        verify: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """The version's files (verified: signature, manifest hash, every file's hash)."""
        from mltrail.artifacts.ops import download

        version = self.verify(name, ref) if verify else self.store.get_model_version(name, ref)
        project, _, spec = version.artifact.partition("/")
        art_name, _, number = spec.rpartition(":v")
        artifact = self.store.get_artifact_version(project, art_name, int(number))
        if artifact.digest != version.artifact_digest:  # pragma: no cover - checked above
            raise InvalidValueError("artifact digest changed under the model version")
        return download(self._objects(), artifact, root, progress)

    # -- retention -------------------------------------------------------------------

    @fires_webhooks
    def retention(
        self,
        *,
        archive_versions_older_than_days: float | None = None,
        delete_runs_older_than_days: float | None = None,
        dry_run: bool = True,
    ) -> RetentionReport:
        """Archive old versions that hold no alias or stage; delete old finished runs no
        model version comes from. A dry run (the default) only reports."""
        policy = self.policy
        actor = self._writer(policy, "apply retention")
        report = RetentionReport(dry_run=dry_run)
        now = time.time()
        if archive_versions_older_than_days is not None:
            cutoff = now - archive_versions_older_than_days * 86400
            for model in self.store.list_models():
                for v in self.store.model_versions(model.name, stage=policy.initial_stage):
                    if v.created_at < cutoff and not v.aliases:
                        report.archived_versions.append((model.name, v.version))
            if not dry_run:
                for model_name, number in report.archived_versions:
                    move = StageMove(number, policy.initial_stage, policy.archive_stage)
                    self.store.move_stages(
                        model_name, [move], actor=actor.name,
                        reason=f"retention: older than {archive_versions_older_than_days} days",
                        payload={"cause": "retention"},
                    )  # fmt: skip
        if delete_runs_older_than_days is not None:
            if not actor.has_any(("maintainer",)):
                raise PermissionDenied(f"{actor.name} may not delete runs: it needs maintainer")
            cutoff = now - delete_runs_older_than_days * 86400
            keep = self.store.model_versions_of_runs()
            for run_id in self.store.runs_created_before(cutoff):
                if run_id in keep:
                    report.kept_runs += 1
                else:
                    report.deleted_runs.append(run_id)
            if not dry_run and report.deleted_runs:
                self.store.delete_runs(
                    report.deleted_runs, actor=actor.name,
                    reason=f"retention: older than {delete_runs_older_than_days} days",
                )  # fmt: skip
        return report
