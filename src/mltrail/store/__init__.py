"""The metadata store: one protocol, chosen by URI.

``open_store(uri)`` returns the store for a tracking URI (``sqlite:///...``,
``postgresql://...`` or an ``http(s)://`` server); the client never knows which one
it talks to.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mltrail.entities import (
        MetricSummary,
        Project,
        RunRecord,
        Sweep,
        Trial,
        TrialClaim,
        TrialReport,
        TrialRequest,
    )
    from mltrail.series import Series

__all__ = ["Store", "SweepStore", "close_all", "open_store"]


class Store(Protocol):
    """What the client, the CLI and the server need from a metadata store."""

    uri: str

    def close(self) -> None: ...

    def get_or_create_project(self, name: str) -> Project: ...

    def list_projects(self) -> list[tuple[Project, int]]: ...

    def create_run(
        self,
        *,
        run_id: str,
        project: str,
        name: str | None,
        user: str | None,
        group: str | None,
        job_type: str | None,
        parent_id: str | None,
        notes: str,
        tags: Mapping[str, str],
        metadata: Mapping[str, Any],
        started_at: float,
    ) -> RunRecord: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def list_runs(
        self, project: str | None = None, *, limit: int | None = None
    ) -> list[RunRecord]: ...

    def update_run(self, run_id: str, **fields: Any) -> None: ...

    def log_params(
        self, run_id: str, params: Mapping[str, Any], *, allow_change: bool = False
    ) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def delete_tag(self, run_id: str, key: str) -> None: ...

    def set_summary(self, run_id: str, values: Mapping[str, Any]) -> None: ...

    def merge_metadata(self, run_id: str, values: Mapping[str, Any]) -> None: ...

    def append_logs(self, run_id: str, text: str) -> None: ...

    def read_logs(self, run_id: str, *, after: int = 0) -> list[tuple[int, str]]: ...

    def write_metrics(
        self,
        run_id: str,
        batch: Mapping[str, Series],
        *,
        spool_id: str | None = None,
        spool_offset: int | None = None,
    ) -> None: ...

    def spool_offset(self, spool_id: str) -> int: ...

    def commit_spool(self, spool_id: str, run_id: str, offset: int) -> None: ...

    def forget_spool(self, spool_id: str) -> None: ...

    def metric_history(self, run_id: str, key: str) -> Series: ...

    def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]: ...

    def mark_stale_runs_crashed(self, older_than: float) -> list[str]: ...


class SweepStore(Store, Protocol):
    """A store that also keeps sweeps (SQL and HTTP stores; see ``store/sql/sweeps.py``)."""

    def create_sweep(self, sweep: Sweep) -> Sweep: ...

    def get_sweep(self, sweep_id: str) -> Sweep: ...

    def list_sweeps(self, project: str | None = None) -> list[Sweep]: ...

    def set_sweep_state(self, sweep_id: str, state: str) -> Sweep: ...

    def list_trials(self, sweep_id: str) -> list[Trial]: ...

    def claim_trial(self, sweep_id: str, request: TrialRequest) -> TrialClaim: ...

    def report_trial(self, sweep_id: str, number: int, report: TrialReport) -> str: ...


_STORES: dict[str, Store] = {}
_LOCK = threading.Lock()


def open_store(uri: str) -> Store:
    """The store for ``uri`` (already resolved by ``mltrail.config.resolve_uri``).

    One instance per URI per process: engines and connection pools are shared.
    """
    with _LOCK:
        found = _STORES.get(uri)
        if found is not None:
            return found
        store: Store
        if uri.startswith(("http://", "https://")):
            from mltrail.store.http import HttpStore

            store = HttpStore(uri)
        else:
            from mltrail.store.sql.store import SqlStore

            store = SqlStore(uri)
        _STORES[uri] = store
        return store


def close_all() -> None:
    """Dispose of every open store (tests, forks)."""
    import sys

    hooks = sys.modules.get("mltrail.registry.webhooks")
    if hooks is not None:  # webhook senders first: they use the stores
        hooks.stop_dispatchers()
    with _LOCK:
        for store in _STORES.values():
            store.close()
        _STORES.clear()
