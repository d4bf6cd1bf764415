"""Delete objects nothing references any more, sparing recent ones.

gc reads the references, lists the objects and deletes those neither referenced nor
modified in the last ``grace_seconds``. The grace period covers a concurrent writer:
an object it has just stored, or found already stored (first write wins), is not yet
referenced by a recorded manifest. That holds only if a write makes the object look
young, and each backend does:

- the local store sets the file's mtime to now whenever a write finds it stored;
- S3 has no "touch" (LastModified changes only when the object is written), so a write
  that finds the object older than the store's ``refresh_after`` (default 30 min, half
  the default grace) copies it onto itself, server-side, which resets LastModified.

The contract for writers is then: **reference what you stored within
``grace_seconds - refresh_after``** (the whole grace on a local store; 30 min with the
defaults on S3). So a deleting run refuses a grace shorter than twice the store's
``refresh_after``, except 0, which says that no writer is running.

Three more rules keep the gap between "listed as old" and "deleted" small:

- the cutoff is taken before the references are read; pass ``now`` taken before
  computing ``referenced`` (or pass a lazy iterable, which is read after the cutoff);
- a store with ``delete_if_older`` (S3) reads the age of each object again right
  before deleting it, so a write that refreshed it after the listing is seen (what is
  left is one request's round trip);
- a store with ``clean_stale_uploads`` (S3) also gets the multipart uploads and
  temporary objects of crashed writers removed once idle for the grace period; they
  are reported in ``stale_uploads``.

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
from typing import Protocol, runtime_checkable

from mltrail.errors import InvalidValueError
from mltrail.objects import ObjectStore, StoredObject

__all__ = ["GcReport", "collect_garbage"]


@dataclass(frozen=True)
class GcReport:
    """What a gc pass found. With ``dry_run`` the ``garbage`` was listed, not deleted.

    ``recent`` counts objects kept for their age, including any found refreshed by a
    writer just before they would have been deleted. ``stale_uploads`` lists leftovers
    of crashed uploads (S3) that were, or on a dry run would be, removed.
    """

    scanned: int
    referenced: int
    recent: int
    garbage: tuple[str, ...]
    garbage_bytes: int
    dry_run: bool
    stale_uploads: tuple[str, ...] = ()

    @property
    def deleted(self) -> tuple[str, ...]:
        """The oids actually deleted (empty on a dry run)."""
        return () if self.dry_run else self.garbage


@runtime_checkable
class _RecheckingStore(Protocol):
    def delete_if_older(self, oid: str, cutoff: float) -> bool: ...


@runtime_checkable
class _UploadCleaningStore(Protocol):
    def clean_stale_uploads(self, cutoff: float, dry_run: bool = True) -> list[str]: ...


def collect_garbage(
    store: ObjectStore,
    referenced: Iterable[str],
    grace_seconds: float = 3600,
    dry_run: bool = True,
    *,
    now: float | None = None,
) -> GcReport:
    """Delete objects that are neither in ``referenced`` nor younger than the grace period.

    ``referenced`` must be every oid any run, artifact, dataset or model points at,
    read after ``now`` (POSIX time; default: the time of the call, before a lazy
    ``referenced`` is read). Objects modified after ``now - grace_seconds`` are kept.
    Nothing is deleted unless ``dry_run=False``.
    """
    if grace_seconds < 0:
        raise InvalidValueError(
            f"grace_seconds must be >= 0, got {grace_seconds}",
            hint="use the default (one hour) unless no writer can be running",
        )
    refresh_after = float(getattr(store, "refresh_after", 0.0))
    if not dry_run and 0 < grace_seconds < 2 * refresh_after:
        raise InvalidValueError(
            f"a grace period of {grace_seconds:g} s is too short for {store.uri}: it refreshes "
            f"the age of objects a writer reuses only once they are {refresh_after:g} s old",
            hint=f"use a grace of at least {2 * refresh_after:g} s, or 0 if no writer can be "
            "running",
        )
    cutoff = (time.time() if now is None else now) - grace_seconds
    keep = referenced if isinstance(referenced, (set, frozenset)) else set(referenced)
    scanned = n_referenced = n_recent = 0
    candidates: list[StoredObject] = []
    for obj in store.iter_oids():
        scanned += 1
        if obj.oid in keep:
            n_referenced += 1
        elif obj.mtime > cutoff:
            n_recent += 1
        else:
            candidates.append(obj)
    garbage = candidates
    if not dry_run:
        if isinstance(store, _RecheckingStore):
            garbage = [obj for obj in candidates if store.delete_if_older(obj.oid, cutoff)]
            n_recent += len(candidates) - len(garbage)
        else:
            for obj in candidates:
                store.delete(obj.oid)
    stale: list[str] = []
    if isinstance(store, _UploadCleaningStore):
        stale = store.clean_stale_uploads(cutoff, dry_run)
    return GcReport(
        scanned,
        n_referenced,
        n_recent,
        tuple(obj.oid for obj in garbage),
        sum(obj.size for obj in garbage),
        dry_run,
        tuple(stale),
    )
