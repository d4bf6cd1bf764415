from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.errors import InvalidValueError, ValidationError
from mltrail.objects._io import KERNEL_CHUNK, SourceShrank, kernel_copy_and_hash
from mltrail.objects.hashing import (
    BLOCK_SIZE,
    MAP_WINDOW,
    MULTITHREAD_THRESHOLD,
    hash_bytes,
    hash_file,
    hash_mapped,
    is_valid_oid,
    new_hasher,
    validate_oid,
)

# Official BLAKE3 test vector for the empty input.
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_hash_bytes_is_blake3_hex() -> None:
    assert hash_bytes(b"") == EMPTY
    oid = hash_bytes(b"hello")
    assert len(oid) == 64 and is_valid_oid(oid)


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 2 * BLOCK_SIZE + 7]
)
def test_hash_file_matches_hash_bytes_across_block_boundaries(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == (hash_bytes(data), size)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=4096), cut=st.integers(min_value=0, max_value=4096))
def test_incremental_hashing_equals_one_shot(data: bytes, cut: int) -> None:
    hasher = new_hasher()
    hasher.update(data[:cut])
    hasher.update(data[cut:])
    assert hasher.hexdigest() == hash_bytes(data)


def test_multithreaded_hasher_gives_the_same_digest() -> None:
    data = b"abc" * (1 << 20)
    threaded = new_hasher(size_hint=MULTITHREAD_THRESHOLD)
    threaded.update(data)
    assert threaded.hexdigest() == hash_bytes(data)


@pytest.mark.parametrize("offset", [0, MAP_WINDOW])
@pytest.mark.parametrize("length", [0, 1, MAP_WINDOW, MAP_WINDOW + 3])
def test_hash_mapped_hashes_the_range(tmp_path: Path, offset: int, length: int) -> None:
    data = os.urandom(offset + length + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    hasher = new_hasher()
    with open(path, "rb") as f:
        hash_mapped(hasher, f.fileno(), offset, length)
    assert hasher.hexdigest() == hash_bytes(data[offset : offset + length])


def _kernel_copy(src: Path, dst: Path, size: int) -> str:
    with open(src, "rb") as s, open(dst, "x+b") as d:
        return kernel_copy_and_hash(s.fileno(), d.fileno(), size)


@pytest.mark.parametrize("size", [0, 1, KERNEL_CHUNK, KERNEL_CHUNK + 1, 2 * KERNEL_CHUNK + 777])
def test_kernel_copy_hashes_what_it_copied(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    assert _kernel_copy(tmp_path / "src", tmp_path / "dst", size) == hash_bytes(data)
    assert (tmp_path / "dst").read_bytes() == data


def test_kernel_copy_of_a_source_shorter_than_said_fails(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(os.urandom(KERNEL_CHUNK + 10))
    with pytest.raises(SourceShrank):
        _kernel_copy(tmp_path / "src", tmp_path / "dst", 2 * KERNEL_CHUNK)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0" * 63,
        "0" * 65,
        "A" * 64,
        "g" * 64,
        "../" + "0" * 61,
        "00/" + "0" * 61,
        "0" * 62 + "\n0",
        None,
        0,
    ],
)
def test_invalid_oids_are_rejected(bad: object) -> None:
    assert not is_valid_oid(bad)
    with pytest.raises(InvalidValueError, match="invalid object id") as info:
        validate_oid(bad)
    assert isinstance(info.value, ValidationError)
    assert "64 lowercase hex" in str(info.value)


def test_importing_objects_loads_neither_boto3_nor_blake3() -> None:
    code = (
        "import sys, json, mltrail.objects, mltrail.objects.local, mltrail.objects.gc, "
        "mltrail.objects.checkout, mltrail.objects.hashing\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    roots = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert not roots & {"boto3", "botocore", "blake3", "s3transfer"}
