"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/...``) over our object store.

A run's artifact root is ``mlflow-artifacts:/<experiment id>/<run id>/artifacts``; MLflow's
client turns it into ``<server>/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts``
and PUTs each file there. Each file becomes an object of our content-addressed store and
the run's files form one artifact, ``mlflow-artifacts-<run id>`` (type ``file``), of the
run's project: every upload adds a version whose manifest is the previous one plus the
file, so ``mltrail artifacts`` shows it and the same bytes are stored once.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from mltrail.artifacts.names import validate_relpath
from mltrail.artifacts.ops import MANIFEST_FORMAT, read_manifest
from mltrail.entities import ArtifactVersion, ManifestEntry
from mltrail.errors import ArtifactNotFound, ConflictError, InvalidArtifactPath, NotFoundError
from mltrail.server.auth import Scope, require
from mltrail.server.mlflow.common import MlflowRoute, run_project, store_of

__all__ = ["artifact_name", "locate", "router", "run_tree", "save_tree"]

router = APIRouter(route_class=MlflowRoute)
ARTIFACT_TYPE = "file"
_CHUNK = 1024 * 1024


def artifact_name(run_id: str) -> str:
    """The name of the artifact that holds a run's MLflow artifacts."""
    return f"mlflow-artifacts-{run_id}"


def locate(path: str) -> tuple[str, str, str]:
    """``<exp>/<run>/artifacts[/<rel>]`` -> (experiment id, run id, relative path or "")."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[1]:
        raise InvalidArtifactPath(
            f"artifact path {path!r} is not <experiment id>/<run id>/artifacts/<path>",
            hint="use the run's artifact_uri as MLflow's client does",
        )
    rel = parts[3].strip("/") if len(parts) > 3 else ""
    if rel:
        validate_relpath(rel)
    return parts[0], parts[1], rel


def run_tree(store: Any, objects: Any, run_id: str) -> tuple[ArtifactVersion | None, list[Any]]:
    """The latest version of a run's MLflow artifact tree and its manifest entries."""
    project = run_project(store, run_id)
    try:
        version = store.get_artifact_version(project, artifact_name(run_id))
    except ArtifactNotFound:
        return None, []
    return version, read_manifest(objects, version.digest)


def save_tree(store: Any, objects: Any, run_id: str, entries: list[ManifestEntry]) -> Any:
    """Store a manifest as the next version of the run's tree (or a given artifact)."""
    files = [[e.path, e.oid, e.size] for e in sorted(entries, key=lambda e: e.path)]
    data = json.dumps({"format": MANIFEST_FORMAT, "files": files}, separators=(",", ":"))
    info = objects.put_bytes(data.encode())
    return store.create_artifact_version(
        project=run_project(store, run_id), name=artifact_name(run_id), type=ARTIFACT_TYPE,
        digest=info.oid, size=sum(e.size for e in entries), file_count=len(entries),
        metadata={"source": "mlflow"}, run_id=run_id, reference=False,
    )  # fmt: skip


def _change(store: Any, objects: Any, run_id: str, rel: str, entry: ManifestEntry | None) -> None:
    """Put ``entry`` at ``rel`` (None: remove everything at or under ``rel``).

    Versions are append-only: when another request added a version between our read and
    our write, ours is based on a stale tree, so read again and redo it (a few times)."""
    for _ in range(20):
        _, entries = run_tree(store, objects, run_id)
        kept = [
            e for e in entries
            if e.path != rel and not (entry is None and e.path.startswith(rel + "/"))
        ]  # fmt: skip
        if entry is not None:
            kept.append(entry)
        elif len(kept) == len(entries):
            return
        save_tree(store, objects, run_id, kept)
        _, now = run_tree(store, objects, run_id)
        have = {(e.path, e.oid) for e in now}
        if entry is None and not any(p == rel or p.startswith(rel + "/") for p, _ in have):
            return
        if entry is not None and (entry.path, entry.oid) in have:
            return
    raise ConflictError(
        f"could not update the artifacts of run {run_id}: too many concurrent uploads",
        hint="upload again",
    )


def _path_scope() -> Scope:
    """The project of the run named in the artifact path (path parameter or ``?path=``)."""

    async def scope(request: Request) -> str | None:
        path = request.path_params.get("path") or request.query_params.get("path") or ""
        try:
            _, run_id, _ = locate(str(path))
            return await run_in_threadpool(run_project, store_of(request), run_id)
        except (NotFoundError, InvalidArtifactPath):
            return None

    return scope


@router.put("/artifacts/{path:path}", dependencies=[require("writer", _path_scope())])
async def upload_artifact(path: str, request: Request) -> dict[str, Any]:
    """Store one file (the request body) at ``path`` in the run's artifacts."""
    _, run_id, rel = locate(path)
    if not rel:
        raise InvalidArtifactPath("an upload needs a file path under the run's artifacts")
    state = request.app.state.mltrail
    store = state.store
    await run_in_threadpool(store.get_run, run_id)  # 404 before reading the body
    fd, tmp = tempfile.mkstemp(prefix="mlflow-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                if chunk:
                    await run_in_threadpool(fh.write, chunk)

        def finish() -> None:
            objects = state.objects
            info = objects.put_file(tmp)
            _change(store, objects, run_id, rel, ManifestEntry(rel, info.oid, info.size))

        await run_in_threadpool(finish)
    finally:
        os.unlink(tmp)
    return {}


def _stream(objects: Any, oid: str) -> Iterator[bytes]:
    with objects.open(oid) as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


@router.get("/artifacts/{path:path}", dependencies=[require("reader", _path_scope())])
def download_artifact(path: str, request: Request) -> StreamingResponse:
    """The bytes of one file of a run's artifacts."""
    _, run_id, rel = locate(path)
    objects = request.app.state.mltrail.objects
    _, entries = run_tree(store_of(request), objects, run_id)
    for e in entries:
        if e.path == rel:
            return StreamingResponse(
                _stream(objects, e.oid),
                media_type="application/octet-stream",
                headers={"Content-Length": str(e.size)},
            )
    raise ArtifactNotFound(f"run {run_id} has no artifact file {rel!r}")


@router.get("/artifacts", dependencies=[require("reader", _path_scope())])
def list_artifacts(request: Request, path: str = Query("")) -> dict[str, Any]:
    """The files and folders directly under ``path`` (a file lists itself)."""
    _, run_id, rel = locate(path)
    objects = request.app.state.mltrail.objects
    _, entries = run_tree(store_of(request), objects, run_id)
    files: dict[str, dict[str, Any]] = {}
    prefix = rel + "/" if rel else ""
    for e in entries:
        if e.path == rel:
            return {"files": [{"path": posixpath.basename(rel), "is_dir": False,
                               "file_size": e.size}]}  # fmt: skip
        if not e.path.startswith(prefix):
            continue
        head, sep, _ = e.path[len(prefix) :].partition("/")
        if sep:
            files.setdefault(head, {"path": head, "is_dir": True})
        else:
            files[head] = {"path": head, "is_dir": False, "file_size": e.size}
    return {"files": [files[k] for k in sorted(files)]}


@router.delete("/artifacts/{path:path}", dependencies=[require("writer", _path_scope())])
def delete_artifact(path: str, request: Request) -> dict[str, Any]:
    """Remove a file or a folder from the run's artifacts (the objects stay for gc)."""
    _, run_id, rel = locate(path)
    state = request.app.state.mltrail
    _change(state.store, state.objects, run_id, rel, None)
    return {}
