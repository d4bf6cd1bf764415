"""The read side: ``mltrail.Client()`` looks at runs in any store."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.client.registry import RegistryClientMixin
from mltrail.client.webhooks import WebhooksClientMixin
from mltrail.config import objects_uri, resolve_uri
from mltrail.entities import (
    AliasEvent,
    ArtifactVersion,
    LineageNode,
    ManifestEntry,
    MetricPoint,
    MetricSummary,
    ModelVersion,
    Project,
    RunRecord,
)
from mltrail.errors import InvalidValueError
from mltrail.series import downsample, to_points
from mltrail.store import Store, open_store

if TYPE_CHECKING:
    from mltrail.objects import ObjectStore
    from mltrail.objects.gc import GcReport

__all__ = ["Client", "ProjectInfo", "RunPage"]


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    created_at: float
    run_count: int


class RunPage(list[RunRecord]):
    """One page of search results; ``next_cursor`` fetches the next (None: no more)."""

    next_cursor: str | None = None


def _frame(runs: list[RunRecord]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        from mltrail.errors import ExtraNotInstalled

        raise ExtraNotInstalled("pandas", "pandas", "search_runs(as_frame=True)") from None
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "id": r.id, "name": r.name, "project": r.project, "status": r.status,
            "created_at": r.created_at, "duration": r.duration,
        }  # fmt: skip
        row.update({f"params.{k}": v for k, v in r.config.items()})
        row.update({f"metrics.{k}": v for k, v in r.summary.items()})
        row.update({f"tags.{k}": v for k, v in r.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


class Client(RegistryClientMixin, WebhooksClientMixin):
    """Query runs, metrics and projects.

    >>> client = mltrail.Client()  # doctest: +SKIP
    >>> run = client.get_run("k3j2...")  # doctest: +SKIP
    >>> [p.value for p in client.metric_history(run.id, "loss", max_points=500)]  # doctest: +SKIP
    """

    def __init__(self, uri: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self._store: Store = open_store(self.uri)
        self._object_store: ObjectStore | None = None

    @property
    def store(self) -> Store:
        return self._store

    def get_run(self, run_id: str) -> RunRecord:
        """A run with its config, tags, summary and metric summaries."""
        return self._store.get_run(run_id)

    def list_runs(self, project: str | None = None, *, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (all projects when ``project`` is None)."""
        return self._store.list_runs(project, limit=limit)

    def search_runs(
        self,
        project: str | None = None,
        query: str | None = None,
        *,
        order_by: list[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        as_frame: bool = False,
    ) -> Any:
        """Runs matching a query, e.g. ``"metrics.val_acc > 0.9 and params.lr = 0.01"``.

        Returns a list of runs with ``.next_cursor`` (None on the last page); pass it
        back as ``cursor`` for the next page. ``as_frame=True`` gives a pandas DataFrame
        (one row per run: attributes, ``params.*``, ``metrics.*``, ``tags.*``).

        >>> client.search_runs("mnist", "metrics.acc > 0.9")  # doctest: +SKIP
        """
        from mltrail.store.sql.search import decode_cursor, encode_cursor

        if not 1 <= limit <= 10_000:
            raise InvalidValueError("limit must be between 1 and 10000")
        offset = decode_cursor(cursor)
        rows = self._art.search_runs(
            project, query, order_by=order_by, limit=limit + 1, offset=offset
        )
        page = RunPage(rows[:limit])
        page.next_cursor = encode_cursor(offset + limit) if len(rows) > limit else None
        return _frame(page) if as_frame else page

    def count_runs(self, project: str | None = None, query: str | None = None) -> int:
        """How many runs match ``query``."""
        return int(self._art.count_runs(project, query))

    def list_projects(self) -> list[ProjectInfo]:
        return [ProjectInfo(p.name, p.created_at, n) for p, n in self._store.list_projects()]

    def get_project(self, name: str) -> Project:
        return self._store.get_or_create_project(name)

    def metric_keys(self, run_id: str) -> list[str]:
        return sorted(self._store.metric_summaries(run_id))

    def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        return self._store.metric_summaries(run_id)

    def metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None
    ) -> list[MetricPoint]:
        """The series of ``key`` sorted by step (duplicate steps: last write wins).

        With ``max_points``, a downsampled series that keeps each bucket's min and max.
        """
        if max_points is not None and max_points < 1:
            raise InvalidValueError("max_points must be at least 1")
        if max_points is not None and getattr(self._store, "remote", False):
            # the server downsamples: only the kept points cross the network
            remote: Any = self._store
            return to_points(remote.metric_history(run_id, key, max_points=max_points))
        series = self._store.metric_history(run_id, key)
        if max_points is not None:
            series = downsample(series, max_points)
        return to_points(series)

    # -- artifacts ------------------------------------------------------------------

    def _objects(self) -> ObjectStore:
        if self._object_store is None:
            from mltrail.artifacts.ops import register_store
            from mltrail.objects import open_object_store

            self._object_store = open_object_store(objects_uri(self.uri))
            register_store(self._object_store, self.uri)
        return self._object_store

    def _split(self, spec: str, project: str | None) -> tuple[str, str, int | str | None]:
        from mltrail.artifacts.names import parse_spec, split_project

        proj, rest = split_project(spec)
        name, ref = parse_spec(rest)
        return proj or project or "", name, ref

    def list_artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactVersion]:
        """The latest version of every artifact."""
        return self._art.list_artifacts(project, type)  # type: ignore[no-any-return]

    def search_artifacts(
        self, query: str | None = None, project: str | None = None, *, limit: int = 1000
    ) -> list[ArtifactVersion]:
        """Artifact versions matching a query, newest first.

        Fields: ``name``, ``type``, ``version``, ``alias``, ``created``, ``size``,
        ``files``, ``run_id``, ``project``, ``metadata.X``, e.g.
        ``"type = 'model' and metadata.framework = 'torch' and alias = 'best'"``.
        """
        return self._art.search_artifacts(project, query, limit=limit)  # type: ignore[no-any-return]

    def artifact_versions(self, name: str, project: str | None = None) -> list[ArtifactVersion]:
        proj, name, _ = self._split(name, project)
        return self._art.artifact_versions(proj, name)  # type: ignore[no-any-return]

    def get_artifact(self, spec: str, project: str | None = None) -> ArtifactVersion:
        """``name``, ``name:v3``, ``name:best`` or ``project/name:latest``."""
        proj, name, ref = self._split(spec, project)
        return self._art.get_artifact_version(proj, name, ref)  # type: ignore[no-any-return]

    def manifest(self, spec: str, project: str | None = None) -> list[ManifestEntry]:
        from mltrail.artifacts.ops import read_manifest

        return read_manifest(self._objects(), self.get_artifact(spec, project).digest)

    def download_artifact(
        self,
        spec: str,
        root: str | os.PathLike[str] | None = None,
        project: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        from mltrail.artifacts.ops import download

        return download(self._objects(), self.get_artifact(spec, project), root, progress)

    def put_artifact(
        self,
        path: str | os.PathLike[str],
        name: str,
        type: str = "file",
        project: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ArtifactVersion:
        """Log an artifact without a run."""
        from mltrail.artifacts.hashcache import hash_cache_path
        from mltrail.artifacts.names import validate_name
        from mltrail.artifacts.ops import log_files, metadata_dict

        validate_name(name)
        validate_name(type, "artifact type")
        alias_list = tuple(validate_name(a, "alias") for a in (aliases or ()))
        digest, size, count = log_files(
            self._objects(), path, progress=progress, hash_cache=hash_cache_path(self.uri)
        )
        return self._art.create_artifact_version(  # type: ignore[no-any-return]
            project=project or os.environ.get("MLTRAIL_PROJECT") or "default", name=name,
            type=type, digest=digest, size=size, file_count=count,
            metadata=metadata_dict(metadata), run_id=None, reference=False,
            aliases=alias_list, actor=_user(),
        )  # fmt: skip

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | str | None,
        project: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Point ``alias`` at a version (``3``, ``"v3"``); ``None`` removes it. Recorded."""
        from mltrail.artifacts.names import validate_name

        proj, name, _ = self._split(name, project)
        if isinstance(version, str):
            digits = version[1:] if version.startswith("v") else version
            if not digits.isdecimal():
                raise InvalidValueError(f"version {version!r} is not a number like 3 or 'v3'")
            version = int(digits)
        self._art.set_alias(
            proj, name, validate_name(alias, "alias"), version, actor=_user(), reason=reason
        )

    def alias_history(self, name: str, project: str | None = None) -> list[AliasEvent]:
        proj, name, _ = self._split(name, project)
        return self._art.alias_history(proj, name)  # type: ignore[no-any-return]

    def diff_artifacts(
        self, spec_a: str, spec_b: str, project: str | None = None
    ) -> dict[str, list[str]]:
        from mltrail.artifacts.ops import diff_manifests

        return diff_manifests(self.manifest(spec_a, project), self.manifest(spec_b, project))

    def lineage(
        self, target: str, direction: str = "up", depth: int = 3, project: str | None = None
    ) -> LineageNode:
        """The graph around a run id, ``name:vN`` or a model ``name@ref``: ``up`` to
        inputs (model -> artifact -> run -> data), ``down`` to outputs (data -> run ->
        artifact -> the model versions registered from it, with their stage and aliases).
        """
        from mltrail.artifacts.names import split_project
        from mltrail.artifacts.ops import lineage

        if getattr(self._store, "remote", False):  # the server builds it in one request
            remote: Any = self._store
            return remote.lineage(target, direction, depth, project)  # type: ignore[no-any-return]
        if "@" in target:
            version = self.get_model_version(target)
            node = _model_node(version)
            if direction != "up" or depth <= 0:
                return node
            art_project, art_spec = split_project(version.artifact)
            up = lineage(self._art, art_project or "", art_spec, "up", depth - 1)
            return LineageNode(node.kind, node.id, node.label, (up,))
        proj, rest = split_project(target)
        tree = lineage(self._art, proj or project or "", rest, direction, depth)
        return tree if direction == "up" else self._add_models(tree, proj or project or "")

    def _add_models(self, node: LineageNode, project: str) -> LineageNode:
        from mltrail.artifacts.names import parse_spec

        children = tuple(self._add_models(c, project) for c in node.children)
        if node.kind == "artifact":
            name, ref = parse_spec(node.id)
            if isinstance(ref, int):
                models = self._art.models_of_artifact(project, name, ref)
                children += tuple(_model_node(m) for m in models)
        return LineageNode(node.kind, node.id, node.label, children)

    def cache_prune(self, max_bytes: int | None = None) -> tuple[int, int]:
        from mltrail.artifacts.ops import cache_prune

        return cache_prune(max_bytes)

    def gc(self, dry_run: bool = True, grace_seconds: float = 3600) -> GcReport:
        """Delete objects no artifact references (a dry run unless ``dry_run=False``)."""
        from mltrail.artifacts.ops import other_stores, referenced_objects
        from mltrail.errors import ConfigurationError
        from mltrail.objects.gc import collect_garbage

        objects = self._objects()
        shared = other_stores(objects, self.uri)
        if shared and not dry_run:
            raise ConfigurationError(
                f"the objects in {objects.uri} are also used by {', '.join(shared)}; gc "
                "knows only this store's references and would delete theirs",
                hint="give each store its own MLTRAIL_OBJECTS, or remove stale lines from "
                f"{objects.uri}/.mltrail-stores",
            )
        now = time.time()  # before the references are read: anything newer is kept
        refs = referenced_objects(self._art, objects)
        return collect_garbage(objects, refs, grace_seconds, dry_run, now=now)

    @property
    def _art(self) -> Any:
        return self._store

    def mark_crashed(self, older_than_s: float) -> list[str]:
        """Mark runs without a heartbeat for ``older_than_s`` seconds as crashed."""
        return self._store.mark_stale_runs_crashed(time.time() - older_than_s)


def _model_node(v: ModelVersion) -> LineageNode:
    marks = ", ".join((v.stage, *v.aliases))
    return LineageNode("model", v.spec, f"model {v.spec} ({v.label}) [{marks}]")
