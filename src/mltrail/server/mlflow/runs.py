"""MLflow runs, params, tags and metrics over our runs (``/api/2.0/mlflow/runs/...``).

An MLflow run is one of our runs: params are its config (MLflow's values are strings and
stay strings), metrics its metric series (MLflow's milliseconds, our seconds), tags its
tags, except MLflow's system tags that have a column of their own (``mlflow.runName``
-> name, ``mlflow.user`` -> user, ``mlflow.parentRunId`` -> parent,
``mlflow.note.content`` -> notes). MLflow's soft delete is the tag
:data:`~mltrail.server.mlflow.filters.DELETED_TAG`.
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from mltrail.entities import RunRecord
from mltrail.errors import InvalidValueError
from mltrail.ids import new_run_id
from mltrail.series import Series
from mltrail.server.auth import global_scope, require
from mltrail.server.mlflow.common import (
    MlflowRoute,
    experiment_id,
    experiment_scope,
    experiments_scope,
    ms,
    project_of,
    run_scope,
    seconds,
    store_of,
)
from mltrail.server.mlflow.experiments import _page, page_token
from mltrail.server.mlflow.filters import DELETED_TAG, STATUS_IN, STATUS_OUT, order_text, run_query
from mltrail.wire import wire_float

__all__ = ["router", "run_info", "run_json"]

router = APIRouter(route_class=MlflowRoute)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(_Body):
    key: str
    value: str = ""


class MetricIn(_Body):
    key: str
    value: float | str
    timestamp: int | None = None
    step: int | None = None


class _RunRef(_Body):
    run_id: str | None = None
    run_uuid: str | None = None

    @property
    def id(self) -> str:
        value = self.run_id or self.run_uuid
        if not value:
            raise InvalidValueError("the request names no run", hint="pass run_id")
        return value


class CreateRun(_Body):
    experiment_id: str | None = None
    user_id: str | None = None
    start_time: int | None = None
    tags: list[KeyValue] = []
    run_name: str | None = None


class UpdateRun(_RunRef):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class LogMetric(_RunRef, MetricIn):
    pass


class LogParam(_RunRef):
    key: str
    value: str = ""


class SetTag(_RunRef):
    key: str
    value: str = ""


class DeleteTag(_RunRef):
    key: str


class LogBatch(_RunRef):
    metrics: list[MetricIn] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class LogInputs(_RunRef):
    datasets: list[dict[str, Any]] = []


class SearchRuns(_Body):
    experiment_ids: list[str] = []
    filter: str | None = None
    run_view_type: str | None = None
    max_results: int | None = None
    order_by: list[str] = []
    page_token: str | None = None


# -- records -> MLflow's messages ------------------------------------------------------


class ExperimentIds:
    """Experiment ids by project name, looked up once per request."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.ids: dict[str, str] = {}

    def __call__(self, project: str) -> str:
        if project not in self.ids:
            self.ids[project] = experiment_id(self.store.get_project(project))
        return self.ids[project]


def param_text(value: Any) -> str:
    """A config value as MLflow's string param."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def run_info(run: RunRecord, exp_id: str) -> dict[str, Any]:
    """MLflow's ``RunInfo`` of a run."""
    return {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": exp_id,
        "user_id": run.user or "",
        "status": STATUS_OUT.get(run.status, "RUNNING"),
        "start_time": ms(run.started_at),
        "end_time": ms(run.ended_at),
        "artifact_uri": f"mlflow-artifacts:/{exp_id}/{run.id}/artifacts",
        "lifecycle_stage": "deleted" if DELETED_TAG in run.tags else "active",
    }


def run_json(run: RunRecord, exp_id: str) -> dict[str, Any]:
    """MLflow's ``Run`` (info, data, inputs) of a run."""
    tags = {k: v for k, v in run.tags.items() if k != DELETED_TAG}
    tags["mlflow.runName"] = run.name
    if run.user:
        tags["mlflow.user"] = run.user
    if run.parent_id:
        tags["mlflow.parentRunId"] = run.parent_id
    if run.notes:
        tags["mlflow.note.content"] = run.notes
    metrics = [
        {"key": k, "value": m.last, "timestamp": ms(m.last_timestamp), "step": m.last_step}
        for k, m in sorted(run.metrics.items())
    ]
    return {
        "info": run_info(run, exp_id),
        "data": {
            "metrics": metrics,
            "params": [{"key": k, "value": param_text(v)} for k, v in run.config.items()],
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        },
        "inputs": {"dataset_inputs": []},
    }


# -- runs ------------------------------------------------------------------------------


@router.post("/runs/create", dependencies=[require("writer", experiment_scope())])
def create_run(body: CreateRun, request: Request) -> dict[str, Any]:
    """Start a run in an experiment (``"0"``: Default)."""
    store = store_of(request)
    project = project_of(store, body.experiment_id or "0")
    tags = {t.key: t.value for t in body.tags}
    name = body.run_name or tags.pop("mlflow.runName", None)
    tags.pop("mlflow.runName", None)
    user = body.user_id or tags.pop("mlflow.user", None)
    tags.pop("mlflow.user", None)
    parent = tags.pop("mlflow.parentRunId", None) or None
    notes = tags.pop("mlflow.note.content", "")
    started = seconds(body.start_time) or time.time()
    run = store.create_run(
        run_id=new_run_id(), project=project.name, name=name, user=user, group=None,
        job_type=None, parent_id=parent, notes=notes, tags=tags,
        metadata={"source": "mlflow"}, started_at=started,
    )  # fmt: skip
    return {"run": run_json(run, experiment_id(project))}


@router.get("/runs/get", dependencies=[require("reader", run_scope())])
def get_run(
    request: Request, run_id: str | None = Query(None), run_uuid: str | None = Query(None)
) -> dict[str, Any]:
    """One run, with its params, tags and latest metric values."""
    store = store_of(request)
    run = store.get_run(_RunRef(run_id=run_id, run_uuid=run_uuid).id)
    return {"run": run_json(run, ExperimentIds(store)(run.project))}


@router.post("/runs/update", dependencies=[require("writer", run_scope())])
def update_run(body: UpdateRun, request: Request) -> dict[str, Any]:
    """Change a run's status (ending it), end time or name."""
    store = store_of(request)
    fields: dict[str, Any] = {}
    if body.status:
        status = STATUS_IN.get(body.status.upper())
        if status is None:
            raise InvalidValueError(
                f"run status {body.status!r} is not one of MLflow's",
                hint=f"one of {', '.join(STATUS_IN)}",
            )
        fields["status"] = status
        if status == "running":
            fields["ended_at"] = None
            fields["heartbeat_at"] = time.time()
        else:
            fields["ended_at"] = seconds(body.end_time) or time.time()
    elif body.end_time:
        fields["ended_at"] = seconds(body.end_time)
    if body.run_name:
        fields["name"] = body.run_name
    if fields:
        store.update_run(body.id, **fields)
    run = store.get_run(body.id)
    return {"run_info": run_info(run, ExperimentIds(store)(run.project))}


@router.post("/runs/delete", dependencies=[require("writer", run_scope())])
def delete_run(body: _RunRef, request: Request) -> dict[str, Any]:
    """Mark a run deleted (searches leave it out; restore undoes it)."""
    store_of(request).set_tags(body.id, {DELETED_TAG: "true"})
    return {}


@router.post("/runs/restore", dependencies=[require("writer", run_scope())])
def restore_run(body: _RunRef, request: Request) -> dict[str, Any]:
    """Undo a delete."""
    store = store_of(request)
    store.get_run(body.id)
    store.delete_tag(body.id, DELETED_TAG)
    return {}


@router.post("/runs/search", dependencies=[require("reader", experiments_scope())])
def search_runs(body: SearchRuns, request: Request) -> dict[str, Any]:
    """Runs of some experiments matching MLflow's filter, sorted, one page."""
    store = store_of(request)
    if not body.experiment_ids:
        raise InvalidValueError(
            "search_runs needs at least one experiment id", hint="pass experiment_ids"
        )
    projects = [project_of(store, e).name for e in body.experiment_ids]
    one = projects[0] if len(set(projects)) == 1 else None
    query = run_query(body.filter, None if one else projects, body.run_view_type)
    cap = request.app.state.mltrail.config.max_page_size
    limit = max(1, min(body.max_results or 1000, cap))
    offset = _page(body.page_token)
    runs = store.search_runs(
        one, query, order_by=order_text(body.order_by), limit=limit + 1, offset=offset
    )
    ids = ExperimentIds(store)
    out: dict[str, Any] = {"runs": [run_json(r, ids(r.project)) for r in runs[:limit]]}
    if len(runs) > limit:
        out["next_page_token"] = page_token(offset + limit)
    return out


@router.post("/logged-models/search", dependencies=[require("reader", experiments_scope())])
def search_logged_models(body: SearchRuns, request: Request) -> dict[str, Any]:
    """MLflow 3's logged models: none here (a model is a run's files under a path, which
    MLflow's client finds by listing the run's artifacts after this answer)."""
    for exp in body.experiment_ids:
        project_of(store_of(request), exp)
    return {"models": []}


# -- logging ---------------------------------------------------------------------------


def _series(points: Iterable[MetricIn], now: float) -> dict[str, Series]:
    batch: dict[str, Series] = {}
    for p in points:
        series = batch.get(p.key)
        if series is None:
            series = batch[p.key] = Series(array("q"), array("d"), array("d"))
        try:
            value = wire_float(p.value)
        except ValueError:
            raise InvalidValueError(
                f"metric {p.key!r} has the value {p.value!r}, not a number"
            ) from None
        series.steps.append(int(p.step or 0))
        series.values.append(value)
        series.timestamps.append(now if p.timestamp is None else p.timestamp / 1000.0)
    return batch


def _log(
    store: Any,
    run_id: str,
    *,
    metrics: Iterable[MetricIn] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    now = time.time()
    # the run's heartbeat (MLflow's client sends none): a run that logs is alive
    store.update_run(run_id, heartbeat_at=now)
    if params:
        store.log_params(run_id, dict(params))
    if tags:
        _set_tags(store, run_id, tags)
    batch = _series(metrics, now)
    if batch:
        store.write_metrics(run_id, batch)


def _set_tags(store: Any, run_id: str, tags: Mapping[str, str]) -> None:
    plain = dict(tags)
    fields: dict[str, Any] = {}
    if "mlflow.runName" in plain:
        fields["name"] = plain.pop("mlflow.runName")
    if "mlflow.note.content" in plain:
        fields["notes"] = plain.pop("mlflow.note.content")
    if fields:
        store.update_run(run_id, **fields)
    if plain:
        store.set_tags(run_id, plain)


@router.post("/runs/log-metric", dependencies=[require("writer", run_scope())])
def log_metric(body: LogMetric, request: Request) -> dict[str, Any]:
    """Append one point to a metric series."""
    _log(store_of(request), body.id, metrics=[body])
    return {}


@router.post("/runs/log-parameter", dependencies=[require("writer", run_scope())])
def log_param(body: LogParam, request: Request) -> dict[str, Any]:
    """Log one param (fixed once logged, as in MLflow)."""
    _log(store_of(request), body.id, params={body.key: body.value})
    return {}


@router.post("/runs/set-tag", dependencies=[require("writer", run_scope())])
def set_tag(body: SetTag, request: Request) -> dict[str, Any]:
    """Set one tag (``mlflow.runName`` renames the run)."""
    _log(store_of(request), body.id, tags={body.key: body.value})
    return {}


@router.post("/runs/delete-tag", dependencies=[require("writer", run_scope())])
def delete_tag(body: DeleteTag, request: Request) -> dict[str, Any]:
    """Remove one tag."""
    store = store_of(request)
    run = store.get_run(body.id)
    if body.key not in run.tags:
        from mltrail.errors import NotFoundError

        raise NotFoundError(f"run {body.id} has no tag {body.key!r}")
    store.delete_tag(body.id, body.key)
    return {}


@router.post("/runs/log-batch", dependencies=[require("writer", run_scope())])
def log_batch(body: LogBatch, request: Request) -> dict[str, Any]:
    """Params, tags and metric points of one run in one request."""
    _log(
        store_of(request),
        body.id,
        metrics=body.metrics,
        params={p.key: p.value for p in body.params},
        tags={t.key: t.value for t in body.tags},
    )
    return {}


@router.post("/runs/log-inputs", dependencies=[require("writer", run_scope())])
def log_inputs(body: LogInputs, request: Request) -> dict[str, Any]:
    """Record the datasets a run read (in its metadata's ``inputs``, as ours do)."""
    store = store_of(request)
    run = store.get_run(body.id)
    inputs = list(run.metadata.get("inputs") or [])
    for item in body.datasets:
        dataset = item.get("dataset") or {}
        inputs.append(
            {
                "path": dataset.get("source") or dataset.get("name"),
                "hash": dataset.get("digest"),
                "name": dataset.get("name"),
                "source_type": dataset.get("source_type"),
                "tags": item.get("tags") or [],
            }
        )
    store.merge_metadata(body.id, {"inputs": inputs})
    return {}


# -- metric histories ------------------------------------------------------------------


def _points(store: Any, run_id: str, key: str) -> list[dict[str, Any]]:
    series = store.metric_history(run_id, key)
    return [
        {"key": key, "value": v, "timestamp": ms(t), "step": s}
        for s, v, t in zip(series.steps, series.values, series.timestamps, strict=True)
    ]


@router.get("/metrics/get-history", dependencies=[require("reader", run_scope())])
def get_metric_history(
    request: Request,
    metric_key: str = Query(),
    run_id: str | None = Query(None),
    run_uuid: str | None = Query(None),
    max_results: int | None = Query(None),
    page_token_: str | None = Query(None, alias="page_token"),
) -> dict[str, Any]:
    """Every point of one metric of one run, in step order, paged."""
    rid = _RunRef(run_id=run_id, run_uuid=run_uuid).id
    points = _points(store_of(request), rid, metric_key)
    start = _page(page_token_)
    if max_results is None:
        return {"metrics": points[start:]}
    limit = max(1, max_results)
    out: dict[str, Any] = {"metrics": points[start : start + limit]}
    if start + limit < len(points):
        out["next_page_token"] = page_token(start + limit)
    return out


@router.get("/metrics/get-history-bulk-interval", dependencies=[require("reader", global_scope())])
def get_metric_history_bulk_interval(
    request: Request,
    run_ids: Annotated[list[str], Query()],
    metric_key: str = Query(),
    start_step: int | None = Query(None),
    end_step: int | None = Query(None),
    max_results: int = Query(320),
) -> dict[str, Any]:
    """One metric of several runs between two steps, thinned to ``max_results`` steps."""
    store = store_of(request)
    out: list[dict[str, Any]] = []
    for rid in run_ids[:100]:
        points = [
            p for p in _points(store, rid, metric_key)
            if (start_step is None or p["step"] >= start_step)
            and (end_step is None or p["step"] <= end_step)
        ]  # fmt: skip
        steps = sorted({p["step"] for p in points})
        if len(steps) > max_results > 0:
            every = len(steps) / max_results
            keep = {steps[int(i * every)] for i in range(max_results)} | {steps[-1]}
            points = [p for p in points if p["step"] in keep]
        out.extend({**p, "run_id": rid} for p in points)
    return {"metrics": out}
