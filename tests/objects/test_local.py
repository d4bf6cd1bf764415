from __future__ import annotations

import os
import stat
import time
from multiprocessing import get_context
from pathlib import Path

import pytest

from mltrail.errors import ConfigurationError, InvalidValueError, ObjectStoreError
from mltrail.objects import open_object_store
from mltrail.objects.hashing import hash_bytes
from mltrail.objects.local import LocalObjectStore


def test_layout_and_read_only_objects(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    oid = store.put_bytes(b"layout").oid
    path = tmp_path / "objects" / oid[:2] / oid[2:]
    assert store.path_of(oid) == path
    assert path.read_bytes() == b"layout"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_put_file_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    src = tmp_path / "src"
    src.write_bytes(os.urandom(1 << 20))
    store.put_file(src)
    store.put_file(src)
    store.put_bytes(b"x")
    store.put_bytes(b"x")
    leftovers = [
        p for p in (tmp_path / "objects").rglob("*") if p.is_file() and p.name.endswith(".tmp")
    ]
    assert leftovers == []


def test_path_of_rejects_traversal(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(InvalidValueError):
        store.path_of("../" * 20 + "etc/passwd")


def test_first_write_wins_but_a_truncated_object_is_repaired(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    data = b"payload" * 100
    oid = store.put_bytes(data).oid
    path = store.path_of(oid)
    inode = path.stat().st_ino
    store.put_bytes(data)
    assert path.stat().st_ino == inode  # already there: not rewritten

    path.chmod(0o644)
    path.write_bytes(data[:10])  # as if a crash had truncated it
    store.put_bytes(data)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_rewriting_an_existing_object_refreshes_its_mtime(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    oid = store.put_bytes(b"old").oid
    os.utime(store.path_of(oid), (1_000_000, 1_000_000))
    store.put_bytes(b"old")
    assert store.path_of(oid).stat().st_mtime > time.time() - 60


def test_iter_oids_skips_foreign_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    oid = store.put_bytes(b"real").oid
    (tmp_path / "objects" / "README").write_text("not an object")
    (tmp_path / "objects" / "zz").mkdir()
    (tmp_path / "objects" / oid[:2] / ".partial.tmp").write_bytes(b"half")
    assert [o.oid for o in store.iter_oids()] == [oid]


def _put_in_process(args: tuple[str, bytes]) -> str:
    root, data = args
    return LocalObjectStore(root).put_bytes(data).oid


def test_concurrent_processes_write_one_object(tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    with get_context("spawn").Pool(4) as pool:
        oids = pool.map(_put_in_process, [(str(tmp_path / "objects"), data)] * 8)
    assert set(oids) == {hash_bytes(data)}
    store = LocalObjectStore(tmp_path / "objects")
    assert [o.oid for o in store.iter_oids()] == oids[:1]


def test_open_object_store_by_path_and_file_uri(tmp_path: Path) -> None:
    by_path = open_object_store(str(tmp_path / "a"))
    by_uri = open_object_store((tmp_path / "a").as_uri())
    assert isinstance(by_path, LocalObjectStore) and isinstance(by_uri, LocalObjectStore)
    assert by_path.root == by_uri.root == tmp_path / "a"
    assert by_path.uri == (tmp_path / "a").as_uri()
    relative = open_object_store("rel/objects")  # tests run in their own cwd
    assert isinstance(relative, LocalObjectStore) and relative.root.is_absolute()


@pytest.mark.parametrize("uri", ["file://host/share/objects", "gs://bucket/x", "s3://", "s3:///x"])
def test_open_object_store_rejects_unsupported_uris(uri: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_object_store(uri)
    assert info.value.hint


def test_unwritable_root_is_an_object_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ObjectStoreError, match="cannot create"):
        LocalObjectStore(blocker / "objects")


def test_large_files_take_the_kernel_copy_path(tmp_path: Path) -> None:
    """>= 16 MiB: kernel copy + hash of a memory map; same object, same guarantees."""
    from mltrail.objects.hashing import hash_file
    from mltrail.objects.local import _KERNEL_COPY_MIN, LocalObjectStore

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024) * (_KERNEL_COPY_MIN // 1024 + 3))
    store = LocalObjectStore(tmp_path / "objects")
    info = store.put_file(big)
    assert (info.oid, info.size) == hash_file(big)
    assert store.path_of(info.oid).read_bytes() == big.read_bytes()
    assert store.put_file(big) == info  # idempotent
    assert not list((tmp_path / "objects" / ".tmp").iterdir())  # no temp file left
