"""Behaviour every ObjectStore backend shares; each test runs on local and S3."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.errors import InvalidValueError, NotFoundError, ObjectCorrupted, ObjectNotFound
from mltrail.objects import ObjectInfo, ObjectStore
from mltrail.objects.hashing import hash_bytes

Overwrite = Callable[[ObjectStore, str, bytes], None]
MISSING = "0" * 64


def test_is_an_object_store(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


def test_roundtrip_bytes_and_file(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    info = store.put_bytes(data)
    assert info == ObjectInfo(hash_bytes(data), len(data))
    with store.open(info.oid) as f:
        assert f.read() == data
    src = tmp_path / "src.bin"
    src.write_bytes(data[::-1])
    info2 = store.put_file(src)
    assert info2 == (hash_bytes(data[::-1]), len(data))
    dest = tmp_path / "out" / "copy.bin"
    dest.parent.mkdir()
    assert store.get_file(info2.oid, dest) == info2
    assert dest.read_bytes() == data[::-1]
    assert store.size(info2.oid) == len(data)
    assert store.exists(info.oid) and store.exists(info2.oid)


def test_empty_object(store: ObjectStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    info = store.put_file(empty)
    assert info.size == 0 and store.size(info.oid) == 0
    with store.open(info.oid) as f:
        assert f.read() == b""


def test_same_content_is_stored_once(store: ObjectStore, tmp_path: Path) -> None:
    data = b"same bytes " * 1000
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data)
    infos = {store.put_file(tmp_path / "a"), store.put_file(tmp_path / "b"), store.put_bytes(data)}
    assert len(infos) == 1
    assert [o.oid for o in store.iter_oids()] == [infos.pop().oid]


def test_concurrent_writers_of_the_same_content(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(2 << 20)
    path = tmp_path / "shared.bin"
    path.write_bytes(data)
    barrier = threading.Barrier(8)
    results: list[ObjectInfo] = []
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            barrier.wait()
            results.append(store.put_file(path) if i % 2 else store.put_bytes(data))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(results) == {ObjectInfo(hash_bytes(data), len(data))}
    assert len(list(store.iter_oids())) == 1
    with store.open(results[0].oid) as f:
        assert f.read() == data


def test_exists_many_and_iter_oids(store: ObjectStore) -> None:
    oids = {store.put_bytes(f"object {i}".encode()).oid for i in range(5)}
    assert store.exists_many([*oids, MISSING]) == oids
    assert store.exists_many([]) == set()
    listed = {o.oid: o for o in store.iter_oids()}
    assert set(listed) == oids
    assert all(o.size == len(b"object 0") and o.mtime > 0 for o in listed.values())


def test_delete(store: ObjectStore) -> None:
    oid = store.put_bytes(b"doomed").oid
    store.delete(oid)
    assert not store.exists(oid)
    store.delete(oid)  # missing is fine
    assert list(store.iter_oids()) == []


def test_missing_object_raises_not_found(store: ObjectStore, tmp_path: Path) -> None:
    for call in (
        lambda: store.open(MISSING),
        lambda: store.size(MISSING),
        lambda: store.get_file(MISSING, tmp_path / "out"),
    ):
        with pytest.raises(ObjectNotFound, match=MISSING) as info:
            call()
        assert isinstance(info.value, (NotFoundError, KeyError))
    assert not (tmp_path / "out").exists()
    assert not store.exists(MISSING)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..", "A" * 64, "0" * 63, "00/../" + "0" * 58])
def test_invalid_oids_never_reach_the_backend(store: ObjectStore, tmp_path: Path, bad: str) -> None:
    for call in (
        lambda: store.exists(bad),
        lambda: store.exists_many([bad]),
        lambda: store.open(bad),
        lambda: store.size(bad),
        lambda: store.delete(bad),
        lambda: store.get_file(bad, tmp_path / "out"),
    ):
        with pytest.raises(InvalidValueError):
            call()


def test_corrupted_object_detected_on_read(
    store: ObjectStore, tmp_path: Path, overwrite_object: Overwrite
) -> None:
    data = os.urandom(100_000)
    oid = store.put_bytes(data).oid
    flipped = bytearray(data)
    flipped[50_000] ^= 0x01
    overwrite_object(store, oid, bytes(flipped))

    with store.open(oid) as f, pytest.raises(ObjectCorrupted, match=oid):
        f.read()
    with store.open(oid) as f:  # a partial read is not verified and does not raise
        assert f.read(10) == data[:10]

    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "dest.bin"
    dest.write_bytes(b"previous content")
    with pytest.raises(ObjectCorrupted):
        store.get_file(oid, dest)
    assert dest.read_bytes() == b"previous content"  # never replaced by corrupt bytes
    assert [p.name for p in dest.parent.iterdir()] == ["dest.bin"]  # no temp left over


def test_truncated_object_detected_in_small_reads(
    store: ObjectStore, overwrite_object: Overwrite
) -> None:
    data = os.urandom(10_000)
    oid = store.put_bytes(data).oid
    overwrite_object(store, oid, data[:-1])
    with store.open(oid) as f, pytest.raises(ObjectCorrupted):
        while f.read(1000):
            pass


def test_progress_reports_every_byte(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    src = tmp_path / "src"
    src.write_bytes(data)
    up: list[int] = []
    oid = store.put_file(src, progress=up.append).oid
    down: list[int] = []
    store.get_file(oid, tmp_path / "dest", progress=down.append)
    assert sum(up) == sum(down) == len(data)
