"""Offline mode: a store that keeps the run in memory and writes every change to the spool.

``mltrail.init(mode="offline")`` (or ``MLTRAIL_MODE=offline``) logs without touching any
database: the spool file under ``<dir>/spool/`` receives the run's creation, params,
tags, summary, metrics, console output and final status. ``mltrail sync`` later applies
it to any store, exactly once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from mltrail.client.spool import SpoolWriter
from mltrail.entities import MetricSummary, Project, RunRecord
from mltrail.errors import ConfigConflictError, RunNotFound
from mltrail.series import Series
from mltrail.store.encoding import encode_param

__all__ = ["OfflineStore"]


class OfflineStore:
    """The :class:`mltrail.store.Store` of one offline run."""

    offline = True

    def __init__(self, spool: SpoolWriter, target_uri: str) -> None:
        self.uri = f"offline:{target_uri}"
        self._spool = spool
        self._run: RunRecord | None = None
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._summary: dict[str, Any] = {}
        self._metadata: dict[str, Any] = {}
        self._metrics: dict[str, MetricSummary] = {}
        self._fields: dict[str, Any] = {}

    def close(self) -> None:
        return None

    def get_or_create_project(self, name: str) -> Project:
        return Project(id=0, name=name, created_at=time.time())

    def list_projects(self) -> list[tuple[Project, int]]:
        return []

    def create_run(self, **kwargs: Any) -> RunRecord:
        if kwargs["name"] is None:  # decided now, so that sync keeps the same name
            kwargs["name"] = f"offline-{kwargs['run_id'][:6]}"
        self._spool.append("create_run", kwargs)
        self._tags = dict(kwargs["tags"])
        self._metadata = dict(kwargs["metadata"])
        self._fields = {
            "id": kwargs["run_id"],
            "project": kwargs["project"],
            "name": kwargs["name"],
            "status": "running",
            "created_at": time.time(),
            "started_at": kwargs["started_at"],
            "ended_at": None,
            "heartbeat_at": kwargs["started_at"],
            "exit_reason": None,
            "exit_code": None,
            "user": kwargs["user"],
            "group": kwargs["group"],
            "job_type": kwargs["job_type"],
            "parent_id": kwargs["parent_id"],
            "notes": kwargs["notes"],
        }
        return self.get_run(kwargs["run_id"])

    def get_run(self, run_id: str) -> RunRecord:
        if not self._fields or self._fields["id"] != run_id:
            raise RunNotFound(f"offline mode knows only its own run, not {run_id!r}")
        return RunRecord(
            **self._fields,
            config=dict(sorted(self._params.items())),
            tags=dict(sorted(self._tags.items())),
            metrics=dict(self._metrics),
            summary_overrides=dict(self._summary),
            metadata=dict(self._metadata),
        )

    def list_runs(self, project: str | None = None, *, limit: int | None = None) -> list[RunRecord]:
        return [self.get_run(self._fields["id"])] if self._fields else []

    def update_run(self, run_id: str, **fields: Any) -> None:
        self._spool.append("update_run", fields)
        self._fields.update({k: v for k, v in fields.items() if k in self._fields})

    def log_params(
        self, run_id: str, params: Mapping[str, Any], *, allow_change: bool = False
    ) -> None:
        if not allow_change:
            for k, v in params.items():
                if k in self._params and encode_param(self._params[k]) != encode_param(v):
                    raise ConfigConflictError(
                        f"param {k!r} of run {run_id} is already {self._params[k]!r}; "
                        f"refusing to change it to {v!r}",
                        hint="pass allow_val_change=True to overwrite on purpose",
                    )
        self._spool.append("params", (dict(params), allow_change))
        self._params.update(params)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._spool.append("tags", dict(tags))
        self._tags.update(tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._spool.append("delete_tag", key)
        self._tags.pop(key, None)

    def set_summary(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._spool.append("summary", dict(values))
        self._summary.update(values)

    def merge_metadata(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._spool.append("metadata", dict(values))
        self._metadata.update(values)

    def append_logs(self, run_id: str, text: str) -> None:
        return None  # the writer already spooled it

    def read_logs(self, run_id: str, *, after: int = 0) -> list[tuple[int, str]]:
        return []

    def write_metrics(
        self,
        run_id: str,
        batch: Mapping[str, Series],
        *,
        spool_id: str | None = None,
        spool_offset: int | None = None,
    ) -> None:
        """The batch is already in the spool: only keep the summaries current."""
        for key, series in batch.items():
            old = self._metrics.get(key)
            finite = [v for v in series.values if not math.isnan(v)]
            best = max(range(len(series)), key=lambda i: (series.steps[i], i))
            last, last_step = series.values[best], series.steps[best]
            last_ts = series.timestamps[best]
            lo = min(finite) if finite else None
            hi = max(finite) if finite else None
            count = len(series)
            if old is not None:
                count += old.count
                lo = old.min if lo is None else lo if old.min is None else min(lo, old.min)
                hi = old.max if hi is None else hi if old.max is None else max(hi, old.max)
                if old.last_step > last_step:
                    last, last_step, last_ts = old.last, old.last_step, old.last_timestamp
            self._metrics[key] = MetricSummary(key, last, last_step, last_ts, lo, hi, count)

    def commit_spool(self, spool_id: str, run_id: str, offset: int) -> None:
        return None

    def spool_offset(self, spool_id: str) -> int:
        return 0

    def forget_spool(self, spool_id: str) -> None:
        return None

    def metric_history(self, run_id: str, key: str) -> Series:
        raise RunNotFound("metric history of an offline run is readable after `mltrail sync`")

    def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        return dict(self._metrics)

    def mark_stale_runs_crashed(self, older_than: float) -> list[str]:
        return []
