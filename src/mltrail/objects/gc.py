"""Delete objects nothing references any more, sparing recent ones.

The grace period makes gc safe against a concurrent writer: an object it has just
stored (and not yet recorded in the metadata store) is younger than the grace period,
so it is kept even though ``referenced`` does not list it yet.

>>> import tempfile
>>> from mltrail.objects import open_object_store
>>> store = open_object_store(tempfile.mkdtemp())
>>> _ = store.put_bytes(b"orphan")
>>> collect_garbage(store, set()).garbage  # too young to collect
()
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from mltrail.errors import InvalidValueError
from mltrail.objects import ObjectStore

__all__ = ["GcReport", "collect_garbage"]


@dataclass(frozen=True)
class GcReport:
    """What a gc pass found. With ``dry_run`` the ``garbage`` was listed, not deleted."""

    scanned: int
    referenced: int
    recent: int
    garbage: tuple[str, ...]
    garbage_bytes: int
    dry_run: bool

    @property
    def deleted(self) -> tuple[str, ...]:
        """The oids actually deleted (empty on a dry run)."""
        return () if self.dry_run else self.garbage


def collect_garbage(
    store: ObjectStore,
    referenced: Iterable[str],
    grace_seconds: float = 3600,
    dry_run: bool = True,
    *,
    now: float | None = None,
) -> GcReport:
    """Delete objects that are neither in ``referenced`` nor younger than the grace period.

    ``referenced`` must be every oid any run, artifact, dataset or model points at.
    Nothing is deleted unless ``dry_run=False``. ``now`` (POSIX time) defaults to the
    current time; objects modified after ``now - grace_seconds`` are kept.
    """
    if grace_seconds < 0:
        raise InvalidValueError(
            f"grace_seconds must be >= 0, got {grace_seconds}",
            hint="use the default (one hour) unless no writer can be running",
        )
    keep = referenced if isinstance(referenced, (set, frozenset)) else set(referenced)
    cutoff = (time.time() if now is None else now) - grace_seconds
    scanned = n_referenced = n_recent = garbage_bytes = 0
    garbage: list[str] = []
    for obj in store.iter_oids():
        scanned += 1
        if obj.oid in keep:
            n_referenced += 1
        elif obj.mtime > cutoff:
            n_recent += 1
        else:
            garbage.append(obj.oid)
            garbage_bytes += obj.size
    if not dry_run:
        for oid in garbage:
            store.delete(oid)
    return GcReport(scanned, n_referenced, n_recent, tuple(garbage), garbage_bytes, dry_run)
