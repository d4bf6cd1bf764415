from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from mltrail.errors import InvalidValueError, ObjectStoreError
from mltrail.objects.checkout import link_or_copy
from mltrail.objects.local import LocalObjectStore


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A stored (read-only) object's file."""
    store = LocalObjectStore(tmp_path / "objects")
    return store.path_of(store.put_bytes(b"model weights" * 1000).oid)


def _other_device_dir(than: Path) -> Path | None:
    dev = than.stat().st_dev
    for candidate in ("/dev/shm", "/run", "/var/tmp", tempfile.gettempdir()):
        path = Path(candidate)
        if path.is_dir() and os.access(path, os.W_OK) and path.stat().st_dev != dev:
            return path
    return None


def test_hardlink_shares_the_inode_and_stays_read_only(stored: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    assert link_or_copy(stored, dest, mode="hardlink") == "hardlink"
    assert dest.stat().st_ino == stored.stat().st_ino
    assert not dest.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_hardlink_makes_a_writable_source_read_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"x")
    src.chmod(0o644)
    link_or_copy(src, tmp_path / "dest", mode="hardlink")
    assert stat.S_IMODE(src.stat().st_mode) == 0o444


def test_copy_is_independent_and_writable(stored: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    assert link_or_copy(stored, dest, mode="copy") == "copy"
    assert dest.stat().st_ino != stored.stat().st_ino
    assert dest.read_bytes() == stored.read_bytes()
    dest.write_bytes(b"edited")  # writable; the store is untouched
    assert stored.read_bytes().startswith(b"model weights")


def test_auto_prefers_reflink_then_hardlink(stored: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    method = link_or_copy(stored, dest)
    assert dest.read_bytes() == stored.read_bytes()
    # ext4/tmpfs cannot reflink, btrfs/XFS can: either way auto reports what it did.
    if method == "reflink":
        assert dest.stat().st_ino != stored.stat().st_ino
    else:
        assert method == "hardlink"
        assert dest.stat().st_ino == stored.stat().st_ino


def test_explicit_reflink_either_works_or_says_why(stored: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    try:
        method = link_or_copy(stored, dest, mode="reflink")
    except ObjectStoreError as exc:
        assert "reflink" in str(exc) and exc.hint and "auto" in exc.hint
        assert not dest.exists()
        assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    else:
        assert method == "reflink" and dest.read_bytes() == stored.read_bytes()


def test_auto_falls_back_to_copy_across_filesystems(stored: Path) -> None:
    other = _other_device_dir(stored)
    if other is None:
        pytest.fail(  # Linux CI always has /dev/shm (tmpfs): never skip this
            "no writable directory on another filesystem (e.g. /dev/shm) to test across"
        )
    with tempfile.TemporaryDirectory(dir=other) as d:
        dest = Path(d) / "model.bin"
        assert link_or_copy(stored, dest) == "copy"
        assert dest.read_bytes() == stored.read_bytes()
        with pytest.raises(ObjectStoreError, match="hardlink"):
            link_or_copy(stored, Path(d) / "again.bin", mode="hardlink")


def test_existing_destination_is_replaced(stored: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"old checkout")
    link_or_copy(stored, dest, mode="copy")
    assert dest.read_bytes() == stored.read_bytes()


def test_unknown_mode_is_rejected(stored: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="symlink"):
        link_or_copy(stored, tmp_path / "x", mode="symlink")  # type: ignore[arg-type]


def test_missing_source_is_an_object_store_error(tmp_path: Path) -> None:
    with pytest.raises(ObjectStoreError):
        link_or_copy(tmp_path / "nope", tmp_path / "dest")
