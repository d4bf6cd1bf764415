from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mltrail.errors import InvalidValueError
from mltrail.objects import ObjectStore
from mltrail.objects.gc import collect_garbage
from mltrail.objects.local import LocalObjectStore

HOUR = 3600


def test_grace_period_and_references_are_respected(store: ObjectStore) -> None:
    kept = store.put_bytes(b"referenced").oid
    orphan = store.put_bytes(b"orphan!").oid

    # Everything was just written: nothing is old enough to collect.
    report = collect_garbage(store, {kept}, grace_seconds=HOUR, dry_run=False)
    assert (report.scanned, report.referenced, report.recent, report.garbage) == (2, 1, 1, ())
    assert store.exists(orphan)

    later = time.time() + 2 * HOUR
    dry = collect_garbage(store, {kept}, grace_seconds=HOUR, now=later)
    assert dry.dry_run and dry.garbage == (orphan,) and dry.deleted == ()
    assert dry.garbage_bytes == len(b"orphan!")
    assert store.exists(orphan)  # a dry run deletes nothing

    wet = collect_garbage(store, [kept], grace_seconds=HOUR, dry_run=False, now=later)
    assert wet.deleted == (orphan,)
    assert not store.exists(orphan) and store.exists(kept)


def test_only_old_unreferenced_objects_go(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    old_ref, old_orphan, new_orphan = (store.put_bytes(d).oid for d in (b"a", b"b", b"c"))
    two_hours_ago = time.time() - 2 * HOUR
    for oid in (old_ref, old_orphan):
        os.utime(store.path_of(oid), (two_hours_ago, two_hours_ago))
    report = collect_garbage(store, {old_ref}, dry_run=False)
    assert report.deleted == (old_orphan,)
    assert {o.oid for o in store.iter_oids()} == {old_ref, new_orphan}


def test_rewritten_old_object_is_young_again(tmp_path: Path) -> None:
    """A writer re-adding an old orphan (dedupe) must not lose it to a concurrent gc."""
    store = LocalObjectStore(tmp_path / "objects")
    oid = store.put_bytes(b"reused").oid
    long_ago = time.time() - 10 * HOUR
    os.utime(store.path_of(oid), (long_ago, long_ago))
    store.put_bytes(b"reused")
    assert collect_garbage(store, set(), dry_run=False).garbage == ()


def test_negative_grace_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError):
        collect_garbage(LocalObjectStore(tmp_path), set(), grace_seconds=-1)
