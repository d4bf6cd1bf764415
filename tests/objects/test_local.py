from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import pytest

from mltrail.errors import ConfigurationError, InvalidValueError, ObjectStoreError
from mltrail.objects import open_object_store
from mltrail.objects._io import KERNEL_CHUNK
from mltrail.objects.hashing import hash_bytes, hash_file
from mltrail.objects.local import SMALL_MAX, LocalObjectStore


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


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".tmp")]


@pytest.mark.parametrize("size", [SMALL_MAX, KERNEL_CHUNK + 1, 2 * KERNEL_CHUNK + 12345])
def test_large_files_take_the_kernel_copy_path(tmp_path: Path, size: int) -> None:
    """>= SMALL_MAX: kernel copy + hash of what was copied; same object, same guarantees."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(size))
    store = LocalObjectStore(tmp_path / "objects")
    seen: list[int] = []
    info = store.put_file(big, progress=seen.append)
    assert (info.oid, info.size) == hash_file(big)
    assert sum(seen) == size and len(seen) == -(-size // KERNEL_CHUNK)  # chunk by chunk
    path = store.path_of(info.oid)
    assert path.read_bytes() == big.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    inode = path.stat().st_ino
    assert store.put_file(big) == info  # idempotent: first write wins
    assert path.stat().st_ino == inode
    assert _temp_files(tmp_path / "objects") == []


def test_small_file_already_stored_is_not_written_again(tmp_path: Path) -> None:
    src = tmp_path / "small.bin"
    src.write_bytes(b"s" * 1000)
    store = LocalObjectStore(tmp_path / "objects")
    seen: list[int] = []
    info = store.put_file(src, progress=seen.append)
    assert seen == [1000] and info == (hash_bytes(b"s" * 1000), 1000)
    path = store.path_of(info.oid)
    os.utime(path, (1_000_000, 1_000_000))
    inode = path.stat().st_ino
    assert store.put_file(src) == info
    assert path.stat().st_ino == inode  # not rewritten ...
    assert path.stat().st_mtime > time.time() - 60  # ... but young again for gc


def test_empty_file_is_an_object(tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    store = LocalObjectStore(tmp_path / "objects")
    info = store.put_file(src)
    assert info == (hash_bytes(b""), 0)
    assert store.path_of(info.oid).read_bytes() == b""


def test_a_fifo_is_streamed(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = os.urandom(3 * SMALL_MAX + 7)
    writer = threading.Thread(target=lambda: fifo.write_bytes(data))
    writer.start()
    store = LocalObjectStore(tmp_path / "objects")
    info = store.put_file(fifo)
    writer.join()
    assert info == (hash_bytes(data), len(data))
    assert store.path_of(info.oid).read_bytes() == data


@pytest.mark.parametrize("big", [False, True])
def test_folders_removed_behind_the_store_are_created_again(tmp_path: Path, big: bool) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    src = tmp_path / "src"
    src.write_bytes(os.urandom(SMALL_MAX if big else 100))
    info = store.put_file(src)
    shutil.rmtree(tmp_path / "objects")
    assert store.put_file(src) == info
    assert store.path_of(info.oid).read_bytes() == src.read_bytes()


def test_file_growing_while_stored_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(2 * KERNEL_CHUNK + 1))
    store = LocalObjectStore(tmp_path / "objects")

    def grow(n: int) -> None:  # called after each chunk copied: mid-copy
        with open(src, "ab") as f:
            f.write(b"more")

    with pytest.raises(ObjectStoreError, match="changed while it was being stored"):
        store.put_file(src, progress=grow)
    assert list(store.iter_oids()) == []
    assert _temp_files(tmp_path / "objects") == []


_KILL_SCRIPT = """
import os, signal, sys
from mltrail.objects.local import LocalObjectStore
store = LocalObjectStore(sys.argv[1])
if sys.argv[2] == "big":  # killed after the first chunk is copied
    store.put_file(sys.argv[3], progress=lambda n: os.kill(os.getpid(), signal.SIGKILL))
else:  # small objects until killed from outside
    print("ready", flush=True)
    i = 0
    while True:
        store.put_bytes(os.urandom(1000 + i % 3000))
        i += 1
"""


def _check_all_objects(root: Path) -> int:
    store = LocalObjectStore(root)
    count = 0
    for obj in store.iter_oids():
        assert hash_bytes(store.path_of(obj.oid).read_bytes()) == obj.oid
        count += 1
    return count


def test_killed_writer_of_a_big_file_leaves_no_visible_object(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * KERNEL_CHUNK))
    root = tmp_path / "objects"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(root), "big", str(src)], timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert list(LocalObjectStore(root).iter_oids()) == []
    assert [p.parent.name for p in _temp_files(root)] == [".tmp"]  # hidden, not an object
    info = LocalObjectStore(root).put_file(src)  # and the next write is fine
    assert [o.oid for o in LocalObjectStore(root).iter_oids()] == [info.oid]


def test_killed_writer_of_small_objects_leaves_only_complete_ones(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(root), "small"], stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(0.5)
        proc.kill()
        proc.wait(timeout=60)
    assert _check_all_objects(root) > 0  # every visible object is whole
    for tmp in _temp_files(root):  # anything else is a hidden temp name
        assert tmp.name.startswith(".")
