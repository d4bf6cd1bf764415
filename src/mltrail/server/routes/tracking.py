"""/api/v1 routes: tracking (projects, runs, params, tags, metrics, console logs, spools).

One route per method of the :class:`~mltrail.store.Store` protocol, plus search and
count, each a thin call into the server's store. Readers read, writers write, in the
project of the run (``run_scope``) or the one named in the request.

Metric batches (``POST /runs/{run_id}/metrics``) are the hot path: a binary frame
(:func:`mltrail.store.http.tracking.encode_batch`), usually gzip-compressed
(``Content-Encoding: gzip``, inflated by the app), with ``spool_id`` and
``spool_offset`` recorded in the same transaction, so a retried request is applied
once. Metric history is JSON points by default, or the same binary frame with
``?format=binary``; ``?max_points=N`` downsamples it on the server (min/max kept).
"""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from mltrail.entities import MetricSummary, Project
from mltrail.errors import InvalidValueError
from mltrail.series import downsample, to_points
from mltrail.server.auth import Principal, body_scope, global_scope, param_scope, require
from mltrail.server.auth import run_scope as _run_scope
from mltrail.store.http.tracking import (
    BATCH_TYPE,
    decode_batch,
    encode_batch,
    nonfinite_keys,
    restore_nonfinite,
)
from mltrail.wire import to_wire

router = APIRouter()

_READ_RUN = [require("reader", _run_scope())]
_WRITE_RUN = [require("writer", _run_scope())]
_CREATE = require("writer", body_scope("project"))


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


def _page_cap(request: Request) -> int:
    return int(request.app.state.mltrail.config.max_page_size)


def _run_out(record: Any) -> dict[str, Any]:
    """A run record, with the keys of its ``Any`` maps whose values are non-finite."""
    out: dict[str, Any] = to_wire(record)
    marks = {
        name: keys
        for name in ("config", "summary_overrides", "metadata")
        if (keys := nonfinite_keys(getattr(record, name)))
    }
    if marks:
        out["nonfinite"] = marks
    return out


async def _raw_body(request: Request) -> bytes:
    return await request.body()


# -- bodies ------------------------------------------------------------------------


class ProjectIn(BaseModel):
    project: str = Field(min_length=1, max_length=255)


class ProjectCount(BaseModel):
    project: dict[str, Any]
    run_count: int


class RunIn(BaseModel):
    run_id: str = Field(min_length=1, max_length=64)
    project: str = Field(min_length=1, max_length=255)
    name: str | None = None
    user: str | None = None
    group: str | None = None
    job_type: str | None = None
    parent_id: str | None = None
    notes: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    started_at: float
    nonfinite: list[str] = Field(default_factory=list)


class RunUpdate(BaseModel):
    fields: dict[str, Any]
    nonfinite: list[str] = Field(default_factory=list)


class ValuesIn(BaseModel):
    values: dict[str, Any]
    nonfinite: list[str] = Field(default_factory=list)


class ParamsIn(ValuesIn):
    allow_change: bool = False


class TagsIn(BaseModel):
    tags: dict[str, str]


class LogsIn(BaseModel):
    text: str


class StaleIn(BaseModel):
    older_than: float


class SpoolIn(BaseModel):
    run_id: str
    offset: int = Field(ge=0)


def _own_spool(run_id: str, spool_id: str) -> str:
    """A spool id is ``<run id>.<suffix>``: a run's writers move only its own spools."""
    if not spool_id.startswith(run_id + "."):
        raise InvalidValueError(
            f"spool {spool_id!r} does not belong to run {run_id!r}",
            hint="a spool id starts with its run's id and a dot",
        )
    return spool_id


# -- projects ----------------------------------------------------------------------


@router.get("/projects", dependencies=[require("reader", global_scope())])
def list_projects(request: Request) -> list[dict[str, Any]]:
    """Every project with its number of runs."""
    return [{"project": p, "run_count": n} for p, n in _store(request).list_projects()]


@router.post("/projects", dependencies=[require("writer", body_scope("project"))])
def get_or_create_project(request: Request, body: ProjectIn) -> Project:
    """The project named ``project``, created when it does not exist."""
    project: Project = _store(request).get_or_create_project(body.project)
    return project


# -- runs --------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def create_run(
    request: Request,
    body: RunIn,
    principal: Annotated[Principal, _CREATE],
) -> dict[str, Any]:
    """Start a run (its project is created when needed)."""
    # with auth on, the run belongs to whoever the token says, not what the client says
    user = principal.name if principal.authenticated else body.user
    record = _store(request).create_run(
        run_id=body.run_id, project=body.project, name=body.name, user=user,
        group=body.group, job_type=body.job_type, parent_id=body.parent_id, notes=body.notes,
        tags=body.tags, metadata=restore_nonfinite(body.metadata, body.nonfinite),
        started_at=body.started_at,
    )  # fmt: skip
    return _run_out(record)


@router.get("/runs", dependencies=[require("reader", param_scope("project"))])
def search_runs(
    request: Request,
    project: str | None = None,
    query: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Runs matching ``query`` (the query language), sorted by ``order_by`` (repeatable,
    e.g. ``metrics.loss asc``), one page; ``limit`` is capped at the server's page size."""
    # one row over the page size: a client asks for it to learn whether a next page exists
    limit = min(limit, _page_cap(request) + 1)
    runs = _store(request).search_runs(
        project, query or None, order_by=order_by or None, limit=limit, offset=offset
    )
    return [_run_out(r) for r in runs]


@router.get("/runs:count", dependencies=[require("reader", param_scope("project"))])
def count_runs(
    request: Request, project: str | None = None, query: str | None = None
) -> dict[str, int]:
    """How many runs match ``query``."""
    return {"count": int(_store(request).count_runs(project, query or None))}


@router.post("/runs:mark-stale", dependencies=[require("writer", global_scope())])
def mark_stale_runs_crashed(request: Request, body: StaleIn) -> dict[str, list[str]]:
    """Runs still running whose heartbeat is older than ``older_than`` become crashed."""
    return {"run_ids": _store(request).mark_stale_runs_crashed(body.older_than)}


@router.get("/runs/{run_id}", dependencies=_READ_RUN)
def get_run(request: Request, run_id: str) -> dict[str, Any]:
    """A run with its params, tags, metric summaries and metadata."""
    return _run_out(_store(request).get_run(run_id))


@router.patch("/runs/{run_id}", status_code=204, dependencies=_WRITE_RUN)
def update_run(request: Request, run_id: str, body: RunUpdate) -> None:
    """Change run fields: status, ended_at, heartbeat_at, exit_reason, exit_code, notes,
    name, group, job_type, started_at, metadata."""
    fields = dict(body.fields)
    if isinstance(fields.get("metadata"), dict):
        fields["metadata"] = restore_nonfinite(fields["metadata"], body.nonfinite)
    _store(request).update_run(run_id, **fields)


@router.post("/runs/{run_id}/params", status_code=204, dependencies=_WRITE_RUN)
def log_params(request: Request, run_id: str, body: ParamsIn) -> None:
    """Log params (fixed once logged unless ``allow_change``)."""
    values = restore_nonfinite(body.values, body.nonfinite)
    _store(request).log_params(run_id, values, allow_change=body.allow_change)


@router.post("/runs/{run_id}/tags", status_code=204, dependencies=_WRITE_RUN)
def set_tags(request: Request, run_id: str, body: TagsIn) -> None:
    """Add or change tags."""
    _store(request).set_tags(run_id, body.tags)


@router.delete("/runs/{run_id}/tags/{key:path}", status_code=204, dependencies=_WRITE_RUN)
def delete_tag(request: Request, run_id: str, key: str) -> None:
    """Remove a tag (no error when it is not set)."""
    _store(request).delete_tag(run_id, key)


@router.post("/runs/{run_id}/summary", status_code=204, dependencies=_WRITE_RUN)
def set_summary(request: Request, run_id: str, body: ValuesIn) -> None:
    """Set summary values explicitly (they override the metrics' last values)."""
    _store(request).set_summary(run_id, restore_nonfinite(body.values, body.nonfinite))


@router.post("/runs/{run_id}/metadata", status_code=204, dependencies=_WRITE_RUN)
def merge_metadata(request: Request, run_id: str, body: ValuesIn) -> None:
    """Add or replace top-level keys of the run's captured metadata."""
    _store(request).merge_metadata(run_id, restore_nonfinite(body.values, body.nonfinite))


@router.post("/runs/{run_id}/logs", status_code=204, dependencies=_WRITE_RUN)
def append_logs(request: Request, run_id: str, body: LogsIn) -> None:
    """Append a chunk of console output."""
    _store(request).append_logs(run_id, body.text)


@router.get("/runs/{run_id}/logs", dependencies=_READ_RUN)
def read_logs(
    request: Request, run_id: str, after: Annotated[int, Query(ge=0)] = 0
) -> list[tuple[int, str]]:
    """Console output chunks ``[seq, text]`` after sequence number ``after``."""
    store = _store(request)
    chunks = list(store.read_logs(run_id, after=after))
    if not chunks:
        store.run_project(run_id)  # an unknown run is a 404, not []
    return chunks


# -- metrics -------------------------------------------------------------------------


@router.post(
    "/runs/{run_id}/metrics",
    status_code=204,
    dependencies=_WRITE_RUN,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {BATCH_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def write_metrics(
    request: Request,
    run_id: str,
    data: Annotated[bytes, Depends(_raw_body)],
    spool_id: str | None = None,
    spool_offset: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """Append a batch of points (a binary frame, see ``encode_batch``), in one
    transaction with the spool offset it brings the run's spool to."""
    if (spool_id is None) != (spool_offset is None):
        raise InvalidValueError("give spool_id and spool_offset together, or neither")
    if spool_id is not None:
        _own_spool(run_id, spool_id)
    batch = decode_batch(data)
    _store(request).write_metrics(run_id, batch, spool_id=spool_id, spool_offset=spool_offset)


@router.get("/runs/{run_id}/metrics", dependencies=_READ_RUN)
def metric_summaries(request: Request, run_id: str) -> dict[str, Any]:
    """Per metric key: last, min, max, count, last step (``MetricSummary`` records)."""
    store = _store(request)
    summaries: dict[str, MetricSummary] = store.metric_summaries(run_id)
    if not summaries:
        store.run_project(run_id)  # an unknown run is a 404, not {}
    # encoded here: a response model would turn a NaN into null
    return {k: to_wire(v) for k, v in summaries.items()}


@router.get(
    "/runs/{run_id}/metrics/{key:path}",
    dependencies=_READ_RUN,
    response_model=None,
    responses={200: {"content": {BATCH_TYPE: {}}}},
)
def metric_history(
    request: Request,
    run_id: str,
    key: str,
    max_points: Annotated[int | None, Query(ge=1)] = None,
    format: Annotated[str, Query(pattern="^(json|binary)$")] = "json",
) -> list[dict[str, Any]] | Response:
    """The series of ``key`` sorted by step, downsampled to ``max_points`` (min and max of
    every bucket kept). ``format=binary``: the batch frame (``encode_batch``)."""
    series = _store(request).metric_history(run_id, key)
    if max_points is not None:
        series = downsample(series, max_points)
    if format == "json":
        return to_wire(to_points(series))  # type: ignore[no-any-return]
    body = encode_batch({key: series})
    headers: dict[str, str] = {}
    if len(body) > 1024 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)  # level 1: the app's gzip is level 9
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=BATCH_TYPE, headers=headers)


# -- spools --------------------------------------------------------------------------


@router.get("/runs/{run_id}/spools/{spool_id}", dependencies=_READ_RUN)
def spool_offset(request: Request, run_id: str, spool_id: str) -> dict[str, int]:
    """How far into spool ``spool_id`` the store has applied records (0: not at all)."""
    return {"offset": int(_store(request).spool_offset(_own_spool(run_id, spool_id)))}


@router.put("/runs/{run_id}/spools/{spool_id}", status_code=204, dependencies=_WRITE_RUN)
def commit_spool(request: Request, run_id: str, spool_id: str, body: SpoolIn) -> None:
    """Record that the store holds the spool's records up to ``offset``."""
    if body.run_id != run_id:
        raise InvalidValueError(f"body names run {body.run_id!r}, the path {run_id!r}")
    _store(request).commit_spool(_own_spool(run_id, spool_id), run_id, body.offset)


@router.delete("/runs/{run_id}/spools/{spool_id}", status_code=204, dependencies=_WRITE_RUN)
def forget_spool(request: Request, run_id: str, spool_id: str) -> None:
    """Drop the spool's recorded offset."""
    _store(request).forget_spool(_own_spool(run_id, spool_id))
