"""The remote store's tracking methods (over :class:`~mltrail.store.http.transport.Transport`).

Each method has the name and signature of :class:`~mltrail.store.sql.store.SqlStore`'s
and is one request to ``/api/v1``. Metric batches, the hot path, travel as a binary
frame (:func:`encode_batch`: the packed arrays the spool keeps, gzip-compressed by the
transport) with the spool id and offset, so a retried request is applied once.

Values typed ``Any`` (params, summary values, metadata) are JSON, which has no NaN or
infinities: :mod:`mltrail.wire` sends them as strings, and a ``nonfinite`` list beside
them names the top-level keys whose value was really a float, so both ends restore it.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mltrail.entities import MetricSummary, Project, RunRecord
from mltrail.errors import InvalidValueError, RunNotFound
from mltrail.series import Series
from mltrail.store.http.transport import Transport
from mltrail.wire import from_wire, wire_float

__all__ = [
    "BATCH_TYPE",
    "TrackingMixin",
    "decode_batch",
    "encode_batch",
    "nonfinite_keys",
    "restore_nonfinite",
    "run_from_wire",
]

BATCH_TYPE = "application/x-mltrail-metrics"
_MAGIC = b"MLTM\x01"
_COUNT = struct.Struct("<I")
_KEY = struct.Struct("<HI")  # key length, points
_SWAP = sys.byteorder != "little"
_PAGE = 1000  # runs per request when a caller asks for all of them


def encode_batch(cols: Mapping[str, Series]) -> bytes:
    """``{key: Series}`` as one binary frame (little endian)::

    b"MLTM" version:u8 keys:u32
    (key_len:u16 points:u32 key:utf8 steps:i64[n] values:f64[n] timestamps:f64[n])*
    """
    parts = [_MAGIC, _COUNT.pack(len(cols))]
    for key, s in cols.items():
        raw = key.encode()
        parts += [_KEY.pack(len(raw), len(s)), raw]
        cols_ = (s.steps, s.values, s.timestamps)
        if _SWAP:  # pragma: no cover - big-endian hosts
            cols_ = tuple(c[:] for c in cols_)  # type: ignore[assignment]
            for c in cols_:
                c.byteswap()
        parts += [c.tobytes() for c in cols_]
    return b"".join(parts)


def decode_batch(data: bytes) -> dict[str, Series]:
    """The inverse of :func:`encode_batch`; a malformed frame is an InvalidValueError."""
    view = memoryview(data)
    if bytes(view[:5]) != _MAGIC:
        raise InvalidValueError(
            "metric batch is not an mltrail metrics frame (bad magic or version)",
            hint=f"send {BATCH_TYPE} as written by mltrail.store.http.tracking.encode_batch",
        )
    try:
        (count,) = _COUNT.unpack_from(view, 5)
        pos = 5 + _COUNT.size
        out: dict[str, Series] = {}
        for _ in range(count):
            klen, n = _KEY.unpack_from(view, pos)
            pos += _KEY.size
            key = bytes(view[pos : pos + klen]).decode()
            pos += klen
            end = pos + 24 * n
            if end > len(view):
                raise ValueError("truncated")
            series = Series.empty()
            series.steps.frombytes(view[pos : pos + 8 * n])
            series.values.frombytes(view[pos + 8 * n : pos + 16 * n])
            series.timestamps.frombytes(view[pos + 16 * n : end])
            if _SWAP:  # pragma: no cover
                for c in (series.steps, series.values, series.timestamps):
                    c.byteswap()
            pos = end
            if len(series):
                out[key] = series
        if pos != len(view):
            raise ValueError("trailing bytes")
    except (struct.error, ValueError) as exc:
        raise InvalidValueError(f"metric batch frame is malformed ({exc})") from None
    return out


def nonfinite_keys(values: Mapping[str, Any]) -> list[str]:
    """Top-level keys whose value is a NaN or infinite float."""
    return [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]


def restore_nonfinite(values: Mapping[str, Any], keys: list[str] | None) -> dict[str, Any]:
    """Turn the named keys' ``"NaN"``/``"Infinity"`` strings back into floats."""
    out = dict(values)
    for k in keys or ():
        if k in out and isinstance(out[k], str):
            out[k] = wire_float(out[k])
    return out


def run_from_wire(data: Any) -> RunRecord:
    """A run as the server sends it (with its ``nonfinite`` marks)."""
    record = from_wire(RunRecord, data)
    marks = data.get("nonfinite") or {}
    if not marks:
        return record
    import dataclasses

    return dataclasses.replace(
        record,
        config=restore_nonfinite(record.config, marks.get("config")),
        summary_overrides=restore_nonfinite(
            record.summary_overrides, marks.get("summary_overrides")
        ),
        metadata=restore_nonfinite(record.metadata, marks.get("metadata")),
    )


def _values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"values": dict(values), "nonfinite": nonfinite_keys(values)}


def _p(text: str) -> str:
    return quote(text, safe="")


class TrackingMixin:
    """Projects, runs, params, tags, metrics, console logs and spool offsets, remotely."""

    _t: Transport

    def ping(self, timeout: float = 5.0) -> None:
        """Raise StoreUnavailable unless the server answers its health check."""
        self._t.request("GET", "/health", api=False, timeout=timeout)

    # -- projects --------------------------------------------------------------

    def get_or_create_project(self, name: str) -> Project:
        return from_wire(Project, self._t.call("POST", "/projects", json={"project": name}))

    def list_projects(self) -> list[tuple[Project, int]]:
        rows = self._t.call("GET", "/projects")
        return [(from_wire(Project, r["project"]), int(r["run_count"])) for r in rows]

    # -- runs ------------------------------------------------------------------

    def run_project(self, run_id: str) -> str:
        return self.get_run(run_id).project

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
    ) -> RunRecord:
        body = {
            "run_id": run_id, "project": project, "name": name, "user": user,
            "group": group, "job_type": job_type, "parent_id": parent_id, "notes": notes,
            "tags": dict(tags), "metadata": dict(metadata), "started_at": started_at,
            "nonfinite": nonfinite_keys(metadata),
        }  # fmt: skip
        return run_from_wire(self._t.call("POST", "/runs", json=body))

    def get_run(self, run_id: str) -> RunRecord:
        return run_from_wire(self._t.call("GET", f"/runs/{_p(run_id)}"))

    def list_runs(self, project: str | None = None, *, limit: int | None = None) -> list[RunRecord]:
        if limit is not None:
            return self.search_runs(project, limit=limit)
        out: list[RunRecord] = []
        while True:
            page = self.search_runs(project, limit=_PAGE, offset=len(out))
            out.extend(page)
            if len(page) < _PAGE:
                return out

    def search_runs(
        self,
        project: str | None = None,
        query: str | None = None,
        *,
        order_by: list[str] | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs matching ``query``, sorted, one page (the server caps ``limit``)."""
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        params = {"project": project, "query": query, "order_by": orders or None,
                  "limit": limit, "offset": offset or None}  # fmt: skip
        return [run_from_wire(r) for r in self._t.call("GET", "/runs", params=params)]

    def count_runs(self, project: str | None = None, query: str | None = None) -> int:
        params = {"project": project, "query": query}
        return int(self._t.call("GET", "/runs:count", params=params)["count"])

    def update_run(self, run_id: str, **fields: Any) -> None:
        body: dict[str, Any] = {"fields": fields}
        if isinstance(fields.get("metadata"), Mapping):
            body["nonfinite"] = nonfinite_keys(fields["metadata"])
        self._t.call("PATCH", f"/runs/{_p(run_id)}", json=body)

    def mark_stale_runs_crashed(self, older_than: float) -> list[str]:
        answer = self._t.call("POST", "/runs:mark-stale", json={"older_than": older_than})
        return [str(r) for r in answer["run_ids"]]

    # -- params, tags, summary, metadata, console ---------------------------------

    def log_params(
        self, run_id: str, params: Mapping[str, Any], *, allow_change: bool = False
    ) -> None:
        if not params:
            return
        body = {**_values(params), "allow_change": allow_change}
        self._t.call("POST", f"/runs/{_p(run_id)}/params", json=body)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        if tags:
            self._t.call("POST", f"/runs/{_p(run_id)}/tags", json={"tags": dict(tags)})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._t.call("DELETE", f"/runs/{_p(run_id)}/tags/{_p(key)}")

    def set_summary(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._t.call("POST", f"/runs/{_p(run_id)}/summary", json=_values(values))

    def merge_metadata(self, run_id: str, values: Mapping[str, Any]) -> None:
        self._t.call("POST", f"/runs/{_p(run_id)}/metadata", json=_values(values))

    def append_logs(self, run_id: str, text: str) -> None:
        if text:
            self._t.call("POST", f"/runs/{_p(run_id)}/logs", json={"text": text})

    def read_logs(self, run_id: str, *, after: int = 0) -> list[tuple[int, str]]:
        rows = self._t.call("GET", f"/runs/{_p(run_id)}/logs", params={"after": after or None})
        return [(int(seq), str(text)) for seq, text in rows]

    # -- metrics -------------------------------------------------------------------

    def write_metrics(
        self,
        run_id: str,
        batch: Mapping[str, Series],
        *,
        spool_id: str | None = None,
        spool_offset: int | None = None,
    ) -> None:
        """One request: the batch as a binary frame, gzip-compressed by the transport."""
        params = {"spool_id": spool_id, "spool_offset": spool_offset}
        self._t.request(
            "POST",
            f"/runs/{_p(run_id)}/metrics",
            content=encode_batch(batch),
            headers={"Content-Type": BATCH_TYPE},
            params=params,
        )

    def metric_history(self, run_id: str, key: str, *, max_points: int | None = None) -> Series:
        """The series of ``key``; ``max_points`` has the server downsample it first."""
        params = {"max_points": max_points, "format": "binary"}
        path = f"/runs/{_p(run_id)}/metrics/{_p(key)}"
        response = self._t.request("GET", path, params=params)
        return decode_batch(response.content).get(key) or Series.empty()

    def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        rows = self._t.call("GET", f"/runs/{_p(run_id)}/metrics")
        return {k: from_wire(MetricSummary, v) for k, v in rows.items()}

    # -- spool offsets (a spool id is ``<run id>.<suffix>``) ----------------------

    def _spool_path(self, spool_id: str) -> str:
        run_id = spool_id.split(".", 1)[0]
        return f"/runs/{_p(run_id)}/spools/{_p(spool_id)}"

    def spool_offset(self, spool_id: str) -> int:
        try:
            return int(self._t.call("GET", self._spool_path(spool_id))["offset"])
        except RunNotFound:  # an offline run not pushed yet
            return 0

    def commit_spool(self, spool_id: str, run_id: str, offset: int) -> None:
        self._t.call("PUT", self._spool_path(spool_id), json={"run_id": run_id, "offset": offset})

    def forget_spool(self, spool_id: str) -> None:
        try:
            self._t.call("DELETE", self._spool_path(spool_id))
        except RunNotFound:
            return
