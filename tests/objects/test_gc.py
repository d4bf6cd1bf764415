from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mltrail.errors import InvalidValueError
from mltrail.objects import ObjectStore, StoredObject
from mltrail.objects.gc import collect_garbage
from mltrail.objects.hashing import hash_bytes
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.s3 import TMP_DIR, S3ObjectStore

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


# -- S3: LastModified is the age, refreshed by a self-copy when a writer reuses an object --

MakeStore = Callable[..., S3ObjectStore]
MiB = 1 << 20


def _aged(make_s3_store: MakeStore, **kwargs: Any) -> S3ObjectStore:
    """A store that refreshes objects older than 1 s; gc runs with a 2 s grace."""
    return make_s3_store(refresh_after=1, multipart_threshold=5 * MiB, **kwargs)


def _wait_older_than(seconds: float) -> None:
    time.sleep(seconds + 1.05)  # LastModified has a resolution of one second


@pytest.mark.parametrize("how", ["put_bytes", "put_file small", "put_file big"])
def test_s3_writer_reusing_an_old_object_makes_it_young(
    make_s3_store: MakeStore, tmp_path: Path, how: str
) -> None:
    store = _aged(make_s3_store)
    data = os.urandom(6 * MiB if how.endswith("big") else 1000)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    oid = store.put_bytes(data).oid
    _wait_older_than(2)
    assert collect_garbage(store, set(), grace_seconds=2).garbage == (oid,)

    calls: Counter[str] = Counter()
    store.client.meta.events.register(
        "before-call.s3", lambda model, **_: calls.update([model.name])
    )
    store.put_bytes(data) if how == "put_bytes" else store.put_file(src)  # dedupe
    assert calls["CopyObject"] == 1  # the self-copy that resets LastModified
    report = collect_garbage(store, set(), grace_seconds=2, dry_run=False)
    assert (report.garbage, report.recent) == ((), 1)
    assert store.exists(oid)

    # The object was ≥ 3 s old before the refresh; had the copy not reset LastModified it
    # would be again now. (With the 1 s threshold a second refresh could be legitimate:
    # a big put plus the 1 s resolution of LastModified can cross it on a busy machine.)
    store.refresh_after = 3
    calls.clear()
    store.put_bytes(data)  # young: no second refresh
    assert not calls["CopyObject"]


def test_s3_big_object_is_refreshed_by_a_multipart_self_copy(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = _aged(make_s3_store)
    store.copy_chunksize = 5 * MiB
    data = os.urandom(11 * MiB)
    oid = store.put_bytes(data).oid
    _wait_older_than(2)
    store.put_bytes(data)
    assert collect_garbage(store, set(), grace_seconds=2, dry_run=False).garbage == ()
    store.get_file(oid, tmp_path / "back")  # verified: the copy kept the bytes
    assert (tmp_path / "back").read_bytes() == data


class _WriterAfterListing(S3ObjectStore):
    """gc lists an old orphan; then, before gc deletes, a writer reuses it."""

    reused = b""

    def iter_oids(self) -> Iterator[StoredObject]:
        yield from super().iter_oids()
        self.put_bytes(self.reused)


def test_s3_gc_reads_the_age_again_before_deleting(
    s3_endpoint: str, make_s3_store: MakeStore
) -> None:
    bucket = make_s3_store().bucket
    store = _WriterAfterListing(bucket, "gc", endpoint_url=s3_endpoint, refresh_after=1)
    store.reused = b"reused by a writer"
    oid = store.put_bytes(store.reused).oid
    old = store.put_bytes(b"plain orphan").oid
    _wait_older_than(2)
    report = collect_garbage(store, set(), grace_seconds=2, dry_run=False)
    assert report.garbage == (old,) and report.deleted == (old,)
    assert report.recent == 1  # listed as old, found refreshed at delete time
    assert store.exists(oid) and not store.exists(old)
    assert report.garbage_bytes == len(b"plain orphan")


def test_s3_grace_must_cover_the_refresh_interval(make_s3_store: MakeStore) -> None:
    store = make_s3_store()  # refresh_after: 30 min
    with pytest.raises(InvalidValueError, match="too short") as info:
        collect_garbage(store, set(), grace_seconds=600, dry_run=False)
    assert "3600" in (info.value.hint or "")
    collect_garbage(store, set(), grace_seconds=600)  # a dry run deletes nothing: allowed
    collect_garbage(store, set(), grace_seconds=0, dry_run=False)  # "no writer is running"
    collect_garbage(store, set(), grace_seconds=HOUR, dry_run=False)


def test_s3_stale_uploads_and_temporary_objects_are_cleaned(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = make_s3_store(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = os.urandom(15 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)

    def interrupt(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a writer killed mid-upload
        store.put_file(src, progress=interrupt)
    leftover = f"{store.prefix}/{TMP_DIR}/crashed-between-complete-and-copy"
    store.client.put_object(Bucket=store.bucket, Key=leftover, Body=b"x")

    def uploads() -> list[Any]:
        return list(store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", ()))

    # Fresh (its parts are new; the temp object too): kept, even by a wet run.
    assert collect_garbage(store, set(), dry_run=False).stale_uploads == ()
    later = time.time() + 2 * HOUR
    dry = collect_garbage(store, set(), now=later)
    assert len(dry.stale_uploads) == 2 and any(leftover in s for s in dry.stale_uploads)
    assert len(uploads()) == 1
    wet = collect_garbage(store, set(), dry_run=False, now=later)
    assert wet.stale_uploads == dry.stale_uploads
    assert uploads() == []
    assert store.client.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0

    # The resume record now names an aborted upload: the next put starts over.
    assert store.put_file(src).oid == hash_bytes(data)
    assert uploads() == []
