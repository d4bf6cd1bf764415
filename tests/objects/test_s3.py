"""S3-only behaviour, against a real S3 API (moto) on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mltrail.errors import ObjectCorrupted, ObjectNotFound, ObjectStoreError
from mltrail.objects import open_object_store
from mltrail.objects.hashing import hash_bytes
from mltrail.objects.s3 import S3ObjectStore

MakeStore = Callable[..., S3ObjectStore]
MiB = 1 << 20


def _count_calls(store: S3ObjectStore) -> Counter[str]:
    """Count S3 API calls through botocore's event system."""
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    store.client.meta.events.register("before-call.s3", record)
    return calls


def test_keys_are_prefix_fanout(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
    oid = store.put_bytes(b"key layout").oid
    assert store.key_of(oid) == f"team/objects/{oid[:2]}/{oid[2:]}"
    listing = store.client.list_objects_v2(Bucket=store.bucket)
    assert [item["Key"] for item in listing["Contents"]] == [store.key_of(oid)]


def test_big_file_is_multipart_and_parallel(make_s3_store: MakeStore, tmp_path: Path) -> None:
    store = make_s3_store(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4
    )
    data = os.urandom(20 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    calls = _count_calls(store)
    up: list[int] = []
    info = store.put_file(src, progress=up.append)
    assert info == (hash_bytes(data), len(data))
    assert calls["UploadPart"] == 4 and calls["CompleteMultipartUpload"] == 1
    head = store.client.head_object(Bucket=store.bucket, Key=store.key_of(info.oid))
    assert head["ETag"].strip('"').endswith("-4")
    assert sum(up) == len(data)

    calls.clear()
    dest = tmp_path / "back.bin"
    down: list[int] = []
    store.get_file(info.oid, dest, progress=down.append)
    assert calls["GetObject"] == 4  # parallel ranged GETs
    assert dest.read_bytes() == data
    assert sum(down) == len(data)
    with store.open(info.oid) as f:
        assert f.read() == data


def test_existing_object_is_not_uploaded_again(make_s3_store: MakeStore, tmp_path: Path) -> None:
    store = make_s3_store(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"small" * 100)
    big.write_bytes(os.urandom(6 * MiB))
    store.put_file(small)
    store.put_file(big)
    calls = _count_calls(store)
    progress: list[int] = []
    store.put_file(small, progress=progress.append)
    store.put_file(big, progress=progress.append)
    store.put_bytes(b"small" * 100)
    assert set(calls) == {"HeadObject"}
    assert sum(progress) == 6 * MiB + 500  # skipped bytes still count as done


def test_corrupted_multipart_download_leaves_no_file(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = make_s3_store(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = os.urandom(11 * MiB)
    oid = store.put_bytes(data).oid
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    store.client.put_object(Bucket=store.bucket, Key=store.key_of(oid), Body=bytes(bad))
    dest = tmp_path / "out" / "f"
    dest.parent.mkdir()
    with pytest.raises(ObjectCorrupted, match=oid):
        store.get_file(oid, dest)
    assert list(dest.parent.iterdir()) == []


def test_missing_bucket_is_translated(s3_endpoint: str) -> None:
    store = S3ObjectStore("no-such-bucket", endpoint_url=s3_endpoint)
    with pytest.raises(ObjectStoreError, match="does not exist") as info:
        store.put_bytes(b"x")
    assert info.value.hint and "bucket" in info.value.hint
    assert info.value.__cause__ is not None  # chained to the botocore error
    with pytest.raises(ObjectStoreError):
        list(store.iter_oids())


def test_unreachable_endpoint_is_translated(s3_endpoint: str) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3ObjectStore("bucket", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ObjectStoreError, match="cannot reach") as info:
        store.exists("0" * 64)
    assert "MLTRAIL_S3_ENDPOINT_URL" in (info.value.hint or "")


def test_open_missing_object(make_s3_store: MakeStore) -> None:
    with pytest.raises(ObjectNotFound):
        make_s3_store().open("f" * 64)


def test_open_object_store_takes_the_endpoint_from_the_environment(
    s3_endpoint: str, make_s3_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_s3_store().bucket
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    store = open_object_store(f"s3://{bucket}/some/prefix/", max_concurrency=3)
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (bucket, "some/prefix", s3_endpoint)
    assert store.uri == f"s3://{bucket}/some/prefix"
    assert store.transfer_config.max_concurrency == 3
    oid = store.put_bytes(b"via env").oid
    assert store.exists(oid)

    monkeypatch.delenv("MLTRAIL_S3_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    assert open_object_store(f"s3://{bucket}/some/prefix").exists(oid)
    keyword = open_object_store(f"s3://{bucket}", endpoint_url=s3_endpoint)
    assert isinstance(keyword, S3ObjectStore) and keyword.uri == f"s3://{bucket}"


def test_missing_boto3_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['boto3'] = None\n"
        "from mltrail.errors import ExtraNotInstalled\n"
        "from mltrail.objects import open_object_store\n"
        "try:\n"
        "    open_object_store('s3://bucket/prefix')\n"
        "except ExtraNotInstalled as exc:\n"
        "    print(exc.module, exc.extra, isinstance(exc, ImportError))\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    first, *rest = out.stdout.splitlines()
    assert first == "boto3 s3 True"
    message = "\n".join(rest)
    assert "The S3 object store needs the Python package 'boto3'" in message
    assert "pip install 'mltrail[s3]'" in message
