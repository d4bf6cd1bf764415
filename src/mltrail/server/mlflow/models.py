"""MLflow's model registry over ours (``/api/2.0/mlflow/registered-models/...`` and
``/model-versions/...``).

Registered models, versions, aliases and stages are our registry's, with its policy
checks, audit trail and webhooks (the :class:`~mltrail.registry.service.Registry` acts
as the caller). Stages map ``None`` <-> the policy's initial stage, ``Archived`` <-> its
archive stage, ``Staging``/``Production`` <-> ``staging``/``production``. A version's
``source`` (``runs:/<run>/<path>`` or ``mlflow-artifacts:/<exp>/<run>/artifacts/<path>``)
names files the run uploaded through the artifact proxy: they become a ``model``
artifact version (same objects, no copy) the registry version points at. MLflow's
``source``, version tags and run link are kept in the version's metadata.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from mltrail.artifacts.ops import MANIFEST_FORMAT
from mltrail.entities import Approval, ManifestEntry, ModelVersion, RegisteredModel
from mltrail.errors import ArtifactNotFound, InvalidValueError, ModelNotFound
from mltrail.registry.policy import Policy
from mltrail.registry.service import POLICY_KEY
from mltrail.server.auth import Principal, global_scope, require
from mltrail.server.mlflow.artifacts import locate, run_tree
from mltrail.server.mlflow.common import MlflowRoute, ms, store_of
from mltrail.server.mlflow.experiments import _page, page_token
from mltrail.server.mlflow.filters import matches

__all__ = ["router", "stage_in", "stage_out"]

router = APIRouter(route_class=MlflowRoute)
READ = [require("reader", global_scope())]
#: the caller, who needs the writer role (the registry's policy checks come on top)
Writer = Annotated[Principal, require("writer", global_scope())]
SOURCE, TAGS, RUN_LINK = "mlflow_source", "mlflow_tags", "mlflow_run_link"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(_Body):
    key: str
    value: str = ""


class CreateModel(_Body):
    name: str
    tags: list[KeyValue] = []
    description: str | None = None


class ModelRef(_Body):
    name: str


class UpdateModel(_Body):
    name: str
    description: str | None = None


class ModelTag(_Body):
    name: str
    key: str
    value: str = ""


class LatestVersions(_Body):
    name: str
    stages: list[str] = []


class Alias(_Body):
    name: str
    alias: str
    version: str | None = None


class CreateVersion(_Body):
    name: str
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = []
    run_link: str | None = None
    description: str | None = None


class VersionRef(_Body):
    name: str
    version: str


class UpdateVersion(VersionRef):
    description: str | None = None


class Transition(VersionRef):
    stage: str
    archive_existing_versions: bool = False


class VersionTag(VersionRef):
    key: str
    value: str = ""


# -- stages and records ----------------------------------------------------------------


def stage_out(stage: str, policy: Policy) -> str:
    """Our stage as MLflow's (``None``, ``Staging``, ``Production``, ``Archived``)."""
    if stage == policy.initial_stage:
        return "None"
    if stage == policy.archive_stage:
        return "Archived"
    return stage.capitalize() if stage in ("staging", "production") else stage


def stage_in(stage: str, policy: Policy) -> str:
    """MLflow's stage name as ours."""
    low = stage.strip().lower()
    if low == "none":
        return policy.initial_stage
    if low == "archived":
        return policy.archive_stage
    return low if low in policy.stages else stage


def version_json(v: ModelVersion, policy: Policy, note: str = "") -> dict[str, Any]:
    """MLflow's ``ModelVersion`` message."""
    tags = v.metadata.get(TAGS) or {}
    return {
        "name": v.model,
        "version": str(v.version),
        "creation_timestamp": ms(v.created_at),
        "last_updated_timestamp": ms(v.created_at),
        "user_id": v.created_by or "",
        "current_stage": stage_out(v.stage, policy),
        "description": v.description,
        "source": v.metadata.get(SOURCE) or f"mltrail-artifacts:/{v.artifact}",
        "run_id": v.run_id or "",
        "status": "READY",
        "status_message": note,
        "run_link": v.metadata.get(RUN_LINK) or "",
        "tags": [{"key": k, "value": str(val)} for k, val in sorted(tags.items())],
        "aliases": list(v.aliases),
    }


def model_json(store: Any, m: RegisteredModel, policy: Policy) -> dict[str, Any]:
    """MLflow's ``RegisteredModel`` message (with the latest version of each stage)."""
    latest: dict[str, ModelVersion] = {}
    for v in store.model_versions(m.name):
        latest[v.stage] = v  # ascending: the last one wins
    return {
        "name": m.name,
        "creation_timestamp": ms(m.created_at),
        "last_updated_timestamp": ms(m.updated_at),
        "user_id": m.owner or "",
        "description": m.description,
        "latest_versions": [version_json(v, policy) for v in latest.values()],
        "tags": [{"key": k, "value": v} for k, v in sorted(m.tags.items())],
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())],
    }


def _policy(store: Any) -> Policy:
    return Policy.from_document(store.get_registry_setting(POLICY_KEY))


def _registry(request: Request, principal: Principal) -> Any:
    return request.app.state.mltrail.registry(principal)


def _number(version: str) -> int:
    if not str(version).strip().isdecimal():
        raise InvalidValueError(f"model version {version!r} is not a number")
    return int(version)


# -- registered models -----------------------------------------------------------------


@router.post("/registered-models/create")
def create_model(body: CreateModel, request: Request, principal: Writer) -> dict[str, Any]:
    """Register a model name (RESOURCE_ALREADY_EXISTS when it is taken)."""
    registry = _registry(request, principal)
    m = registry.create_model(
        body.name, description=body.description or "", tags={t.key: t.value for t in body.tags}
    )
    return {"registered_model": model_json(registry.store, m, registry.policy)}


@router.get("/registered-models/get", dependencies=READ)
def get_model(request: Request, name: str = Query()) -> dict[str, Any]:
    """One registered model."""
    store = store_of(request)
    policy = _policy(store)
    return {"registered_model": model_json(store, store.get_model(name), policy)}


@router.get("/registered-models/search", dependencies=READ)
def search_models(
    request: Request,
    filter: str | None = Query(None),
    max_results: int = Query(100),
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token_: str | None = Query(None, alias="page_token"),
) -> dict[str, Any]:
    """Registered models matching a filter on ``name`` and ``tags.*``, by name."""
    store = store_of(request)
    policy = _policy(store)
    found = [
        m for m in store.list_models()
        if matches(filter, {"name": m.name, "description": m.description}, m.tags)
    ]  # fmt: skip
    if any("desc" in o.lower().split() for o in order_by or [] if "name" in o):
        found.reverse()
    start = _page(page_token_)
    limit = max(1, min(max_results, request.app.state.mltrail.config.max_page_size))
    out: dict[str, Any] = {
        "registered_models": [model_json(store, m, policy) for m in found[start : start + limit]]
    }
    if start + limit < len(found):
        out["next_page_token"] = page_token(start + limit)
    return out


@router.patch("/registered-models/update")
def update_model(body: UpdateModel, request: Request, principal: Writer) -> dict[str, Any]:
    """Change a registered model's description."""
    registry = _registry(request, principal)
    m = registry.store.update_model(body.name, description=body.description, actor=principal.name)
    return {"registered_model": model_json(registry.store, m, registry.policy)}


def _unsupported(what: str) -> InvalidValueError:
    return InvalidValueError(
        f"{what} is not supported by mltrail's registry (its history is kept for audit)",
        hint="archive the versions instead: transition them to the Archived stage",
    )


@router.post("/registered-models/rename", dependencies=[require("writer", global_scope())])
def rename_model(body: ModelRef) -> dict[str, Any]:
    """Refused: registered models keep their names."""
    raise _unsupported("renaming a registered model")


@router.delete("/registered-models/delete", dependencies=[require("maintainer", global_scope())])
def delete_model(body: ModelRef) -> dict[str, Any]:
    """Refused: registered models are never deleted."""
    raise _unsupported("deleting a registered model")


@router.post("/registered-models/set-tag")
def set_model_tag(body: ModelTag, request: Request, principal: Writer) -> dict[str, Any]:
    """Set one tag of a registered model."""
    store = store_of(request)
    tags = {**store.get_model(body.name).tags, body.key: body.value}
    store.update_model(body.name, tags=tags, actor=principal.name)
    return {}


@router.delete("/registered-models/delete-tag")
def delete_model_tag(body: ModelTag, request: Request, principal: Writer) -> dict[str, Any]:
    """Remove one tag of a registered model."""
    store = store_of(request)
    tags = dict(store.get_model(body.name).tags)
    tags.pop(body.key, None)
    store.update_model(body.name, tags=tags, actor=principal.name)
    return {}


@router.post("/registered-models/get-latest-versions", dependencies=READ)
def get_latest_versions(body: LatestVersions, request: Request) -> dict[str, Any]:
    """The highest version in each of ``stages`` (every stage when none is given)."""
    store = store_of(request)
    policy = _policy(store)
    latest: dict[str, ModelVersion] = {}
    for v in store.model_versions(body.name):
        latest[v.stage] = v
    wanted = {stage_in(s, policy) for s in body.stages} if body.stages else set(latest)
    found = [v for stage, v in latest.items() if stage in wanted]
    return {"model_versions": [version_json(v, policy) for v in found]}


@router.post("/registered-models/alias")
def set_alias(body: Alias, request: Request, principal: Writer) -> dict[str, Any]:
    """Point an alias at a version."""
    if body.version is None:
        raise InvalidValueError("setting an alias needs a version", hint="pass version")
    result = _registry(request, principal).set_alias(body.name, body.alias, _number(body.version))
    if isinstance(result, Approval):
        return {"status_message": f"pending approval {result.id}"}
    return {}


@router.delete("/registered-models/alias")
def delete_alias(body: Alias, request: Request, principal: Writer) -> dict[str, Any]:
    """Remove an alias."""
    _registry(request, principal).set_alias(body.name, body.alias, None)
    return {}


@router.get("/registered-models/alias", dependencies=READ)
def get_by_alias(request: Request, name: str = Query(), alias: str = Query()) -> dict[str, Any]:
    """The version an alias points at."""
    store = store_of(request)
    number = store.get_model(name).aliases.get(alias)
    if number is None:
        raise ModelNotFound(
            f"registered model {name!r} has no alias {alias!r}",
            hint="set it with MlflowClient().set_registered_model_alias",
        )
    policy = _policy(store)
    return {"model_version": version_json(store.get_model_version(name, number), policy)}


# -- model versions --------------------------------------------------------------------


def _source(source: str, run_id: str | None) -> tuple[str, str]:
    """(run id, path under the run's artifacts) a version's source names."""
    if source.startswith("runs:/"):
        rid, _, rel = source[len("runs:/") :].strip("/").partition("/")
        return rid, rel.strip("/")
    marker = "mlflow-artifacts/artifacts/"
    if source.startswith("mlflow-artifacts:"):
        rest = re.sub(r"^mlflow-artifacts:(//[^/]*)?/?", "", source)
    elif marker in source:
        rest = source.split(marker, 1)[1]
    else:
        raise InvalidValueError(
            f"model source {source!r} is not a run's artifacts on this server",
            hint="register runs:/<run id>/<path> after logging the model's files to the run",
        )
    _, rid, rel = locate(rest)
    if run_id and run_id != rid:
        raise InvalidValueError(f"source {source!r} belongs to run {rid}, not {run_id}")
    return rid, rel


def _model_artifact(request: Request, name: str, source: str, run_id: str | None) -> Any:
    state = request.app.state.mltrail
    store, objects = state.store, state.objects
    rid, rel = _source(source, run_id)
    run = store.get_run(rid)
    _, entries = run_tree(store, objects, rid)
    prefix = rel + "/" if rel else ""
    files = [
        ManifestEntry(e.path[len(prefix) :], e.oid, e.size)
        for e in entries
        if e.path.startswith(prefix) or e.path == rel
    ]
    files = [f if f.path else ManifestEntry(rel.rsplit("/", 1)[-1], f.oid, f.size) for f in files]
    if not files:
        raise ArtifactNotFound(
            f"run {rid} has no artifacts under {rel!r} to register",
            hint="log the model's files first, e.g. mlflow.log_artifacts(folder, 'model')",
        )
    rows = [[f.path, f.oid, f.size] for f in sorted(files, key=lambda f: f.path)]
    data = json.dumps({"format": MANIFEST_FORMAT, "files": rows}, separators=(",", ":"))
    info = objects.put_bytes(data.encode())
    artifact = store.create_artifact_version(
        project=run.project, name=re.sub(r"[^A-Za-z0-9._-]", "-", name)[:128], type="model",
        digest=info.oid, size=sum(f.size for f in files), file_count=len(files),
        metadata={SOURCE: source}, run_id=rid, reference=False,
    )  # fmt: skip
    return artifact, run


@router.post("/model-versions/create")
def create_version(body: CreateVersion, request: Request, principal: Writer) -> dict[str, Any]:
    """A new version of a registered model from a run's logged model files."""
    registry = _registry(request, principal)
    artifact, run = _model_artifact(request, body.name, body.source, body.run_id)
    meta: dict[str, Any] = {SOURCE: body.source, TAGS: {t.key: t.value for t in body.tags}}
    if body.run_link:
        meta[RUN_LINK] = body.run_link
    v = registry.register(
        artifact, body.name, run=run, metadata=meta, description=body.description or ""
    )
    return {"model_version": version_json(v, registry.policy)}


@router.get("/model-versions/get", dependencies=READ)
def get_version(request: Request, name: str = Query(), version: str = Query()) -> dict[str, Any]:
    """One model version."""
    store = store_of(request)
    policy = _policy(store)
    return {"model_version": version_json(store.get_model_version(name, _number(version)), policy)}


@router.get("/model-versions/get-download-uri", dependencies=READ)
def get_download_uri(
    request: Request, name: str = Query(), version: str = Query()
) -> dict[str, Any]:
    """Where the version's files are (its MLflow source)."""
    store = store_of(request)
    policy = _policy(store)
    v = store.get_model_version(name, _number(version))
    return {"artifact_uri": version_json(v, policy)["source"]}


@router.get("/model-versions/search", dependencies=READ)
def search_versions(
    request: Request,
    filter: str | None = Query(None),
    max_results: int = Query(10_000),
    page_token_: str | None = Query(None, alias="page_token"),
) -> dict[str, Any]:
    """Model versions matching a filter on ``name``, ``run_id``, ``version_number``,
    ``source_path`` and ``tags.*``."""
    store = store_of(request)
    policy = _policy(store)
    found = []
    for m in store.list_models():
        for v in store.model_versions(m.name):
            doc = version_json(v, policy)
            attrs = {
                "name": v.model, "run_id": doc["run_id"], "version_number": v.version,
                "source_path": doc["source"], "current_stage": doc["current_stage"],
            }  # fmt: skip
            if matches(filter, attrs, {t["key"]: t["value"] for t in doc["tags"]}):
                found.append(doc)
    start = _page(page_token_)
    limit = max(1, min(max_results, request.app.state.mltrail.config.max_page_size))
    out: dict[str, Any] = {"model_versions": found[start : start + limit]}
    if start + limit < len(found):
        out["next_page_token"] = page_token(start + limit)
    return out


@router.patch("/model-versions/update")
def update_version(body: UpdateVersion, request: Request, principal: Writer) -> dict[str, Any]:
    """Change a version's description."""
    registry = _registry(request, principal)
    v = registry.update_version(body.name, _number(body.version), description=body.description)
    return {"model_version": version_json(v, registry.policy)}


@router.post("/model-versions/transition-stage")
def transition_stage(body: Transition, request: Request, principal: Writer) -> dict[str, Any]:
    """Move a version to a stage, under the registry's policy (roles, valid metadata,
    approval). ``archive_existing_versions`` false leaves it to the policy's exclusive
    stages."""
    registry = _registry(request, principal)
    policy = registry.policy
    number = _number(body.version)
    result = registry.promote(
        body.name, number, stage_in(body.stage, policy),
        archive_existing=True if body.archive_existing_versions else None,
    )  # fmt: skip
    if isinstance(result, Approval):
        v = registry.store.get_model_version(body.name, number)
        note = f"pending approval {result.id} for stage {result.target!r}"
        return {"model_version": version_json(v, policy, note)}
    return {"model_version": version_json(result, policy)}


@router.delete("/model-versions/delete", dependencies=[require("maintainer", global_scope())])
def delete_version(body: VersionRef) -> dict[str, Any]:
    """Refused: versions are archived, never deleted."""
    raise _unsupported("deleting a model version")


def _set_version_tags(
    request: Request, principal: Principal, body: VersionTag, value: str | None
) -> None:
    registry = _registry(request, principal)
    v = registry.store.get_model_version(body.name, _number(body.version))
    tags = dict(v.metadata.get(TAGS) or {})
    if value is None:
        tags.pop(body.key, None)
    else:
        tags[body.key] = value
    registry.update_version(body.name, v.version, metadata={TAGS: tags})


@router.post("/model-versions/set-tag")
def set_version_tag(body: VersionTag, request: Request, principal: Writer) -> dict[str, Any]:
    """Set one tag of a model version."""
    _set_version_tags(request, principal, body, body.value)
    return {}


@router.delete("/model-versions/delete-tag")
def delete_version_tag(body: VersionTag, request: Request, principal: Writer) -> dict[str, Any]:
    """Remove one tag of a model version."""
    _set_version_tags(request, principal, body, None)
    return {}
