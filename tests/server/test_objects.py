"""Objects over HTTP: streamed through a server with a local folder, presigned on S3.

Every test runs a real ``mltrail server`` (the ``serve`` fixture); S3 is moto on
loopback. The client side is :class:`~mltrail.objects.http.HttpObjectStore`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mltrail.errors import ConfigurationError, ObjectCorrupted, ObjectNotFound, ObjectStoreError
from mltrail.objects import ObjectStore
from mltrail.objects.hashing import hash_bytes
from mltrail.objects.http import HttpObjectStore
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.s3 import S3ObjectStore

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part: the multipart path runs in CI in seconds


@dataclass
class ObjectsServer:
    url: str
    mode: str  # "stream" | "s3"
    backing: ObjectStore  # the server's own object store, opened here to look behind it

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"


def _start_s3(
    request: pytest.FixtureRequest, serve: Callable[..., str], store: str
) -> ObjectsServer:
    make: Callable[..., S3ObjectStore] = request.getfixturevalue("make_s3_store")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    s3 = make()
    url = serve(
        store,
        objects=s3.uri,
        env={"MLTRAIL_S3_ENDPOINT_URL": endpoint, "MLTRAIL_SERVER_PART_SIZE": str(PART)},
    )
    return ObjectsServer(url, "s3", s3)


@pytest.fixture(params=["stream", "s3"])
def objects_server(
    request: pytest.FixtureRequest, serve: Callable[..., str], tmp_path: Path
) -> ObjectsServer:
    """A server whose objects are in a local folder (streamed) or on S3 (presigned)."""
    store = f"sqlite:///{tmp_path / 'meta.db'}"
    if request.param == "stream":
        folder = tmp_path / "server-objects"
        url = serve(store, objects=str(folder))
        return ObjectsServer(url, "stream", LocalObjectStore(folder))
    return _start_s3(request, serve, store)


@pytest.fixture
def s3_server(
    request: pytest.FixtureRequest, serve: Callable[..., str], tmp_path: Path
) -> ObjectsServer:
    """A server whose objects are on S3 (moto)."""
    return _start_s3(request, serve, f"sqlite:///{tmp_path / 'meta.db'}")


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_bytes_and_files_round_trip(objects_server: ObjectsServer, tmp_path: Path) -> None:
    client = HttpObjectStore(objects_server.url, part_size=PART)
    assert client.mode == objects_server.mode
    small = client.put_bytes(b"hello")
    assert small.oid == hash_bytes(b"hello")
    assert client.put_bytes(b"hello") == small  # idempotent
    data = _random_file(tmp_path / "big.bin", 12 * MiB + 123)  # multipart / streamed POST
    seen: list[int] = []
    big = client.put_file(tmp_path / "big.bin", progress=seen.append)
    assert big.oid == hash_bytes(data) and big.size == len(data) and sum(seen) == len(data)
    assert objects_server.backing.exists(big.oid)  # it is where the server keeps objects
    missing = hash_bytes(b"never stored")
    assert client.exists_many([small.oid, big.oid, missing]) == {small.oid, big.oid}
    assert client.exists(big.oid) and not client.exists(missing)
    assert client.size(big.oid) == len(data)
    with client.open(small.oid) as f:
        assert f.read() == b"hello"
    got: list[int] = []
    client.get_file(big.oid, tmp_path / "out.bin", progress=got.append)
    assert (tmp_path / "out.bin").read_bytes() == data and sum(got) == len(data)
    with pytest.raises(ObjectNotFound):
        client.size(missing)
    with pytest.raises(ObjectNotFound):
        client.get_file(missing, tmp_path / "nothing.bin")
    assert not (tmp_path / "nothing.bin").exists()
    with pytest.raises(ConfigurationError, match="gc"):
        next(iter(client.iter_oids()))


def test_s3_bytes_never_pass_through_the_server(s3_server: ObjectsServer, tmp_path: Path) -> None:
    objects_server = s3_server
    data = _random_file(tmp_path / "f.bin", 11 * MiB)
    to_server: list[int] = []

    def count(request: httpx.Request) -> None:
        to_server.append(int(request.headers.get("content-length") or 0))

    client = HttpObjectStore(objects_server.url, part_size=PART)
    client._t.client.event_hooks["request"].append(count)
    info = client.put_file(tmp_path / "f.bin")
    client.get_file(info.oid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    assert to_server and sum(to_server) < 64 * 1024  # only small JSON went to the server
    # and the server refuses to carry object bytes at all
    r = httpx.get(f"{objects_server.api}/objects/{info.oid}")
    assert r.status_code == 409 and "presigned" in r.json()["error"]["hint"]
    r = httpx.put(f"{objects_server.api}/objects/{hash_bytes(b'x')}", content=b"x")
    assert r.status_code == 409
    assert not objects_server.backing.exists(hash_bytes(b"x"))


def test_multipart_upload_in_small_parts(
    serve: Callable[..., str],
    make_s3_store: Callable[..., S3ObjectStore],
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    s3 = make_s3_store()
    url = serve(
        f"sqlite:///{tmp_path / 'meta.db'}",
        objects=s3.uri,
        env={"MLTRAIL_S3_ENDPOINT_URL": s3_endpoint},  # server default: 64 MiB parts
    )
    api = f"{url}/api/v1"
    plan = httpx.post(f"{api}/objects/uploads", json={"size": 17 * MiB, "part_size": PART})
    assert plan.json()["parts"] == 4 and plan.json()["part_size"] == PART  # client's choice
    httpx.delete(f"{api}/objects/uploads/{plan.json()['upload']}",
                 params={"upload_id": plan.json()["upload_id"]})  # fmt: skip
    data = _random_file(tmp_path / "f.bin", 17 * MiB + 5)
    client = HttpObjectStore(url, part_size=PART, max_concurrency=2)
    info = client.put_file(tmp_path / "f.bin")
    assert info.oid == hash_bytes(data)
    head = s3.client.head_object(Bucket=s3.bucket, Key=s3.key_of(info.oid))
    assert head["ContentLength"] == len(data)
    # nothing left behind: no temporary keys, no open multipart uploads
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
    assert keys == [s3.key_of(info.oid)]
    assert not s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads")
    with s3.open(info.oid) as f:
        assert f.read() == data


def _upload_s3(api: str, data: bytes, claimed: str, part: int | None = None) -> httpx.Response:
    """Upload ``data`` with presigned URLs as a client would, naming it ``claimed``."""
    body: dict[str, Any] = {"size": len(data), "part_size": part}
    plan = httpx.post(f"{api}/objects/uploads", json=body).json()
    token = plan["upload"]
    if "url" in plan:
        assert httpx.put(plan["url"], content=data).status_code == 200
        done: dict[str, Any] = {"oid": claimed, "size": len(data)}
    else:
        step, n = plan["part_size"], plan["parts"]
        urls = httpx.post(f"{api}/objects/uploads/{token}/parts",
                          json={"upload_id": plan["upload_id"],
                                "numbers": list(range(1, n + 1))}).json()["urls"]  # fmt: skip
        parts = []
        for i in range(n):
            r = httpx.put(urls[str(i + 1)], content=data[i * step : (i + 1) * step])
            parts.append({"number": i + 1, "etag": r.headers["etag"]})
        done = {"oid": claimed, "size": len(data), "upload_id": plan["upload_id"], "parts": parts}
    return httpx.post(f"{api}/objects/uploads/{token}/complete", json=done)


@pytest.mark.parametrize("size", [1000, 6 * MiB], ids=["single", "multipart"])
def test_mismatching_upload_is_refused_and_nothing_stored(
    objects_server: ObjectsServer, size: int
) -> None:
    real, fake = os.urandom(size), os.urandom(size)
    claimed = hash_bytes(real)
    if objects_server.mode == "stream":
        r = httpx.put(f"{objects_server.api}/objects/{claimed}", content=fake)
    else:
        r = _upload_s3(objects_server.api, fake, claimed, part=PART)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "object_corrupted"
    assert "nothing was stored" in r.json()["error"]["message"]
    backing = objects_server.backing
    assert not backing.exists(claimed) and not backing.exists(hash_bytes(fake))
    if isinstance(backing, S3ObjectStore):  # the temporary upload is gone too
        listed = backing.client.list_objects_v2(Bucket=backing.bucket).get("Contents", [])
        assert listed == []
        assert not backing.client.list_multipart_uploads(Bucket=backing.bucket).get("Uploads")
    # the same bytes under their own name are accepted
    if objects_server.mode == "stream":
        ok = httpx.put(f"{objects_server.api}/objects/{claimed}", content=real)
    else:
        ok = _upload_s3(objects_server.api, real, claimed, part=PART)
    assert ok.status_code == 200 and ok.json()["oid"] == claimed
    assert backing.exists(claimed)


def test_s3_upload_never_overwrites_a_stored_object(s3_server: ObjectsServer) -> None:
    good = s3_server.backing.put_bytes(b"the real content")
    r = _upload_s3(s3_server.api, b"an impostor, same size", good.oid)
    assert r.status_code == 200  # already stored: the upload is dropped, not used
    assert r.json()["size"] == len(b"the real content")
    with s3_server.backing.open(good.oid) as f:
        assert f.read() == b"the real content"
    listed = s3_server.backing.client.list_objects_v2(Bucket=s3_server.backing.bucket)
    assert [o["Key"] for o in listed["Contents"]] == [s3_server.backing.key_of(good.oid)]


def test_streamed_post_is_named_by_the_server(objects_server: ObjectsServer) -> None:
    r = httpx.post(f"{objects_server.api}/objects", content=b"named by the server")
    if objects_server.mode == "s3":
        assert r.status_code == 409  # bytes never pass through an S3 server
        return
    assert r.json() == {"oid": hash_bytes(b"named by the server"), "size": 19}
    assert objects_server.backing.exists(r.json()["oid"])


@pytest.mark.parametrize("size", [100, 9 * MiB], ids=["small", "big"])
def test_corrupted_object_is_not_delivered(
    objects_server: ObjectsServer, tmp_path: Path, size: int
) -> None:
    backing = objects_server.backing
    original, tampered = os.urandom(size), os.urandom(size)
    info = backing.put_bytes(original)
    if isinstance(backing, LocalObjectStore):
        path = backing.path_of(info.oid)
        path.chmod(stat.S_IWUSR | stat.S_IRUSR)
        path.write_bytes(tampered)
    else:
        assert isinstance(backing, S3ObjectStore)
        backing.client.put_object(Bucket=backing.bucket, Key=backing.key_of(info.oid),
                                  Body=tampered)  # fmt: skip
    client = HttpObjectStore(objects_server.url)
    # verified by the server before sending (small), or by the client as it arrives;
    # a big streamed one is broken off by the server before its last block
    expected = ObjectCorrupted if size < MiB or objects_server.mode == "s3" else ObjectStoreError
    with pytest.raises(expected):
        client.get_file(info.oid, tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out*")) == []
    with pytest.raises(expected), client.open(info.oid) as f:
        f.read()


def test_bad_names_are_refused(objects_server: ObjectsServer) -> None:
    api = objects_server.api
    for bad in ("..%2F..%2Fetc%2Fpasswd", "ABCDEF", "0" * 63 + "g", "%2E%2E"):
        r = httpx.get(f"{api}/objects/{bad}/location")
        assert r.status_code in (400, 404), bad
        assert r.json()["error"]["code"] in ("invalid_value", "not_found")
    r = httpx.put(f"{api}/objects/..%2F..%2Fevil", content=b"x")
    assert r.status_code in (400, 404)
    r = httpx.post(f"{api}/objects/exists", json={"oids": ["../../etc/passwd"]})
    assert r.status_code == 400
    if objects_server.mode == "s3":
        r = httpx.post(f"{api}/objects/uploads/..%2Fx/complete", json={"oid": "0" * 64})
        assert r.status_code in (400, 404)
        r = httpx.post(f"{api}/objects/uploads/{'a' * 31}z/complete", json={"oid": "0" * 64})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value"


def test_streamed_upload_over_the_limit_is_refused(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    folder = tmp_path / "objs"
    url = serve(f"sqlite:///{tmp_path / 'm.db'}", objects=str(folder),
                env={"MLTRAIL_SERVER_MAX_OBJECT": str(MiB)})  # fmt: skip
    data = os.urandom(2 * MiB)
    r = httpx.put(f"{url}/api/v1/objects/{hash_bytes(data)}", content=data)
    assert r.status_code == 413
    chunked = httpx.post(f"{url}/api/v1/objects", content=iter([data[:MiB], data[MiB:]]))
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    assert list(LocalObjectStore(folder).iter_oids()) == []
    assert not any(p.is_file() for p in (folder / ".tmp").glob("*"))
