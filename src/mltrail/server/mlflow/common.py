"""What every MLflow route shares: MLflow's error JSON, access scopes, id mapping.

MLflow's client parses ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}``
and decides on the code (``set_experiment`` creates the experiment when the lookup says
RESOURCE_DOES_NOT_EXIST, ``register_model`` goes on when the model
RESOURCE_ALREADY_EXISTS). :class:`MlflowRoute` turns our exceptions into that form for
the MLflow routes only; the rest of the server keeps its own error JSON.

An MLflow experiment is one of our projects: its id is the project's integer id, except
that the project named ``Default`` is experiment ``"0"``, which always exists.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from mltrail.entities import Project
from mltrail.errors import (
    AlreadyExists,
    AuthenticationRequired,
    ConflictError,
    MltrailError,
    NotFoundError,
    PermissionDenied,
    ProjectNotFound,
    RequestTooLarge,
    RunAlreadyExists,
    StoreUnavailable,
    ValidationError,
)
from mltrail.server.auth import Scope

__all__ = [
    "DEFAULT_EXPERIMENT",
    "MlflowRoute",
    "error_code",
    "experiment_id",
    "experiment_scope",
    "experiments_scope",
    "ms",
    "project_of",
    "run_scope",
    "seconds",
    "store_of",
]

DEFAULT_EXPERIMENT = "Default"
log = logging.getLogger("mltrail.server.mlflow")


def error_code(exc: MltrailError) -> str:
    """MLflow's ``error_code`` for one of our exceptions (by class, most specific first)."""
    if isinstance(exc, NotFoundError):
        return "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, (AlreadyExists, RunAlreadyExists)):
        return "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, ConflictError):
        return "INVALID_STATE"
    if isinstance(exc, AuthenticationRequired):
        return "UNAUTHENTICATED"
    if isinstance(exc, PermissionDenied):
        return "PERMISSION_DENIED"
    if isinstance(exc, RequestTooLarge):
        return "REQUEST_LIMIT_EXCEEDED"
    if isinstance(exc, ValidationError):
        return "INVALID_PARAMETER_VALUE"
    if isinstance(exc, StoreUnavailable):
        return "TEMPORARILY_UNAVAILABLE"
    return "INTERNAL_ERROR"


def mlflow_error(exc: MltrailError) -> JSONResponse:
    message = exc.message if exc.hint is None else f"{exc.message} (hint: {exc.hint})"
    body = {"error_code": error_code(exc), "message": message}
    return JSONResponse(body, status_code=exc.http_status)


def _validation_error(exc: RequestValidationError) -> ValidationError:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return ValidationError(
        "invalid request: " + "; ".join(parts),
        hint="see MLflow's REST API reference for the request's fields",
    )


class MlflowRoute(APIRoute):
    """An API route whose errors are MLflow's error JSON (the client parses them).

    Answers are not passed through a response model (pydantic would turn NaN into
    null): the server's response class writes non-finite floats as ``"NaN"`` and
    ``"Infinity"``, which is how MLflow's client reads them."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return mlflow_error(_validation_error(exc))
            except MltrailError as exc:
                if exc.http_status >= 500:
                    log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
                return mlflow_error(exc)

        return route


# -- time ------------------------------------------------------------------------------


def ms(t: float | None) -> int | None:
    """Our seconds as MLflow's milliseconds."""
    return None if t is None else round(t * 1000)


def seconds(t: int | float | str | None) -> float | None:
    """MLflow's milliseconds as our seconds."""
    if t is None or t == "":
        return None
    value = float(t)
    if not math.isfinite(value):
        raise ValidationError(f"timestamp {t!r} is not a number of milliseconds")
    return value / 1000.0


# -- experiments <-> projects ----------------------------------------------------------


def store_of(request: Request) -> Any:
    """The server's metadata store."""
    return request.app.state.mltrail.store


def experiment_id(project: Project) -> str:
    """The MLflow experiment id of a project."""
    return "0" if project.name == DEFAULT_EXPERIMENT else str(project.id)


def project_of(store: Any, exp_id: str | int | None) -> Project:
    """The project an experiment id names (``"0"``: ``Default``, created if needed)."""
    text = "" if exp_id is None else str(exp_id).strip()
    if text == "0":
        project: Project = store.get_or_create_project(DEFAULT_EXPERIMENT)
        return project
    if not text.isdecimal():
        raise ProjectNotFound(
            f"no experiment with id {text!r}",
            hint="experiment ids are the digits MLflow's create_experiment returned",
        )
    project = store.project_by_id(int(text))
    return project


# -- access scopes ---------------------------------------------------------------------


async def _field(request: Request, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = request.query_params.get(name)
        if value:
            return value
    if request.method in ("POST", "PATCH", "DELETE", "PUT"):
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return None
        if isinstance(body, dict):
            for name in names:
                value = body.get(name)
                if value:
                    return str(value)
    return None


def experiment_scope() -> Scope:
    """The project of the ``experiment_id`` in the query or the JSON body."""

    async def scope(request: Request) -> str | None:
        value = await _field(request, ("experiment_id",))
        if value is None:
            return None
        store = store_of(request)
        try:
            project = await run_in_threadpool(project_of, store, value)
        except NotFoundError:
            return None  # the route says what is missing
        return project.name

    return scope


def experiments_scope() -> Scope:
    """The project of the body's ``experiment_ids`` when they name one (else global)."""

    async def scope(request: Request) -> str | None:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return None
        ids = body.get("experiment_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            return None
        store = store_of(request)
        try:
            names = {(await run_in_threadpool(project_of, store, i)).name for i in ids}
        except NotFoundError:
            return None
        return names.pop() if len(names) == 1 else None

    return scope


def run_project(store: Any, run_id: str) -> str:
    """The project name of a run (cheap when the store has a lookup for it)."""
    lookup = getattr(store, "run_project", None)
    if lookup is not None:
        return str(lookup(run_id))
    return str(store.get_run(run_id).project)


def run_scope(names: tuple[str, ...] = ("run_id", "run_uuid")) -> Scope:
    """The project of the run named in the query or the JSON body."""

    async def scope(request: Request) -> str | None:
        value = await _field(request, names)
        if value is None:
            return None
        try:
            return await run_in_threadpool(run_project, store_of(request), value)
        except NotFoundError:
            return None

    return scope
