"""S3-only behaviour, against a real S3 API (moto) on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mltrail.errors import ObjectCorrupted, ObjectNotFound, ObjectStoreError
from mltrail.objects import ObjectInfo, open_object_store
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


class Traffic:
    """S3 calls and payload bytes each way, seen through botocore's event system."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.calls: Counter[str] = Counter()
        self.parts_sent: list[int] = []  # part numbers of UploadPart calls
        self.sent = self.received = 0
        events = store.client.meta.events
        events.register("before-call.s3", self._call)
        events.register("provide-client-params.s3.UploadPart", self._upload_part)
        events.register("after-call.s3.GetObject", self._got)

    def _call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _upload_part(self, params: dict[str, Any], **_: Any) -> None:
        self.sent += len(params["Body"])
        self.parts_sent.append(params["PartNumber"])

    def _got(self, parsed: dict[str, Any], **_: Any) -> None:
        self.received += int(parsed.get("ContentLength", 0))


class Interrupted(Exception):
    pass


def stop_after(n_bytes: int) -> Callable[[int], None]:
    """A progress callback that interrupts the transfer once ``n_bytes`` are done."""
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if done >= n_bytes:
            raise Interrupted

    return progress


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and friends (page cache included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _keys(store: S3ObjectStore) -> list[str]:
    listing = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", ()))


def _uploads(store: S3ObjectStore) -> list[dict[str, Any]]:
    return list(store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", ()))


def _records(store: S3ObjectStore) -> list[Path]:
    return sorted(store.state_dir.glob("*.json")) if store.state_dir.exists() else []


def _make_parts_store(make_s3_store: MakeStore, **kwargs: Any) -> S3ObjectStore:
    kwargs = {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB, **kwargs}
    return make_s3_store(**kwargs)


def test_keys_are_prefix_fanout(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
    oid = store.put_bytes(b"key layout").oid
    assert store.key_of(oid) == f"team/objects/{oid[:2]}/{oid[2:]}"
    assert _keys(store) == [store.key_of(oid)]


def test_big_file_is_read_once_multipart_and_parallel(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = _make_parts_store(make_s3_store, max_concurrency=4)
    data = os.urandom(20 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    traffic = Traffic(store)
    up: list[int] = []
    before = _bytes_read()
    info = store.put_file(src, progress=up.append)
    read = _bytes_read() - before
    assert info == (hash_bytes(data), len(data))
    assert read < 1.25 * len(data)  # once (hashing and uploading the same read), not twice
    assert traffic.calls["UploadPart"] == 4 and traffic.sent == len(data)
    assert traffic.calls["CompleteMultipartUpload"] == 1
    assert traffic.calls["CopyObject"] == 1  # from the temporary key to the object's key
    assert _keys(store) == [store.key_of(info.oid)] and _uploads(store) == []
    assert _records(store) == []
    assert up == [5 * MiB] * 4  # per part, not per file

    traffic.calls.clear()
    dest = tmp_path / "back.bin"
    down: list[int] = []
    store.get_file(info.oid, dest, progress=down.append)
    assert traffic.calls["GetObject"] == 4  # parallel ranged GETs
    assert dest.read_bytes() == data
    assert down == [5 * MiB] * 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no .part
    with store.open(info.oid) as f:
        assert f.read() == data


def test_existing_object_is_not_stored_again(make_s3_store: MakeStore, tmp_path: Path) -> None:
    store = _make_parts_store(make_s3_store)
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"small" * 100)
    big.write_bytes(os.urandom(6 * MiB))
    store.put_file(small)
    store.put_file(big)
    keys = _keys(store)
    calls = _count_calls(store)
    progress: list[int] = []
    store.put_file(small, progress=progress.append)
    store.put_bytes(b"small" * 100)
    assert set(calls) == {"HeadObject"}
    # A big file is hashed while it is uploaded, so its parts go out before the hash says
    # the object exists; then the upload is aborted, never completed or copied.
    store.put_file(big, progress=progress.append)
    assert calls["AbortMultipartUpload"] == 1 and calls["UploadPart"] == 2
    assert not calls["CompleteMultipartUpload"] and not calls["CopyObject"]
    assert sum(progress) == 6 * MiB + 500  # skipped bytes still count as done
    assert _keys(store) == keys and _uploads(store) == [] and _records(store) == []


def test_big_objects_are_copied_in_parallel_parts(make_s3_store: MakeStore, tmp_path: Path) -> None:
    store = _make_parts_store(make_s3_store)
    store.copy_chunksize = 5 * MiB
    data = os.urandom(12 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    calls = _count_calls(store)
    oid = store.put_file(src).oid
    assert calls["UploadPartCopy"] == 3 and not calls["CopyObject"]
    assert store.size(oid) == len(data)
    store.get_file(oid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_interrupted_upload_resumes_without_sending_stored_parts(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = _make_parts_store(make_s3_store, max_concurrency=2)
    data = os.urandom(20 * MiB)  # four parts
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    traffic = Traffic(store)
    with pytest.raises(Interrupted):
        store.put_file(src, progress=stop_after(5 * MiB))
    first = traffic.sent
    assert 5 * MiB <= first < len(data)
    assert len(_uploads(store)) == 1 and len(_records(store)) == 1  # kept for a resume
    assert _keys(store) == []  # nothing visible

    traffic.sent = 0
    progress: list[int] = []
    info = store.put_file(src, progress=progress.append)
    assert info == (hash_bytes(data), len(data))
    assert traffic.sent == len(data) - first  # only the missing parts
    assert sum(progress) == len(data)  # parts found stored count as done
    assert _keys(store) == [store.key_of(info.oid)]
    assert _uploads(store) == [] and _records(store) == []
    store.get_file(info.oid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_killed_upload_resumes(make_s3_store: MakeStore, s3_endpoint: str, tmp_path: Path) -> None:
    store = _make_parts_store(make_s3_store, max_concurrency=2)
    data = os.urandom(20 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    code = (
        "import os, pathlib, signal\n"
        "from mltrail.objects.s3 import S3ObjectStore\n"
        f"store = S3ObjectStore({store.bucket!r}, {store.prefix!r}, endpoint_url={s3_endpoint!r},"
        " multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=2)\n"
        f"store.state_dir = pathlib.Path({str(store.state_dir)!r})\n"
        "done = 0\n"
        "def progress(n):\n"
        "    global done\n"
        "    done += n\n"
        "    if done >= 10 << 20:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"store.put_file({str(src)!r}, progress=progress)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert len(_uploads(store)) == 1 and len(_records(store)) == 1

    traffic = Traffic(store)
    info = store.put_file(src)
    assert info.oid == hash_bytes(data)
    assert traffic.sent <= len(data) - 10 * MiB  # at least the two parts were not sent again
    assert _uploads(store) == [] and _records(store) == []
    store.get_file(info.oid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_resume_sends_again_a_part_whose_bytes_changed(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    """Same size and mtime (the record's key) but other bytes: the MD5 check catches it."""
    store = _make_parts_store(make_s3_store, max_concurrency=1)
    data = bytearray(os.urandom(20 * MiB))
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    with pytest.raises(Interrupted):
        store.put_file(src, progress=stop_after(10 * MiB))
    st = src.stat()
    data[0] ^= 0xFF
    src.write_bytes(data)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))

    traffic = Traffic(store)
    info = store.put_file(src)
    assert info.oid == hash_bytes(bytes(data))
    assert traffic.parts_sent[0] == 1  # part 1 again; part 2 was kept
    assert 2 not in traffic.parts_sent
    store.get_file(info.oid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_file_changed_while_uploading_stores_nothing(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = _make_parts_store(make_s3_store, max_concurrency=1)
    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(12 * MiB))

    def grow(n: int) -> None:
        with open(src, "ab") as f:
            f.write(b"more")

    with pytest.raises(ObjectStoreError, match="changed while it was being stored"):
        store.put_file(src, progress=grow)
    assert _keys(store) == [] and _uploads(store) == [] and _records(store) == []


def test_concurrent_puts_of_one_big_file(make_s3_store: MakeStore, tmp_path: Path) -> None:
    """One writer holds the resume record; the other uploads on its own. Both succeed."""
    store = _make_parts_store(make_s3_store, max_concurrency=2)
    data = os.urandom(11 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    barrier = threading.Barrier(2)

    def put() -> ObjectInfo:
        barrier.wait()
        return store.put_file(src)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: put(), range(2)))
    assert results == [(hash_bytes(data), len(data))] * 2
    assert _keys(store) == [store.key_of(results[0].oid)]
    assert _uploads(store) == [] and _records(store) == []


def test_interrupted_download_resumes(make_s3_store: MakeStore, tmp_path: Path) -> None:
    store = _make_parts_store(make_s3_store, max_concurrency=2)
    data = os.urandom(20 * MiB)
    oid = store.put_bytes(data).oid
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "data.bin"
    traffic = Traffic(store)
    with pytest.raises(Interrupted):
        store.get_file(oid, dest, progress=stop_after(5 * MiB))
    assert not dest.exists()  # nothing half-written at the destination
    (partial,) = out.iterdir()
    assert partial.name == f".data.bin.{oid[:16]}.part"
    kept = partial.stat().st_size
    assert 5 * MiB <= kept < len(data)

    traffic.received = 0
    progress: list[int] = []
    store.get_file(oid, dest, progress=progress.append)
    assert traffic.received == len(data) - kept
    assert sum(progress) == len(data)
    assert dest.read_bytes() == data
    assert list(out.iterdir()) == [dest]


def test_resumed_download_with_a_foreign_prefix_starts_over(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = _make_parts_store(make_s3_store)
    data = os.urandom(12 * MiB)
    oid = store.put_bytes(data).oid
    dest = tmp_path / "data.bin"
    (tmp_path / f".data.bin.{oid[:16]}.part").write_bytes(os.urandom(7 * MiB))
    store.get_file(oid, dest)
    assert dest.read_bytes() == data
    assert not (tmp_path / f".data.bin.{oid[:16]}.part").exists()


def test_corrupted_multipart_download_leaves_no_file(
    make_s3_store: MakeStore, tmp_path: Path
) -> None:
    store = _make_parts_store(make_s3_store)
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
    assert store.max_concurrency == 3
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
