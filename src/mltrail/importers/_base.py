"""What every importer shares: deterministic run ids, writing a run straight into the
store with its original times, and the report of what was imported or skipped.

Idempotence: an imported run's id is derived from its source id
(``<source>-<24 hex of BLAKE2b("<source>:<source id>")>``), and the run is marked
complete (``metadata.imported_from.complete``) only after everything was written. A
second import finds the complete run and skips it; a run left half-written by an
interrupted import is written again, which converges (params and tags are set, metric
points at the same step keep the last value, artifacts with the same files reuse their
version).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import ExtraNotInstalled, InvalidValueError, RunAlreadyExists, RunNotFound
from mltrail.series import Series

if TYPE_CHECKING:
    from mltrail.client.client import Client
    from mltrail.entities import ArtifactVersion

__all__ = [
    "NULL_TRACKER",
    "ImportReport",
    "NullTracker",
    "RunWriter",
    "Tracker",
    "parse_param",
    "project_name",
    "require",
    "source_folder",
]

_CHUNK = 100_000  # metric points per write


@dataclass
class ImportReport:
    """What an import did: one entry per run or model version."""

    source: str
    imported: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, source_id: str, target: str, **extra: Any) -> None:
        self.imported.append({"kind": kind, "source_id": source_id, "target": target, **extra})

    def skip(self, kind: str, source_id: str, reason: str) -> None:
        self.skipped.append({"kind": kind, "source_id": source_id, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "imported": self.imported, "skipped": self.skipped}


class Tracker:
    """Progress callbacks an importer calls (the CLI draws a Rich progress bar)."""

    def total(self, count: int, what: str) -> None: ...

    def advance(self, label: str) -> None: ...


class NullTracker(Tracker):
    """No progress display."""


NULL_TRACKER = NullTracker()


def require(module: str, extra: str, purpose: str) -> Any:
    """Import an optional dependency, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExtraNotInstalled(module.split(".")[0], extra, purpose) from None


def source_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` resolved; it must be a folder (``what`` says which one)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidValueError(f"{path} is not a folder", hint=f"give {what}")
    return folder


def project_name(name: str) -> str:
    """A source's project/experiment name as an mltrail project: ``/`` (which artifact
    specs use between project and name) becomes ``-``, control characters go."""
    clean = "".join(ch for ch in name if ch.isprintable()).replace("/", "-").strip("- ")
    return clean[:250] or "default"


def parse_param(text: str) -> Any:
    """A parameter stored as text (MLflow) in its JSON type when it reads as a JSON
    number, boolean or null, or as Python's ``True``/``False``/``None``; else the text."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else text


class RunWriter:
    """Writes imported runs and artifacts into ``client``'s store."""

    def __init__(self, client: Client, source: str) -> None:
        self.client = client
        self.store: Any = client.store
        self.source = source

    def run_id(self, source_id: str) -> str:
        digest = hashlib.blake2b(f"{self.source}:{source_id}".encode(), digest_size=12)
        return f"{self.source[:12]}-{digest.hexdigest()}"

    def complete(self, run_id: str) -> bool:
        """Whether an earlier import wrote this run completely."""
        try:
            record = self.store.get_run(run_id)
        except RunNotFound:
            return False
        return bool(record.metadata.get("imported_from", {}).get("complete"))

    def exists(self, run_id: str) -> bool:
        try:
            self.store.get_run(run_id)
        except RunNotFound:
            return False
        return True

    def create(
        self,
        run_id: str,
        source_id: str,
        *,
        project: str,
        name: str | None,
        started_at: float,
        user: str | None = None,
        tags: Mapping[str, str] | None = None,
        notes: str = "",
        parent_id: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the run (once; a half-imported run is reused)."""
        from mltrail.client.values import check_key

        origin = {"source": self.source, "id": source_id, "complete": False}
        clean_tags = {check_key(k, "tag"): str(v) for k, v in (tags or {}).items() if k.strip()}
        clean_tags[f"mltrail.import.{self.source}"] = source_id
        if parent_id is not None and not self.exists(parent_id):
            parent_id = None
        try:
            self.store.create_run(
                run_id=run_id, project=project, name=name or None, user=user, group=group,
                job_type=job_type, parent_id=parent_id, notes=notes, tags=clean_tags,
                metadata={**(metadata or {}), "imported_from": origin}, started_at=started_at,
            )  # fmt: skip
        except RunAlreadyExists:
            self.store.set_tags(run_id, clean_tags)

    def params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mltrail.client.values import check_key, param_value

        clean = {}
        for key, value in params.items():
            if not str(key).strip() or len(str(key)) > 250:
                continue
            clean[check_key(str(key), "param")] = param_value(key, value)
        if clean:
            self.store.log_params(run_id, clean, allow_change=True)

    def metrics(self, run_id: str, key: str, points: Iterable[tuple[int, float, float]]) -> int:
        """Write ``(step, value, timestamp)`` points of one metric, sorted by step (the
        last of equal steps wins); returns how many were written."""
        ordered = sorted(points, key=lambda p: p[0])
        for start in range(0, len(ordered), _CHUNK):
            part = ordered[start : start + _CHUNK]
            series = Series(
                array("q", (p[0] for p in part)),
                array("d", (float(p[1]) for p in part)),
                array("d", (float(p[2]) for p in part)),
            )
            self.store.write_metrics(run_id, {key: series})
        return len(ordered)

    def summary(self, run_id: str, values: Mapping[str, Any]) -> None:
        from mltrail.client.values import param_value

        if values:
            self.store.set_summary(run_id, {k: param_value(k, v) for k, v in values.items()})

    def artifact(
        self,
        run_id: str | None,
        project: str,
        path: str | os.PathLike[str],
        *,
        name: str,
        type: str = "file",
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactVersion:
        from mltrail.artifacts.hashcache import hash_cache_path
        from mltrail.artifacts.ops import log_files, metadata_dict

        objects = self.client._objects()
        hash_cache = None
        if self.client.uri.startswith("sqlite:///"):
            hash_cache = hash_cache_path(self.client.uri)
        digest, size, count = log_files(objects, Path(path), hash_cache=hash_cache)
        version: ArtifactVersion = self.store.create_artifact_version(
            project=project, name=name, type=type, digest=digest, size=size, file_count=count,
            metadata=metadata_dict(metadata), run_id=run_id, reference=False, aliases=(),
            actor=None,
        )  # fmt: skip
        return version

    def finish(self, run_id: str, source_id: str, *, status: str, ended_at: float | None,
               exit_code: int | None = None, reason: str | None = None) -> None:  # fmt: skip
        """Record the final status and times, then mark the run complete."""
        self.store.update_run(
            run_id, status=status, ended_at=ended_at, exit_code=exit_code, exit_reason=reason,
            heartbeat_at=ended_at,
        )  # fmt: skip
        origin = {"source": self.source, "id": source_id, "complete": True}
        self.store.merge_metadata(run_id, {"imported_from": origin})
