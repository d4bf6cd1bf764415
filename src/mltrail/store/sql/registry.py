"""Model registry metadata in SQL.

The store does each change atomically and records it: every write inserts its audit
rows (``registry_events``, append-only, enforced by triggers) and queues the webhook
deliveries for them in the same transaction. Policy (who may do what, which stage
moves are allowed, metadata validation) is decided above, in ``mltrail.registry``;
the store only checks what must hold at commit time (the version is still where the
caller saw it), so two concurrent writers cannot both win.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail.entities import Approval, ModelVersion, RegisteredModel, RegistryEvent
from mltrail.errors import (
    AlreadyExists,
    ApprovalNotFound,
    ConflictError,
    InvalidValueError,
    ModelNotFound,
    StoreError,
)
from mltrail.store.sql import schema as s

__all__ = ["RegistryStoreMixin", "StageMove"]

_M = s.registered_models.c
_V = s.model_versions.c
_L = s.model_aliases.c
_E = s.registry_events.c
_P = s.approvals.c


_UNSET = object()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, allow_nan=True)


class StageMove:
    """One version's stage change inside a transition (``expected`` is checked at commit)."""

    __slots__ = ("expected", "stage", "version")

    def __init__(self, version: int, expected: str, stage: str) -> None:
        self.version = version
        self.expected = expected
        self.stage = stage


class RegistryStoreMixin:
    """Registry methods of :class:`~mltrail.store.sql.store.SqlStore`."""

    # provided by SqlStore / the artifact and webhook mixins
    _write: Any
    _read: Any
    _artifact_row: Any
    _resolve: Any

    # -- events -----------------------------------------------------------------------

    def _record_event(
        self,
        conn: Connection,
        model_id: int | None,
        action: str,
        *,
        version: int | None = None,
        target: str | None = None,
        from_value: Any = None,
        to_value: Any = None,
        actor: str | None = None,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> int:
        event_id = int(
            conn.execute(
                insert(s.registry_events)
                .values(
                    model_id=model_id,
                    version=version,
                    action=action,
                    target=target,
                    from_value=None if from_value is None else str(from_value),
                    to_value=None if to_value is None else str(to_value),
                    actor=actor,
                    reason=reason,
                    payload_json=_dumps(dict(payload or {})),
                    at=time.time(),
                )
                .returning(_E.id)
            ).scalar_one()
        )
        self._enqueue_webhooks(conn, event_id, model_id, action)
        return event_id

    def _enqueue_webhooks(
        self, conn: Connection, event_id: int, model_id: int | None, action: str
    ) -> None:
        """Queue one delivery per active webhook that wants this event (the outbox)."""
        w = s.webhooks.c
        now = time.time()
        rows = conn.execute(select(w.id, w.events_json, w.model_id).where(w.active.is_(True))).all()
        deliveries = [
            {
                "webhook_id": r.id,
                "event_id": event_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for r in rows
            if (r.model_id is None or r.model_id == model_id)
            and _wants(json.loads(r.events_json), action)
        ]
        if deliveries:
            conn.execute(insert(s.webhook_deliveries), deliveries)

    def registry_events(
        self,
        model: str | None = None,
        *,
        after_id: int = 0,
        limit: int | None = None,
    ) -> list[RegistryEvent]:
        """The audit trail, oldest first (one model's, or the whole registry's)."""
        q = (
            select(s.registry_events, _M.name.label("model_name"))
            .outerjoin(s.registered_models, _M.id == _E.model_id)
            .where(_E.id > after_id)
            .order_by(_E.id)
        )
        with self._read() as conn:
            if model is not None:
                q = q.where(_E.model_id == self._model_row(conn, model).id)
            if limit is not None:
                q = q.limit(limit)
            return [_event(r) for r in conn.execute(q).all()]

    def get_registry_event(self, event_id: int) -> RegistryEvent:
        q = (
            select(s.registry_events, _M.name.label("model_name"))
            .outerjoin(s.registered_models, _M.id == _E.model_id)
            .where(_E.id == event_id)
        )
        with self._read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise ModelNotFound(f"no registry event {event_id}")
        return _event(row)

    # -- settings ---------------------------------------------------------------------

    def get_registry_setting(self, key: str) -> Any:
        c = s.registry_settings.c
        with self._read() as conn:
            row = conn.execute(select(c.value_json).where(c.key == key)).first()
        return None if row is None else json.loads(row[0])

    def set_registry_setting(
        self, key: str, value: Any, *, actor: str | None, reason: str | None = None
    ) -> None:
        c = s.registry_settings.c
        text = _dumps(value)
        with self._write() as conn:
            old = conn.execute(select(c.value_json).where(c.key == key)).first()
            if old is not None and old[0] == text:
                return
            conn.execute(delete(s.registry_settings).where(c.key == key))
            conn.execute(
                insert(s.registry_settings).values(
                    key=key, value_json=text, updated_by=actor, updated_at=time.time()
                )
            )
            self._record_event(
                conn, None, "settings.changed", target=key, actor=actor, reason=reason,
                payload={"from": None if old is None else json.loads(old[0]), "to": value},
            )  # fmt: skip

    # -- models -----------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(s.registered_models).where(_M.name == name)).first()
        if row is None:
            raise ModelNotFound(
                f"no registered model named {name!r}",
                hint="see the models with: mltrail models ls",
            )
        return row

    def _model(self, conn: Connection, row: Any) -> RegisteredModel:
        aliases = {
            r.alias: int(r.version)
            for r in conn.execute(
                select(_L.alias, _L.version).where(_L.model_id == row.id).order_by(_L.alias)
            )
        }
        latest = conn.execute(
            select(func.max(_V.version)).where(_V.model_id == row.id)
        ).scalar_one()
        return RegisteredModel(
            name=row.name, description=row.description, owner=row.owner, scheme=row.scheme,
            tags=json.loads(row.tags_json), aliases=aliases,
            latest_version=None if latest is None else int(latest),
            created_at=float(row.created_at), updated_at=float(row.updated_at),
        )  # fmt: skip

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        owner: str | None = None,
        scheme: str = "semver",
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        now = time.time()
        try:
            with self._write() as conn:
                model_id = conn.execute(
                    insert(s.registered_models)
                    .values(
                        name=name,
                        description=description,
                        owner=owner,
                        scheme=scheme,
                        tags_json=_dumps(dict(tags or {})),
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(_M.id)
                ).scalar_one()
                self._record_event(
                    conn, int(model_id), "model.created", to_value=name, actor=actor,
                    payload={"scheme": scheme, "owner": owner, "description": description},
                )  # fmt: skip
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            if not exist_ok:
                raise AlreadyExists(
                    f"a model named {name!r} is already registered",
                    hint="register a new version of it, or choose another name",
                ) from None
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            return self._model(conn, self._model_row(conn, name))

    def list_models(self) -> list[RegisteredModel]:
        with self._read() as conn:
            rows = conn.execute(select(s.registered_models).order_by(_M.name)).all()
            return [self._model(conn, r) for r in rows]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        with self._write() as conn:
            row = self._model_row(conn, name)
            changes: dict[str, Any] = {}
            for field, new, old in (
                ("description", description, row.description),
                ("owner", owner, row.owner),
                ("tags_json", None if tags is None else _dumps(dict(tags)), row.tags_json),
            ):
                if new is not None and new != old:
                    changes[field] = new
                    self._record_event(
                        conn, row.id, "model.updated", target=field.removesuffix("_json"),
                        from_value=old, to_value=new, actor=actor, reason=reason,
                    )  # fmt: skip
            if changes:
                conn.execute(
                    update(s.registered_models)
                    .where(_M.id == row.id)
                    .values(**changes, updated_at=time.time())
                )
        return self.get_model(name)

    # -- versions ---------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        *,
        artifact_project: str,
        artifact_name: str,
        artifact_version: int,
        run_id: str | None,
        stage: str,
        label: Callable[[int, Sequence[str]], str],
        description: str = "",
        metadata: Callable[[int, str], Mapping[str, Any]],
        validate: Callable[[Mapping[str, Any]], Sequence[str]],
        signature: Mapping[str, Any] | None = None,
        input_example: Any = None,
        card: Callable[[int, str, Mapping[str, Any]], str] | None = None,
        sign: Callable[[Mapping[str, Any]], tuple[str, str, str]] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Add the next numbered version of ``name``.

        ``label(number, existing_labels)`` gives the scheme label, ``metadata(number,
        label)`` the version's metadata, ``validate(metadata)`` the schema's complaints,
        ``card(...)`` the model card, ``sign(payload)`` ``(canonical_payload, signature,
        key_id)``: called inside the transaction, so numbers and labels never collide.
        """
        for attempt in range(3):
            try:
                with self._write() as conn:
                    model = self._model_row(conn, name)
                    art = self._artifact_row(conn, artifact_project, artifact_name)
                    art_row = self._resolve(conn, art, artifact_version)
                    top = conn.execute(
                        select(func.max(_V.version)).where(_V.model_id == model.id)
                    ).scalar_one()
                    number = 1 if top is None else int(top) + 1
                    labels = [
                        r[0]
                        for r in conn.execute(
                            select(_V.label).where(_V.model_id == model.id).order_by(_V.version)
                        )
                    ]
                    text = label(number, labels)
                    meta = dict(metadata(number, text))
                    problems = list(validate(meta))
                    signed = None
                    if sign is not None:
                        signed = sign(
                            {
                                "model": name, "version": number, "label": text,
                                "artifact": f"{art.project_name}/{art.name}:v{art_row.version}",
                                "digest": art_row.digest,
                            }
                        )  # fmt: skip
                    conn.execute(
                        insert(s.model_versions).values(
                            model_id=model.id,
                            version=number,
                            label=text,
                            artifact_version_id=art_row.id,
                            run_id=run_id,
                            stage=stage,
                            description=description,
                            metadata_json=_dumps(meta),
                            validation_json=_dumps(problems),
                            signature_json=None if signature is None else _dumps(signature),
                            input_example_json=(
                                None if input_example is None else _dumps(input_example)
                            ),
                            card=None if card is None else card(number, text, meta),
                            signed_payload=None if signed is None else signed[0],
                            crypto_signature=None if signed is None else signed[1],
                            signing_key_id=None if signed is None else signed[2],
                            created_by=actor,
                            created_at=time.time(),
                        )
                    )
                    conn.execute(
                        update(s.registered_models)
                        .where(_M.id == model.id)
                        .values(updated_at=time.time())
                    )
                    self._record_event(
                        conn, model.id, "version.created", version=number, to_value=text,
                        actor=actor, reason=reason,
                        payload={
                            "label": text, "stage": stage, "run_id": run_id,
                            "artifact": f"{art.project_name}/{art.name}:v{art_row.version}",
                            "valid": not problems,
                        },
                    )  # fmt: skip
                return self.get_model_version(name, number)
            except StoreError as exc:  # two writers took the same number: take the next
                if attempt == 2 or not isinstance(exc.__cause__, IntegrityError):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _version_row(self, conn: Connection, model: Any, version: int) -> Any:
        row = conn.execute(
            select(s.model_versions).where((_V.model_id == model.id) & (_V.version == version))
        ).first()
        if row is None:
            raise ModelNotFound(
                f"model {model.name!r} has no version {version}",
                hint=f"see its versions with: mltrail models versions {model.name}",
            )
        return row

    def _model_version(self, conn: Connection, model: Any, row: Any) -> ModelVersion:
        aliases = tuple(
            r[0]
            for r in conn.execute(
                select(_L.alias)
                .where((_L.model_id == model.id) & (_L.version == row.version))
                .order_by(_L.alias)
            )
        )
        av = s.artifact_versions.c
        art = conn.execute(
            select(av.version, av.digest, s.artifacts.c.name, s.projects.c.name.label("project"))
            .join(s.artifacts, s.artifacts.c.id == av.artifact_id)
            .join(s.projects, s.projects.c.id == s.artifacts.c.project_id)
            .where(av.id == row.artifact_version_id)
        ).one()
        return ModelVersion(
            model=model.name, version=int(row.version), label=row.label, stage=row.stage,
            aliases=aliases, artifact=f"{art.project}/{art.name}:v{art.version}",
            artifact_digest=art.digest, run_id=row.run_id, description=row.description,
            metadata=json.loads(row.metadata_json),
            validation_errors=tuple(json.loads(row.validation_json)),
            signature=None if row.signature_json is None else json.loads(row.signature_json),
            input_example=(
                None if row.input_example_json is None else json.loads(row.input_example_json)
            ),
            signed=row.crypto_signature is not None, signing_key_id=row.signing_key_id,
            created_by=row.created_by, created_at=float(row.created_at),
        )  # fmt: skip

    def resolve_model_version(self, conn: Connection, model: Any, ref: int | str | None) -> Any:
        """A version row from a number, ``vN``, a label, an alias, a stage or ``latest``."""
        q = select(s.model_versions).where(_V.model_id == model.id)
        if ref is None or ref == "latest":
            row = conn.execute(q.order_by(_V.version.desc()).limit(1)).first()
        elif isinstance(ref, int):
            row = conn.execute(q.where(_V.version == ref)).first()
        else:
            row = conn.execute(q.where(_V.label == ref)).first()
            if row is None:
                alias = conn.execute(
                    select(_L.version).where((_L.model_id == model.id) & (_L.alias == ref))
                ).first()
                if alias is not None:
                    row = conn.execute(q.where(_V.version == alias[0])).first()
            if row is None:
                row = conn.execute(
                    q.where(_V.stage == ref).order_by(_V.version.desc()).limit(1)
                ).first()
            digits = ref[1:] if ref[:1] in "vV" else ref
            if row is None and digits.isdecimal():
                row = conn.execute(q.where(_V.version == int(digits))).first()
        if row is None:
            raise ModelNotFound(
                f"model {model.name!r} has no version {ref!r} (number, label, alias or stage)",
                hint=f"see its versions with: mltrail models versions {model.name}",
            )
        return row

    def get_model_version(self, name: str, ref: int | str | None = None) -> ModelVersion:
        with self._read() as conn:
            model = self._model_row(conn, name)
            return self._model_version(conn, model, self.resolve_model_version(conn, model, ref))

    def model_versions(self, name: str, *, stage: str | None = None) -> list[ModelVersion]:
        with self._read() as conn:
            model = self._model_row(conn, name)
            q = select(s.model_versions).where(_V.model_id == model.id).order_by(_V.version)
            if stage is not None:
                q = q.where(_V.stage == stage)
            return [self._model_version(conn, model, r) for r in conn.execute(q).all()]

    def models_of_artifact(self, project: str, name: str, version: int) -> list[ModelVersion]:
        """Model versions registered from an artifact version (lineage: artifact -> model)."""
        with self._read() as conn:
            art = self._artifact_row(conn, project, name)
            row = self._resolve(conn, art, version)
            q = (
                select(s.model_versions, _M.name.label("model_name"))
                .join(s.registered_models, _M.id == _V.model_id)
                .where(_V.artifact_version_id == row.id)
                .order_by(_M.name, _V.version)
            )
            out = []
            for r in conn.execute(q).all():
                model = conn.execute(select(s.registered_models).where(_M.id == r.model_id)).one()
                out.append(self._model_version(conn, model, r))
            return out

    def signed_payload(self, name: str, version: int) -> tuple[str | None, str | None, str | None]:
        """``(payload, signature hex, key id)`` of a version (None when unsigned)."""
        with self._read() as conn:
            row = self._version_row(conn, self._model_row(conn, name), version)
        return row.signed_payload, row.crypto_signature, row.signing_key_id

    def model_versions_of_runs(self) -> set[str]:
        """Run ids any model version comes from (retention keeps them)."""
        with self._read() as conn:
            return {r[0] for r in conn.execute(select(_V.run_id).where(_V.run_id.is_not(None)))}

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        validation_errors: Sequence[str] | None = None,
        card: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        with self._write() as conn:
            model = self._model_row(conn, name)
            row = self._version_row(conn, model, version)
            changes: dict[str, Any] = {}
            if description is not None and description != row.description:
                changes["description"] = description
                self._record_event(
                    conn, model.id, "version.updated", version=version, target="description",
                    from_value=row.description, to_value=description, actor=actor, reason=reason,
                )  # fmt: skip
            if metadata is not None:
                text = _dumps(dict(metadata))
                if text != row.metadata_json:
                    changes["metadata_json"] = text
                    changes["validation_json"] = _dumps(list(validation_errors or ()))
                    self._record_event(
                        conn, model.id, "metadata.updated", version=version, target="metadata",
                        actor=actor, reason=reason,
                        payload={"from": json.loads(row.metadata_json), "to": dict(metadata)},
                    )  # fmt: skip
            if card is not None and card != row.card:
                changes["card"] = card
                self._record_event(
                    conn, model.id, "card.updated", version=version, target="card",
                    actor=actor, reason=reason, payload={"from": row.card, "to": card},
                )  # fmt: skip
            if changes:
                conn.execute(update(s.model_versions).where(_V.id == row.id).values(**changes))
                conn.execute(
                    update(s.registered_models)
                    .where(_M.id == model.id)
                    .values(updated_at=time.time())
                )
            return self._model_version(conn, model, self._version_row(conn, model, version))

    def model_card(self, name: str, ref: int | str | None = None) -> tuple[int, str | None]:
        with self._read() as conn:
            model = self._model_row(conn, name)
            row = self.resolve_model_version(conn, model, ref)
            return int(row.version), row.card

    # -- stages and aliases ----------------------------------------------------------

    def move_stages(
        self,
        name: str,
        moves: Sequence[StageMove],
        *,
        action: str = "stage.changed",
        actor: str | None = None,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Apply stage changes atomically; each must find its version in ``expected``.

        Returns the event ids. A version that moved since the caller looked is a
        :class:`ConflictError` and nothing changes.
        """
        with self._write() as conn:
            model = self._model_row(conn, name)
            return self.apply_stage_moves(
                conn, model, moves, action=action, actor=actor, reason=reason, payload=payload
            )

    def apply_stage_moves(
        self,
        conn: Connection,
        model: Any,
        moves: Sequence[StageMove],
        *,
        action: str,
        actor: str | None,
        reason: str | None,
        payload: Mapping[str, Any] | None = None,
    ) -> list[int]:
        events = []
        for move in moves:
            done = conn.execute(
                update(s.model_versions)
                .where(
                    and_(
                        _V.model_id == model.id,
                        _V.version == move.version,
                        _V.stage == move.expected,
                    )
                )
                .values(stage=move.stage)
            )
            if done.rowcount != 1:
                raise ConflictError(
                    f"{model.name} version {move.version} is no longer in stage "
                    f"{move.expected!r}: someone changed it meanwhile",
                    hint="look again (mltrail models versions) and retry",
                )
            events.append(
                self._record_event(
                    conn,
                    model.id,
                    action,
                    version=move.version,
                    target="stage",
                    from_value=move.expected,
                    to_value=move.stage,
                    actor=actor,
                    reason=reason,
                    payload=payload,
                )
            )
        conn.execute(
            update(s.registered_models).where(_M.id == model.id).values(updated_at=time.time())
        )
        return events

    def move_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        expected: object = _UNSET,
        action: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Point ``alias`` at ``version`` (None removes it). Returns the event id (None: no-op).

        With ``expected``, the alias must still point there (else :class:`ConflictError`).
        """
        with self._write() as conn:
            model = self._model_row(conn, name)
            return self.apply_alias_move(
                conn, model, alias, version, expected=expected, action=action, actor=actor,
                reason=reason, payload=payload,
            )  # fmt: skip

    def apply_alias_move(
        self,
        conn: Connection,
        model: Any,
        alias: str,
        version: int | None,
        *,
        expected: object = _UNSET,
        action: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> int | None:
        if version is not None:
            self._version_row(conn, model, version)
        key = (_L.model_id == model.id) & (_L.alias == alias)
        row = conn.execute(select(_L.version).where(key)).first()
        old = None if row is None else int(row.version)
        if expected is not _UNSET and expected != old:
            raise ConflictError(
                f"alias {alias!r} of {model.name} moved meanwhile (now {old})",
                hint="look again (mltrail models show) and retry",
            )
        if old == version:
            return None
        conn.execute(delete(s.model_aliases).where(key))
        if version is not None:
            conn.execute(
                insert(s.model_aliases).values(model_id=model.id, alias=alias, version=version)
            )
        conn.execute(
            update(s.registered_models).where(_M.id == model.id).values(updated_at=time.time())
        )
        if action is None:
            action = (
                "alias.removed" if version is None
                else "alias.set" if old is None else "alias.moved"
            )  # fmt: skip
        return self._record_event(
            conn, model.id, action, version=version if version is not None else old,
            target=alias, from_value=old, to_value=version, actor=actor, reason=reason,
            payload=payload,
        )  # fmt: skip

    # -- approvals --------------------------------------------------------------------

    def create_approval(
        self,
        name: str,
        version: int,
        kind: str,
        target: str,
        *,
        actor: str | None,
        reason: str | None,
    ) -> Approval:
        with self._write() as conn:
            model = self._model_row(conn, name)
            self._version_row(conn, model, version)
            pending = conn.execute(
                select(_P.id).where(
                    (_P.model_id == model.id)
                    & (_P.version == version)
                    & (_P.kind == kind)
                    & (_P.target == target)
                    & (_P.status == "pending")
                )
            ).first()
            if pending is not None:
                raise ConflictError(
                    f"approval #{pending[0]} for {name} version {version} -> {target} is "
                    "already pending",
                    hint=f"approve or reject it: mltrail models approve {pending[0]}",
                )
            approval_id = conn.execute(
                insert(s.approvals)
                .values(
                    model_id=model.id,
                    version=version,
                    kind=kind,
                    target=target,
                    status="pending",
                    requested_by=actor,
                    requested_at=time.time(),
                    reason=reason,
                )
                .returning(_P.id)
            ).scalar_one()
            self._record_event(
                conn, model.id, "approval.requested", version=version, target=target,
                to_value=kind, actor=actor, reason=reason,
                payload={"approval_id": int(approval_id), "kind": kind},
            )  # fmt: skip
        return self.get_approval(int(approval_id))

    def get_approval(self, approval_id: int) -> Approval:
        with self._read() as conn:
            row = conn.execute(
                select(s.approvals, _M.name.label("model_name"))
                .join(s.registered_models, _M.id == _P.model_id)
                .where(_P.id == approval_id)
            ).first()
        if row is None:
            raise ApprovalNotFound(
                f"no approval request #{approval_id}",
                hint="see the pending ones with: mltrail models approvals",
            )
        return _approval(row)

    def list_approvals(
        self, name: str | None = None, *, status: str | None = None
    ) -> list[Approval]:
        q = (
            select(s.approvals, _M.name.label("model_name"))
            .join(s.registered_models, _M.id == _P.model_id)
            .order_by(_P.id)
        )
        if name is not None:
            q = q.where(_M.name == name)
        if status is not None:
            q = q.where(_P.status == status)
        with self._read() as conn:
            return [_approval(r) for r in conn.execute(q).all()]

    def decide_approval(
        self,
        approval_id: int,
        status: str,
        *,
        actor: str | None,
        reason: str | None,
        then: Callable[[Connection, Any], None] | None = None,
    ) -> Approval:
        """Close a pending request as ``approved``/``rejected``/``cancelled``.

        ``then(conn, model_row)`` runs in the same transaction (the approved transition).
        """
        if status not in ("approved", "rejected", "cancelled"):
            raise InvalidValueError(
                f"an approval is decided as approved or rejected, not {status!r}"
            )
        with self._write() as conn:
            done = conn.execute(
                update(s.approvals)
                .where((_P.id == approval_id) & (_P.status == "pending"))
                .values(
                    status=status,
                    decided_by=actor,
                    decided_at=time.time(),
                    decision_reason=reason,
                )
            )
            row = conn.execute(select(s.approvals).where(_P.id == approval_id)).first()
            if row is None:
                raise ApprovalNotFound(f"no approval request #{approval_id}")
            if done.rowcount != 1:
                raise ConflictError(
                    f"approval #{approval_id} is already {row.status}",
                    hint="a decided request cannot change; file a new one",
                )
            model = conn.execute(select(s.registered_models).where(_M.id == row.model_id)).one()
            self._record_event(
                conn, model.id, f"approval.{status}", version=row.version,
                target=row.target, to_value=row.kind, actor=actor, reason=reason,
                payload={"approval_id": approval_id, "requested_by": row.requested_by},
            )  # fmt: skip
            if then is not None and status == "approved":
                then(conn, model)
        return self.get_approval(approval_id)

    # -- retention --------------------------------------------------------------------

    def runs_created_before(self, cutoff: float) -> list[str]:
        """Ids of runs created before ``cutoff`` that have ended (oldest first)."""
        r = s.runs.c
        with self._read() as conn:
            rows = conn.execute(
                select(r.id)
                .where((r.created_at < cutoff) & (r.status != "running"))
                .order_by(r.created_at)
            ).all()
        return [row[0] for row in rows]

    def delete_runs(self, run_ids: Sequence[str], *, actor: str | None, reason: str | None) -> int:
        """Delete runs with everything they logged; one audit event lists them."""
        ids = list(run_ids)
        with self._write() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for table in (
                    s.params, s.tags, s.metric_chunks, s.metric_summary, s.run_logs,
                    s.run_edges, s.spool_commits,
                ):  # fmt: skip
                    conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
                conn.execute(delete(s.runs).where(s.runs.c.id.in_(chunk)))
            self._record_event(
                conn, None, "runs.deleted", to_value=len(ids), actor=actor, reason=reason,
                payload={"run_ids": ids},
            )  # fmt: skip
        return len(ids)

    # -- keys -------------------------------------------------------------------------

    def add_signing_key(self, key_id: str, public_key_pem: str, owner: str | None) -> None:
        c = s.signing_keys.c
        with self._write() as conn:
            if conn.execute(select(c.key_id).where(c.key_id == key_id)).first() is None:
                conn.execute(
                    insert(s.signing_keys).values(
                        key_id=key_id,
                        public_key=public_key_pem,
                        owner=owner,
                        created_at=time.time(),
                    )
                )

    def signing_key(self, key_id: str) -> str | None:
        c = s.signing_keys.c
        with self._read() as conn:
            row = conn.execute(select(c.public_key).where(c.key_id == key_id)).first()
        return None if row is None else str(row[0])


def _wants(events: list[str], action: str) -> bool:
    """A webhook's filter: [] or "*" = all; "stage.*" = a family; else exact actions."""
    if not events or "*" in events:
        return True
    family = action.split(".", 1)[0] + ".*"
    return action in events or family in events


def _event(row: Any) -> RegistryEvent:
    return RegistryEvent(
        id=int(row.id), model=row.model_name, version=row.version, action=row.action,
        target=row.target, from_value=row.from_value, to_value=row.to_value, actor=row.actor,
        reason=row.reason, at=float(row.at), payload=json.loads(row.payload_json),
    )  # fmt: skip


def _approval(row: Any) -> Approval:
    return Approval(
        id=int(row.id), model=row.model_name, version=int(row.version), kind=row.kind,
        target=row.target, status=row.status, requested_by=row.requested_by,
        requested_at=float(row.requested_at), reason=row.reason, decided_by=row.decided_by,
        decided_at=row.decided_at, decision_reason=row.decision_reason,
    )  # fmt: skip
