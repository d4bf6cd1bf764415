"""MLflow experiments over our projects (``/api/2.0/mlflow/experiments/...``).

What a project has no column for (MLflow's experiment tags and lifecycle stage) is kept
as a registry setting ``mlflow.experiment.<project id>``, so every replica sees it.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from mltrail.entities import Project
from mltrail.errors import AlreadyExists, InvalidValueError, ProjectNotFound
from mltrail.server.auth import Principal, global_scope, require
from mltrail.server.mlflow.common import (
    DEFAULT_EXPERIMENT,
    MlflowRoute,
    experiment_id,
    experiment_scope,
    ms,
    project_of,
    store_of,
)
from mltrail.server.mlflow.filters import matches

__all__ = ["artifact_location", "experiment_json", "router"]

router = APIRouter(route_class=MlflowRoute)
Writer = Annotated[Principal, require("writer", experiment_scope())]
Maintainer = Annotated[Principal, require("maintainer", experiment_scope())]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(_Body):
    key: str
    value: str = ""


class CreateExperiment(_Body):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = []


class ExperimentRef(_Body):
    experiment_id: str


class UpdateExperiment(_Body):
    experiment_id: str
    new_name: str | None = None


class ExperimentTag(_Body):
    experiment_id: str
    key: str
    value: str = ""


class SearchExperiments(_Body):
    max_results: int | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = []
    view_type: str | None = None


def _setting_key(project: Project) -> str:
    return f"mlflow.experiment.{project.id}"


def _extra(store: Any, project: Project) -> dict[str, Any]:
    value = store.get_registry_setting(_setting_key(project))
    return dict(value) if isinstance(value, dict) else {}


def _save_extra(store: Any, project: Project, extra: dict[str, Any], actor: str | None) -> None:
    extra["last_update_time"] = time.time()
    store.set_registry_setting(_setting_key(project), extra, actor=actor)


def artifact_location(project: Project) -> str:
    """Where MLflow's client puts an experiment's artifacts: our artifact proxy."""
    return f"mlflow-artifacts:/{experiment_id(project)}"


def experiment_json(project: Project, extra: dict[str, Any]) -> dict[str, Any]:
    """MLflow's ``Experiment`` message for a project."""
    tags = extra.get("tags") or {}
    return {
        "experiment_id": experiment_id(project),
        "name": project.name,
        "artifact_location": artifact_location(project),
        "lifecycle_stage": extra.get("lifecycle_stage", "active"),
        "creation_time": ms(project.created_at),
        "last_update_time": ms(extra.get("last_update_time", project.created_at)),
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
    }


def _get(store: Any, project: Project) -> dict[str, Any]:
    return {"experiment": experiment_json(project, _extra(store, project))}


@router.post("/experiments/create", dependencies=[require("writer", global_scope())])
def create_experiment(body: CreateExperiment, request: Request) -> dict[str, Any]:
    """Create an experiment (a project); its name must be new."""
    store = store_of(request)
    name = body.name.strip()
    if not name:
        raise InvalidValueError("an experiment needs a name", hint="pass name='...'")
    try:
        store.get_project(name)
    except ProjectNotFound:
        pass
    else:
        raise AlreadyExists(
            f"an experiment named {name!r} already exists",
            hint="use mlflow.set_experiment(name) to use it",
        )
    project = store.get_or_create_project(name)
    if body.tags:
        principal = request.state.principal
        extra = {"tags": {t.key: t.value for t in body.tags}}
        _save_extra(store, project, extra, principal.name)
    return {"experiment_id": experiment_id(project)}


@router.get("/experiments/get", dependencies=[require("reader", experiment_scope())])
def get_experiment(request: Request, experiment_id: str = Query()) -> dict[str, Any]:
    """One experiment by id."""
    store = store_of(request)
    return _get(store, project_of(store, experiment_id))


@router.get("/experiments/get-by-name", dependencies=[require("reader", global_scope())])
def get_experiment_by_name(request: Request, experiment_name: str = Query()) -> dict[str, Any]:
    """One experiment by name (``Default`` always exists)."""
    store = store_of(request)
    if experiment_name == DEFAULT_EXPERIMENT:
        return _get(store, store.get_or_create_project(DEFAULT_EXPERIMENT))
    try:
        project = store.get_project(experiment_name)
    except ProjectNotFound:
        raise ProjectNotFound(
            f"no experiment named {experiment_name!r}",
            hint="create it with mlflow.set_experiment or create_experiment",
        ) from None
    return _get(store, project)


def _page(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise InvalidValueError(
            "page_token is not one this server gave out",
            hint="pass the next_page_token of the previous page",
        ) from None
    return max(0, offset)


def page_token(offset: int) -> str:
    """An opaque token for the page starting at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


@router.post("/experiments/search", dependencies=[require("reader", global_scope())])
def search_experiments(body: SearchExperiments, request: Request) -> dict[str, Any]:
    """Experiments matching a filter on ``name`` and ``tags.*``, one page."""
    store = store_of(request)
    projects = [p for p, _ in store.list_projects()]
    if not any(p.name == DEFAULT_EXPERIMENT for p in projects):
        projects.append(store.get_or_create_project(DEFAULT_EXPERIMENT))
    view = (body.view_type or "ACTIVE_ONLY").upper()
    found = []
    for project in projects:
        doc = experiment_json(project, _extra(store, project))
        stage = doc["lifecycle_stage"]
        if (view == "ACTIVE_ONLY" and stage != "active") or (
            view == "DELETED_ONLY" and stage != "deleted"
        ):
            continue
        tags = {t["key"]: t["value"] for t in doc["tags"]}
        attrs = {
            "name": doc["name"],
            "creation_time": doc["creation_time"],
            "last_update_time": doc["last_update_time"],
            "experiment_id": doc["experiment_id"],
        }
        if matches(body.filter, attrs, tags):
            found.append(doc)
    for item in reversed(body.order_by or ["last_update_time DESC"]):
        field, _, direction = item.strip().partition(" ")
        key = field.removeprefix("attributes.").removeprefix("attribute.")
        if key not in ("name", "creation_time", "last_update_time", "experiment_id"):
            raise InvalidValueError(
                f"experiments cannot be sorted by {field!r}",
                hint="sort by name, creation_time, last_update_time or experiment_id",
            )

        def sort_key(doc: dict[str, Any], key: str = key) -> Any:
            return int(doc[key]) if key == "experiment_id" else doc[key]

        found.sort(key=sort_key, reverse=direction.strip().upper() == "DESC")
    limit = min(body.max_results or 1000, request.app.state.mltrail.config.max_page_size)
    start = _page(body.page_token)
    out: dict[str, Any] = {"experiments": found[start : start + limit]}
    if start + limit < len(found):
        out["next_page_token"] = page_token(start + limit)
    return out


def _set_stage(request: Request, exp_id: str, principal: Principal, stage: str) -> None:
    store = store_of(request)
    project = project_of(store, exp_id)
    extra = _extra(store, project)
    extra["lifecycle_stage"] = stage
    _save_extra(store, project, extra, principal.name)


@router.post("/experiments/delete")
def delete_experiment(
    body: ExperimentRef,
    request: Request,
    principal: Maintainer,
) -> dict[str, Any]:
    """Mark an experiment deleted (MLflow deletes softly; its runs stay)."""
    if body.experiment_id == "0":
        raise InvalidValueError("the Default experiment cannot be deleted")
    _set_stage(request, body.experiment_id, principal, "deleted")
    return {}


@router.post("/experiments/restore")
def restore_experiment(
    body: ExperimentRef,
    request: Request,
    principal: Maintainer,
) -> dict[str, Any]:
    """Undo a delete."""
    _set_stage(request, body.experiment_id, principal, "active")
    return {}


@router.post("/experiments/update", dependencies=[require("maintainer", experiment_scope())])
def update_experiment(body: UpdateExperiment, request: Request) -> dict[str, Any]:
    """Rename an experiment (its project)."""
    store = store_of(request)
    project = project_of(store, body.experiment_id)
    if body.new_name:
        if project.name == DEFAULT_EXPERIMENT:
            raise InvalidValueError("the Default experiment cannot be renamed")
        store.rename_project(project.name, body.new_name)
    return {}


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(
    body: ExperimentTag,
    request: Request,
    principal: Writer,
) -> dict[str, Any]:
    """Set one tag of an experiment."""
    store = store_of(request)
    project = project_of(store, body.experiment_id)
    extra = _extra(store, project)
    extra["tags"] = {**(extra.get("tags") or {}), body.key: body.value}
    _save_extra(store, project, extra, principal.name)
    return {}


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(
    body: ExperimentTag,
    request: Request,
    principal: Writer,
) -> dict[str, Any]:
    """Remove one tag of an experiment."""
    store = store_of(request)
    project = project_of(store, body.experiment_id)
    extra = _extra(store, project)
    tags = dict(extra.get("tags") or {})
    tags.pop(body.key, None)
    extra["tags"] = tags
    _save_extra(store, project, extra, principal.name)
    return {}
