"""The read side: ``mltrail.Client()`` looks at runs in any store."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mltrail.config import resolve_uri
from mltrail.entities import MetricPoint, MetricSummary, Project, RunRecord
from mltrail.errors import InvalidValueError
from mltrail.series import downsample, to_points
from mltrail.store import Store, open_store

__all__ = ["Client", "ProjectInfo"]


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    created_at: float
    run_count: int


class Client:
    """Query runs, metrics and projects.

    >>> client = mltrail.Client()  # doctest: +SKIP
    >>> run = client.get_run("k3j2...")  # doctest: +SKIP
    >>> [p.value for p in client.metric_history(run.id, "loss", max_points=500)]  # doctest: +SKIP
    """

    def __init__(self, uri: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self._store: Store = open_store(self.uri)

    @property
    def store(self) -> Store:
        return self._store

    def get_run(self, run_id: str) -> RunRecord:
        """A run with its config, tags, summary and metric summaries."""
        return self._store.get_run(run_id)

    def list_runs(self, project: str | None = None, *, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (all projects when ``project`` is None)."""
        return self._store.list_runs(project, limit=limit)

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
        series = self._store.metric_history(run_id, key)
        if max_points is not None:
            if max_points < 1:
                raise InvalidValueError("max_points must be at least 1")
            series = downsample(series, max_points)
        return to_points(series)

    def mark_crashed(self, older_than_s: float) -> list[str]:
        """Mark runs without a heartbeat for ``older_than_s`` seconds as crashed."""
        return self._store.mark_stale_runs_crashed(time.time() - older_than_s)
