"""/api/v1 routes: the model registry and its webhooks.

Every change runs here, in the server, through :class:`~mltrail.registry.service.Registry`
acting as the caller (``state.registry(principal)``): the registry policy (protected
stages, approvals by a second person, allowed transitions, roles) cannot be skipped by
a client. Webhooks are queued by the same transactions and sent from the server.

Models are addressed as ``/models/{name}``, versions as ``/models/{name}/versions/{ref}``
where ``ref`` is a number, a label (``2.1.0``), an alias, a stage or ``latest``.
Access: reading needs reader, changes need writer, the policy needs admin (to change)
and retention and webhooks maintainer; the registry policy's own role rules apply on top.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field

from mltrail.entities import (
    Approval,
    ArtifactVersion,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)
from mltrail.errors import ArtifactNotFound, InvalidValueError
from mltrail.server.auth import Principal, global_scope, require

__all__ = ["router"]

router = APIRouter()

READ = require("reader", global_scope())
WRITE = require("writer", global_scope())
MAINTAIN = require("maintainer", global_scope())
ADMIN = require("admin", global_scope())


def _ref(ref: str) -> int | str | None:
    """A version reference from the path: a number, or a label, alias, stage, latest."""
    return int(ref) if ref.isdecimal() else ref


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


def _registry(request: Request, principal: Principal) -> Any:
    return request.app.state.mltrail.registry(principal)


def _page(request: Request, limit: int | None) -> int:
    cap: int = request.app.state.mltrail.config.max_page_size
    return cap if limit is None else min(limit, cap)


# -- request bodies --------------------------------------------------------------------


class CreateModel(BaseModel):
    name: str
    description: str = ""
    scheme: str = "semver"
    tags: dict[str, str] | None = None
    owner: str | None = None


class UpdateModel(BaseModel):
    description: str | None = None
    owner: str | None = None
    tags: dict[str, str] | None = None
    reason: str | None = None


class RegisterVersion(BaseModel):
    artifact: str = Field(description='an uploaded artifact version: "project/name:v3"')
    project: str | None = None
    run_id: str | None = Field(None, description="the source run (default: the producing run)")
    when: str | None = Field(None, description="register only if the source run matches")
    bump: str = "minor"
    label: str | None = None
    scheme: str | None = None
    metadata: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    input_example: Any = None
    description: str = ""
    sign: bool = True
    reason: str | None = None


class UpdateVersion(BaseModel):
    description: str | None = None
    metadata: dict[str, Any] | None = None
    reason: str | None = None


class Promote(BaseModel):
    stage: str
    archive_existing: bool | None = None
    reason: str | None = None


class SetAlias(BaseModel):
    version: int | str
    reason: str | None = None


class Rollback(BaseModel):
    stage: str | None = None
    alias: str | None = None
    reason: str | None = None


class Decision(BaseModel):
    reason: str | None = None


class Card(BaseModel):
    text: str
    reason: str | None = None


class SetPolicy(BaseModel):
    document: dict[str, Any]
    reason: str | None = None


class Retention(BaseModel):
    archive_versions_older_than_days: float | None = None
    delete_runs_older_than_days: float | None = None
    dry_run: bool = True


def _outcome(result: ModelVersion | Approval | None) -> dict[str, Any]:
    """A change that may wait for approval: ``{"version": ...}`` or ``{"approval": ...}``."""
    if isinstance(result, Approval):
        return {"approval": result}
    return {"version": result}


# -- models ------------------------------------------------------------------------------


@router.get("/models", response_model=None)
def list_models(request: Request, principal: Principal = READ) -> list[RegisteredModel]:
    """Every registered model, by name."""
    models: list[RegisteredModel] = _store(request).list_models()
    return models


@router.post("/models", status_code=201, response_model=None)
def create_model(
    body: CreateModel, request: Request, principal: Principal = WRITE
) -> RegisteredModel:
    """Register a model name (``scheme``: semver, date, hash or hybrid labels)."""
    model: RegisteredModel = _registry(request, principal).create_model(
        body.name, description=body.description, scheme=body.scheme, tags=body.tags,
        owner=body.owner,
    )  # fmt: skip
    return model


@router.get("/models/{name}", response_model=None)
def get_model(name: str, request: Request, principal: Principal = READ) -> RegisteredModel:
    model: RegisteredModel = _store(request).get_model(name)
    return model


@router.patch("/models/{name}", response_model=None)
def update_model(
    name: str, body: UpdateModel, request: Request, principal: Principal = WRITE
) -> RegisteredModel:
    """Change a model's description, owner or tags (audited)."""
    from mltrail.registry.webhooks import dispatch_in_background

    registry = _registry(request, principal)
    actor = registry._writer(registry.policy, f"change {name}")
    store = _store(request)
    try:
        model: RegisteredModel = store.update_model(
            name, description=body.description, owner=body.owner, tags=body.tags,
            actor=actor.name, reason=body.reason,
        )  # fmt: skip
    finally:
        dispatch_in_background(store)
    return model


# -- versions ----------------------------------------------------------------------------


@router.get("/models/{name}/versions", response_model=None)
def model_versions(
    name: str, request: Request, stage: str | None = None, principal: Principal = READ
) -> list[ModelVersion]:
    versions: list[ModelVersion] = _store(request).model_versions(name, stage=stage)
    return versions


def _artifact(request: Request, spec: str, project: str | None) -> ArtifactVersion:
    """The uploaded artifact version ``spec`` names (its manifest must be stored)."""
    from mltrail.artifacts.names import parse_spec, split_project

    proj, rest = split_project(spec)
    art_name, ref = parse_spec(rest)
    state = request.app.state.mltrail
    artifact: ArtifactVersion = state.store.get_artifact_version(
        proj or project or "", art_name, ref
    )
    if not state.objects.exists(artifact.digest):
        raise ArtifactNotFound(
            f"artifact {artifact.project}/{artifact.spec} is recorded but its manifest "
            f"{artifact.digest} is not in the server's object store",
            hint="upload the artifact's files first (log it again from the run)",
        )
    return artifact


@router.post("/models/{name}/versions", response_model=None)
def register_version(
    name: str, body: RegisterVersion, request: Request, principal: Principal = WRITE
) -> dict[str, ModelVersion | None]:
    """Register an uploaded artifact version as the next version of ``name``.

    With ``when``, only if the source run matches (else ``{"version": null}``).
    """
    from mltrail.query import parse, to_text

    store = _store(request)
    artifact = _artifact(request, body.artifact, body.project)
    rid = body.run_id or artifact.run_id
    run = None if rid is None else store.get_run(rid)
    if body.when is not None:
        tree = parse(body.when)  # alone, so a gate cannot reach outside its parentheses
        if tree is not None:
            if run is None:
                raise InvalidValueError(
                    "register_model(when=...) needs a source run to test",
                    hint="pass run_id=, or register an artifact logged by a run",
                )
            if not store.count_runs(None, f"run_id = '{run.id}' and ({to_text(tree)})"):
                return {"version": None}
    inputs = [] if run is None else store.run_artifacts(run.id)["in"]
    version: ModelVersion = _registry(request, principal).register(
        artifact, name, run=run, run_inputs=inputs, bump=body.bump, label=body.label,
        scheme=body.scheme, metadata=body.metadata, signature=body.signature,
        input_example=body.input_example, description=body.description, sign=body.sign,
        reason=body.reason,
    )  # fmt: skip
    return {"version": version}


@router.get("/registry/artifact-models", response_model=None)
def models_of_artifact(
    request: Request, project: str, name: str, version: int, principal: Principal = READ
) -> list[ModelVersion]:
    """The model versions registered from one artifact version (lineage)."""
    found: list[ModelVersion] = _store(request).models_of_artifact(project, name, version)
    return found


@router.get("/models/{name}/versions/{ref}", response_model=None)
def get_model_version(
    name: str, ref: str, request: Request, principal: Principal = READ
) -> ModelVersion:
    """A version by number, label, alias, stage or ``latest``."""
    version: ModelVersion = _store(request).get_model_version(name, _ref(ref))
    return version


@router.patch("/models/{name}/versions/{ref}", response_model=None)
def update_model_version(
    name: str, ref: str, body: UpdateVersion, request: Request, principal: Principal = WRITE
) -> ModelVersion:
    """Change the description, or merge keys into the metadata (re-validated)."""
    version: ModelVersion = _registry(request, principal).update_version(
        name, _ref(ref), description=body.description, metadata=body.metadata,
        reason=body.reason,
    )  # fmt: skip
    return version


@router.get("/models/{name}/versions/{ref}/validation", response_model=None)
def validate_model(
    name: str, ref: str, request: Request, principal: Principal = READ
) -> dict[str, list[str]]:
    """The version's metadata problems under the current policy (empty: valid)."""
    return {"problems": _registry(request, principal).validate(name, _ref(ref))}


@router.post("/models/{name}/versions/{ref}/validate-input", status_code=204, response_model=None)
def validate_input(
    name: str, ref: str, request: Request, data: Annotated[Any, Body()], principal: Principal = READ
) -> Response:
    """Check a JSON payload against the version's signature (422 lists each problem)."""
    from mltrail.registry.signature import validate_input as check

    version: ModelVersion = _store(request).get_model_version(name, _ref(ref))
    if version.signature is None:
        raise InvalidValueError(
            f"{version.model} version {version.version} has no signature to check against",
            hint="register it with input_example=... or signature=...",
        )
    check(version.signature, data)
    return Response(status_code=204)


@router.post("/models/{name}/versions/{ref}/stage", response_model=None)
def promote(
    name: str, ref: str, body: Promote, request: Request, principal: Principal = WRITE
) -> dict[str, Any]:
    """Move a version to a stage: ``{"version": ...}``, or ``{"approval": ...}`` when the
    policy asks a second person to approve."""
    result = _registry(request, principal).promote(
        name, _ref(ref), body.stage, archive_existing=body.archive_existing, reason=body.reason
    )
    return _outcome(result)


@router.put("/models/{name}/aliases/{alias}", response_model=None)
def set_alias(
    name: str, alias: str, body: SetAlias, request: Request, principal: Principal = WRITE
) -> dict[str, Any]:
    """Point an alias at a version (``{"version"}``, or ``{"approval"}`` when protected)."""
    version = body.version
    ref = _ref(version) if isinstance(version, str) else version
    result = _registry(request, principal).set_alias(name, alias, ref, reason=body.reason)
    return _outcome(result)


@router.delete("/models/{name}/aliases/{alias}", status_code=204, response_model=None)
def delete_alias(
    name: str,
    alias: str,
    request: Request,
    reason: str | None = None,
    principal: Principal = WRITE,
) -> Response:
    _registry(request, principal).set_alias(name, alias, None, reason=reason)
    return Response(status_code=204)


@router.post("/models/{name}/rollback", response_model=None)
def rollback(
    name: str, body: Rollback, request: Request, principal: Principal = WRITE
) -> ModelVersion:
    """Give a stage (or alias) back to the version that held it before."""
    version: ModelVersion = _registry(request, principal).rollback(
        name, stage=body.stage, alias=body.alias, reason=body.reason
    )
    return version


# -- audit trail and approvals ------------------------------------------------------------


@router.get("/registry/events", response_model=None)
def registry_events(
    request: Request,
    model: str | None = None,
    after_id: int = Query(0, ge=0),
    limit: int | None = Query(None, ge=1),
    principal: Principal = READ,
) -> list[RegistryEvent]:
    """The audit trail, oldest first (pages: pass the last ``id`` as ``after_id``)."""
    events: list[RegistryEvent] = _store(request).registry_events(
        model, after_id=after_id, limit=_page(request, limit)
    )
    return events


@router.get("/registry/approvals", response_model=None)
def list_approvals(
    request: Request,
    model: str | None = None,
    status: str | None = None,
    principal: Principal = READ,
) -> list[Approval]:
    """Approval requests (all of them unless ``status`` says pending, approved, ...)."""
    approvals: list[Approval] = _store(request).list_approvals(model, status=status)
    return approvals


@router.post("/registry/approvals/{approval_id}/approve", response_model=None)
def approve(
    approval_id: int, body: Decision, request: Request, principal: Principal = WRITE
) -> Approval:
    """Approve and carry out a request; the requester may not approve their own."""
    decided: Approval = _registry(request, principal).decide(approval_id, True, reason=body.reason)
    return decided


@router.post("/registry/approvals/{approval_id}/reject", response_model=None)
def reject(
    approval_id: int, body: Decision, request: Request, principal: Principal = WRITE
) -> Approval:
    decided: Approval = _registry(request, principal).decide(approval_id, False, reason=body.reason)
    return decided


# -- cards, signatures, files ---------------------------------------------------------------


@router.get("/models/{name}/versions/{ref}/card", response_model=None)
def model_card(
    name: str, ref: str, request: Request, principal: Principal = READ
) -> dict[str, Any]:
    """``{"version": number, "card": markdown or null}``."""
    number, card = _store(request).model_card(name, _ref(ref))
    return {"version": number, "card": card}


@router.put("/models/{name}/versions/{ref}/card", response_model=None)
def update_model_card(
    name: str, ref: str, body: Card, request: Request, principal: Principal = WRITE
) -> ModelVersion:
    version: ModelVersion = _registry(request, principal).update_card(
        name, _ref(ref), body.text, reason=body.reason
    )
    return version


@router.get("/models/{name}/versions/{ref}/verify", response_model=None)
def verify_model(
    name: str, ref: str, request: Request, principal: Principal = READ
) -> ModelVersion:
    """Check the version's Ed25519 signature here (SignatureInvalid says what differs)."""
    version: ModelVersion = _registry(request, principal).verify(name, _ref(ref))
    return version


@router.get("/models/{name}/versions/{ref}/download", response_model=None)
def download_model(
    name: str,
    ref: str,
    request: Request,
    verify: bool = True,
    principal: Principal = READ,
) -> dict[str, Any]:
    """What to fetch for a version: ``{"version", "artifact"}``; the artifact's digest
    names its manifest, whose objects the client gets through ``/objects``."""
    registry = _registry(request, principal)
    store = _store(request)
    version: ModelVersion = (
        registry.verify(name, _ref(ref)) if verify else store.get_model_version(name, _ref(ref))
    )
    project, _, spec = version.artifact.partition("/")
    art_name, _, number = spec.rpartition(":v")
    artifact: ArtifactVersion = store.get_artifact_version(project, art_name, int(number))
    if artifact.digest != version.artifact_digest:
        raise InvalidValueError(
            f"{version.artifact} no longer has the digest {name} version {version.version} "
            "was registered with",
            hint="do not deploy it; see `mltrail models history` for what changed",
        )
    return {"version": version, "artifact": artifact}


@router.get("/models/{name}/versions/{number}/signed-payload", response_model=None)
def signed_payload(
    name: str, number: int, request: Request, principal: Principal = READ
) -> dict[str, str | None]:
    """What was signed: ``{"payload", "signature", "key_id"}`` (None when unsigned)."""
    payload, signature, key_id = _store(request).signed_payload(name, number)
    return {"payload": payload, "signature": signature, "key_id": key_id}


@router.get("/registry/signing-keys/{key_id}", response_model=None)
def signing_key(key_id: str, request: Request, principal: Principal = READ) -> dict[str, Any]:
    """A public key versions are signed with (PEM; None when unknown)."""
    return {"key_id": key_id, "public_pem": _store(request).signing_key(key_id)}


# -- policy and retention -----------------------------------------------------------------


@router.get("/registry/policy", response_model=None)
def registry_policy(request: Request, principal: Principal = READ) -> dict[str, Any]:
    """The registry policy document (defaults filled in)."""
    document: dict[str, Any] = _registry(request, principal).policy.document
    return document


@router.put("/registry/policy", response_model=None)
def set_registry_policy(
    body: SetPolicy, request: Request, principal: Principal = ADMIN
) -> dict[str, Any]:
    """Replace the registry policy (audited); the policy's own admins rule on top."""
    document: dict[str, Any] = (
        _registry(request, principal).set_policy(body.document, reason=body.reason).document
    )
    return document


@router.post("/registry/retention", response_model=None)
def apply_retention(
    body: Retention, request: Request, principal: Principal = MAINTAIN
) -> dict[str, Any]:
    """Archive old unaliased versions, delete old runs no version comes from (a dry run
    unless ``dry_run`` is false)."""
    report = _registry(request, principal).retention(
        archive_versions_older_than_days=body.archive_versions_older_than_days,
        delete_runs_older_than_days=body.delete_runs_older_than_days,
        dry_run=body.dry_run,
    )
    return {
        "dry_run": report.dry_run,
        "archived_versions": [list(v) for v in report.archived_versions],
        "deleted_runs": report.deleted_runs,
        "kept_runs": report.kept_runs,
    }


from mltrail.server.routes.webhooks import router as _webhooks  # noqa: E402

router.include_router(_webhooks)
