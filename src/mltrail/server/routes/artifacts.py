"""/api/v1 routes: artifacts (versions, manifests, aliases, run edges) and lineage.

One route per artifact method of :class:`~mltrail.store.sql.store.SqlStore` that the
client uses, answered with our records. A version is recorded only once every object
its manifest lists is stored (the client uploads them first, see
:mod:`mltrail.server.routes.objects`). Readers read and writers write, in the project
named by the ``project`` query parameter (or the body); an artifact named without a
project is found in any project, which then needs a server-wide role.

Versions are named in paths as ``latest``, ``vN`` or an alias.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from mltrail.artifacts.names import validate_name
from mltrail.entities import ArtifactVersion, LineageNode, ManifestEntry
from mltrail.errors import InvalidValueError, ObjectNotFound, PermissionDenied
from mltrail.server.auth import Principal, body_scope, param_scope, require, run_scope

__all__ = ["parse_ref", "router"]

router = APIRouter()

READ = require("reader", param_scope("project"))
WRITE = require("writer", param_scope("project"))
ProjectQ = Query("", description="the artifact's project ('' finds the name in any project)")
MAX_DEPTH = 50


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


def parse_ref(text: str) -> int | str | None:
    """``latest`` -> None, ``v3`` (or ``3``) -> 3, anything else an alias."""
    if text == "latest":
        return None
    digits = text[1:] if text.startswith("v") else text
    if digits.isdecimal():
        return int(digits)
    return validate_name(text, "alias")


def _version(request: Request, project: str, name: str, ref: str) -> ArtifactVersion:
    version: ArtifactVersion = _store(request).get_artifact_version(
        project, validate_name(name), parse_ref(ref)
    )
    return version


# -- versions -------------------------------------------------------------------------


class CreateVersion(BaseModel):
    project: str
    name: str
    type: str = "file"
    digest: str
    size: int = Field(ge=0)
    file_count: int = Field(ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    reference: bool = False
    aliases: list[str] = Field(default_factory=list)


def _check_objects(request: Request, body: CreateVersion) -> None:
    """Refuse a version whose manifest, or any object it lists, is not stored."""
    from mltrail.artifacts.ops import read_manifest
    from mltrail.objects.hashing import validate_oid

    objects = request.app.state.mltrail.objects
    digest = validate_oid(body.digest)
    hint = "upload the files first: run.log_artifact / mltrail artifacts put do"
    if not objects.exists(digest):
        raise ObjectNotFound(
            f"artifact {body.name!r} refused: its manifest (object {digest}) was never uploaded",
            hint=hint,
        )
    entries = read_manifest(objects, digest)  # refuses '..' and absolute paths
    wanted = {e.oid for e in entries if e.ref is None}
    missing = sorted(wanted - objects.exists_many(wanted))
    if missing:
        where = next(e.path for e in entries if e.oid == missing[0])
        raise ObjectNotFound(
            f"artifact {body.name!r} refused: {len(missing)} of its {len(wanted)} objects "
            f"were never uploaded (e.g. {where!r}, object {missing[0]})",
            hint=hint,
        )
    size, count = sum(e.size for e in entries), len(entries)
    if (size, count) != (body.size, body.file_count):
        raise InvalidValueError(
            f"artifact {body.name!r} refused: its manifest lists {count} files of {size} "
            f"bytes, not {body.file_count} files of {body.size} bytes",
        )


@router.post(
    "/artifacts", status_code=201, response_model=None,
    dependencies=[require("writer", body_scope("project"))],
)  # fmt: skip
def create_artifact_version(body: CreateVersion, request: Request) -> ArtifactVersion:
    """Record the next version of an artifact whose objects are all stored (else
    ``ObjectNotFound``); a manifest equal to the latest version's reuses that version."""
    from mltrail.artifacts.ops import metadata_dict

    principal: Principal = request.state.principal
    validate_name(body.project, "project name")
    validate_name(body.name)
    validate_name(body.type, "artifact type")
    aliases = tuple(validate_name(a, "alias") for a in body.aliases)
    store = _store(request)
    if body.run_id is not None:
        run_project = store.run_project(body.run_id)
        if run_project != body.project:
            raise InvalidValueError(
                f"run {body.run_id} is in project {run_project!r}, not {body.project!r}",
                hint="log a run's artifacts in the run's project",
            )
    _check_objects(request, body)
    version: ArtifactVersion = store.create_artifact_version(
        project=body.project, name=body.name, type=body.type, digest=body.digest,
        size=body.size, file_count=body.file_count, metadata=metadata_dict(body.metadata),
        run_id=body.run_id, reference=body.reference, aliases=aliases, actor=principal.name,
    )  # fmt: skip
    return version


@router.get("/artifacts", response_model=None, dependencies=[READ])
def list_artifacts(
    request: Request, project: str | None = Query(None), type: str | None = Query(None)
) -> list[ArtifactVersion]:
    """The latest version of every artifact (of a project, of a type)."""
    found: list[ArtifactVersion] = _store(request).list_artifacts(project or None, type)
    return found


@router.get("/artifacts:search", response_model=None, dependencies=[READ])
def search_artifacts(
    request: Request,
    project: str | None = Query(None),
    query: str | None = Query(None),
    limit: int = Query(1000, ge=1),
) -> list[ArtifactVersion]:
    """Artifact versions matching ``query`` (e.g. ``type = 'model' and alias = 'best'``)."""
    cap = int(request.app.state.mltrail.config.max_page_size)
    found: list[ArtifactVersion] = _store(request).search_artifacts(
        project or None, query, limit=min(limit, cap)
    )
    return found


@router.get("/artifacts:diff", response_model=None, dependencies=[READ])
def diff_artifacts(
    request: Request, a: str = Query(...), b: str = Query(...), project: str = ProjectQ
) -> dict[str, list[str]]:
    """Paths ``added``, ``removed`` and ``modified`` from spec ``a`` to spec ``b``."""
    from mltrail.artifacts.ops import diff_manifests

    manifests = [_manifest(request, project, spec) for spec in (a, b)]
    return diff_manifests(*manifests)


def _manifest(request: Request, project: str, spec: str) -> list[ManifestEntry]:
    from mltrail.artifacts.names import parse_spec, split_project
    from mltrail.artifacts.ops import read_manifest

    proj, rest = split_project(spec)
    if proj and proj != project and request.app.state.mltrail.config.auth:
        principal: Principal = request.state.principal
        if not principal.allows("reader", proj):
            raise PermissionDenied(f"{principal.name} may not read project {proj!r}")
    name, ref = parse_spec(rest)
    version = _store(request).get_artifact_version(proj or project, name, ref)
    return read_manifest(request.app.state.mltrail.objects, version.digest)


@router.get("/artifacts/{name}/versions", response_model=None, dependencies=[READ])
def artifact_versions(request: Request, name: str, project: str = ProjectQ) -> Any:
    """Every version of an artifact, oldest first."""
    return _store(request).artifact_versions(project, validate_name(name))


@router.get("/artifacts/{name}/versions/{ref}", response_model=None, dependencies=[READ])
def get_artifact_version(
    request: Request, name: str, ref: str, project: str = ProjectQ
) -> ArtifactVersion:
    """One version: ``latest``, ``vN`` or an alias."""
    return _version(request, project, name, ref)


@router.get("/artifacts/{name}/versions/{ref}/manifest", response_model=None, dependencies=[READ])
def artifact_manifest(
    request: Request, name: str, ref: str, project: str = ProjectQ
) -> list[ManifestEntry]:
    """The files of a version: path, object id, size (and where a reference stays)."""
    from mltrail.artifacts.ops import read_manifest

    version = _version(request, project, name, ref)
    return read_manifest(request.app.state.mltrail.objects, version.digest)


@router.get("/artifacts/{name}/versions/{ref}/runs", response_model=None, dependencies=[READ])
def artifact_runs(
    request: Request, name: str, ref: str, project: str = ProjectQ
) -> dict[str, list[str]]:
    """Run ids that produced (``out``) and consumed (``in``) the version."""
    v = _version(request, project, name, ref)
    runs: dict[str, list[str]] = _store(request).artifact_runs(v.project, v.name, v.version)
    return runs


# -- aliases ----------------------------------------------------------------------------


class AliasMove(BaseModel):
    version: int | None = Field(None, ge=0)
    reason: str | None = None


@router.put("/artifacts/{name}/aliases/{alias}", status_code=204, dependencies=[WRITE])
def set_alias(
    request: Request, name: str, alias: str, body: AliasMove, project: str = ProjectQ
) -> None:
    """Point ``alias`` at ``version`` (null removes it); the move is recorded."""
    principal: Principal = request.state.principal
    _store(request).set_alias(
        project, validate_name(name), validate_name(alias, "alias"), body.version,
        actor=principal.name, reason=body.reason,
    )  # fmt: skip


@router.get("/artifacts/{name}/alias-history", response_model=None, dependencies=[READ])
def alias_history(request: Request, name: str, project: str = ProjectQ) -> Any:
    """Every alias move of the artifact, oldest first."""
    return _store(request).alias_history(project, validate_name(name))


# -- runs' edges --------------------------------------------------------------------------


class RunInput(BaseModel):
    project: str
    name: str
    version: int = Field(ge=0)


@router.post(
    "/runs/{run_id}/inputs", status_code=204, dependencies=[require("writer", run_scope())]
)
def add_run_input(request: Request, run_id: str, body: RunInput) -> None:
    """Record that the run used an artifact version (it needs reading that project)."""
    principal: Principal = request.state.principal
    if request.app.state.mltrail.config.auth and not principal.allows("reader", body.project):
        raise PermissionDenied(
            f"{principal.name} may not use artifacts of project {body.project!r}",
            hint="ask an admin for the reader role in that project",
        )
    _store(request).add_run_input(run_id, body.project, validate_name(body.name), body.version)


@router.get(
    "/runs/{run_id}/artifacts", response_model=None, dependencies=[require("reader", run_scope())]
)
def run_artifacts(request: Request, run_id: str) -> dict[str, list[ArtifactVersion]]:
    """``{"in": [...], "out": [...]}``: what the run used and logged."""
    edges: dict[str, list[ArtifactVersion]] = _store(request).run_artifacts(run_id)
    return edges


# -- lineage ------------------------------------------------------------------------------


@router.get("/lineage", response_model=None, dependencies=[READ])
def lineage(
    request: Request,
    target: str = Query(..., description="a run id, [project/]name:vN, or a model name@ref"),
    direction: str = Query("up", pattern="^(up|down)$"),
    depth: int = Query(3, ge=0, le=MAX_DEPTH),
    project: str | None = Query(None),
) -> LineageNode:
    """The graph around ``target`` (``up`` to inputs, ``down`` to outputs and the model
    versions registered from them): the tree ``Client.lineage`` builds embedded."""
    from mltrail.client.client import Client

    client = Client(request.app.state.mltrail.config.store_uri)  # the same pooled store
    return client.lineage(target, direction, depth, project)
