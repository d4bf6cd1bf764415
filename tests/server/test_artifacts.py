"""Artifacts through a server: ``MLTRAIL_TRACKING_URI=http://...`` logs, downloads, aliases,
lineage and the CLI, against real servers (SQLite and PostgreSQL metadata; objects in a
local folder, streamed, or on S3 with presigned URLs), and two replicas on one
PostgreSQL + S3.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mltrail
from mltrail import Client
from mltrail.errors import InvalidArtifactPath, InvalidValueError, ObjectNotFound
from mltrail.objects.hashing import hash_bytes
from mltrail.objects.http import HttpObjectStore
from mltrail.objects.s3 import S3ObjectStore
from mltrail.store.http import HttpStore

MiB = 1 << 20
PART = 5 * MiB


def _tree(root: Path) -> Path:
    """A folder of a few files, one big enough for a multipart upload."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(6 * MiB + 17))
    (root / "config.json").write_text('{"lr": 0.01}')
    (root / "sub" / "deeper" / "notes.txt").write_text("hello\n")
    (root / "sub" / "empty").write_bytes(b"")
    return root


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


@pytest.fixture
def remote_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """``use(url)``: this process tracks to the server at ``url``."""

    def use(url: str) -> None:
        monkeypatch.setenv("MLTRAIL_TRACKING_URI", url)
        monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))

    return use


@pytest.fixture(params=["local", "s3"])
def objects_uri(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """Where a server keeps objects, and the environment it needs for that."""
    if request.param == "local":
        return str(tmp_path / "server-objects"), {}
    make: Callable[..., S3ObjectStore] = request.getfixturevalue("make_s3_store")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    env = {"MLTRAIL_S3_ENDPOINT_URL": endpoint, "MLTRAIL_SERVER_PART_SIZE": str(PART)}
    return make().uri, env


def test_log_use_download_and_lineage_remotely(
    serve: Callable[..., str],
    store_uri: str,
    objects_uri: tuple[str, dict[str, str]],
    remote_env: Callable[[str], None],
    tmp_path: Path,
) -> None:
    objects, env = objects_uri
    url = serve(store_uri, objects=objects, env=env)
    remote_env(url)
    data = _tree(tmp_path / "data")

    producer = mltrail.init(project="vision")
    v = producer.log_artifact(data, name="imagenet", type="dataset", aliases=["best"])
    producer.finish()
    assert (v.version, v.file_count, v.run_id) == (0, 4, producer.id)
    assert v.size == sum(f.stat().st_size for f in data.rglob("*") if f.is_file())

    client = Client()
    out = client.download_artifact("vision/imagenet:best", tmp_path / "out")
    assert _same_tree(data, out)

    consumer = mltrail.init(project="vision")
    used = consumer.use_artifact("imagenet:v0")
    assert _same_tree(data, used)
    consumer.log_artifact(data / "config.json", name="cfg")
    consumer.finish()

    edges = client.store.run_artifacts(consumer.id)  # type: ignore[attr-defined]
    assert [x.spec for x in edges["in"]] == ["imagenet:v0"]
    assert [x.spec for x in edges["out"]] == ["cfg:v0"]
    down = client.lineage("vision/imagenet:v0", "down", depth=3)
    assert [c.id for c in down.children] == [consumer.id]
    assert [g.id for g in down.children[0].children] == ["cfg:v0"]
    # the server's tree is the one the embedded client builds on the same store
    embedded = Client(store_uri)
    for target, direction in (("vision/imagenet:v0", "down"), (consumer.id, "up")):
        assert client.lineage(target, direction) == embedded.lineage(target, direction)


def test_artifact_api_matches_the_embedded_store(
    server_url: str, store_uri: str, remote_env: Callable[[str], None], tmp_path: Path
) -> None:
    remote_env(server_url)
    client = Client()
    data = _tree(tmp_path / "model")
    v0 = client.put_artifact(data, "net", "model", project="p", metadata={"acc": 0.9})
    (data / "config.json").write_text('{"lr": 0.02}')
    (data / "added.txt").write_text("new")
    v1 = client.put_artifact(data, "net", "model", project="p", aliases=["candidate"])
    assert (v0.version, v1.version) == (0, 1)
    assert client.put_artifact(data, "net", "model", project="p").version == 1  # same files
    client.set_alias("p/net", "best", 0, reason="it won")
    client.set_alias("p/net", "best", "v1")

    assert client.get_artifact("p/net:best").version == 1
    assert client.get_artifact("net:v0").metadata == {"acc": 0.9}  # found in any project
    assert [x.version for x in client.artifact_versions("net", "p")] == [0, 1]
    history = client.alias_history("net", "p")
    assert [(e.alias, e.from_version, e.to_version) for e in history] == [
        ("candidate", None, 1), ("best", None, 0), ("best", 0, 1)]  # fmt: skip
    assert client.diff_artifacts("p/net:v0", "p/net:v1") == {
        "added": ["added.txt"], "removed": [], "modified": ["config.json"]}  # fmt: skip
    found = client.search_artifacts("type = 'model' and alias = 'candidate'", "p")
    assert [x.spec for x in found] == ["net:v1"]
    remote_store = client.store
    assert isinstance(remote_store, HttpStore)
    entries = remote_store.artifact_manifest("p", "net", 1)
    assert sorted(e.path for e in entries) == sorted(e.path for e in client.manifest("p/net:v1"))
    assert remote_store.artifact_runs("p", "net", 1) == {"in": [], "out": []}

    embedded = Client(store_uri)  # what the server recorded is what the embedded API reads
    os.environ["MLTRAIL_OBJECTS"] = str(tmp_path / "server-objects")  # server_url's folder
    try:
        model = embedded.register_model("p/net:v1", "vision-net", sign=False)
    finally:
        del os.environ["MLTRAIL_OBJECTS"]
    assert model is not None
    down = client.lineage("p/net:v1", "down")
    assert [c.kind for c in down.children] == ["model"]  # registered model versions too
    assert down == embedded.lineage("p/net:v1", "down")
    up = client.lineage(f"vision-net@{model.version}", "up")
    assert up == embedded.lineage(f"vision-net@{model.version}", "up")
    assert up.kind == "model" and up.children[0].id == "net:v1"
    assert embedded.list_artifacts("p") == client.list_artifacts("p")
    assert embedded.alias_history("net", "p") == history
    assert embedded.search_artifacts(None, "p") == client.search_artifacts(None, "p")


def test_artifact_whose_objects_were_never_uploaded_is_refused(
    server_url: str, tmp_path: Path
) -> None:
    store = HttpStore(server_url)
    objects = HttpObjectStore(server_url)
    try:
        fields = {"project": "p", "name": "ghost", "type": "file", "metadata": {},
                  "run_id": None, "reference": False}  # fmt: skip
        never = hash_bytes(b"never uploaded")
        with pytest.raises(ObjectNotFound, match=r"manifest .* never uploaded"):
            store.create_artifact_version(digest=never, size=1, file_count=1, **fields)

        def manifest(files: list[list[object]]) -> str:
            doc = {"format": 1, "files": files}
            return objects.put_bytes(json.dumps(doc).encode()).oid

        real = objects.put_bytes(b"real").oid
        digest = manifest([["a.txt", real, 4], ["b/missing.bin", never, 14]])
        with pytest.raises(ObjectNotFound, match=r"1 of its 2 objects.*b/missing\.bin"):
            store.create_artifact_version(digest=digest, size=18, file_count=2, **fields)
        with pytest.raises(InvalidArtifactPath):  # path traversal in a manifest
            bad = manifest([["../../etc/evil", real, 4]])
            store.create_artifact_version(digest=bad, size=4, file_count=1, **fields)
        with pytest.raises(InvalidValueError, match="lists 1 files of 4 bytes"):
            ok = manifest([["a.txt", real, 4]])
            store.create_artifact_version(digest=ok, size=400, file_count=1, **fields)
        with pytest.raises(InvalidArtifactPath):
            store.get_artifact_version("p", "..", None)
        assert store.list_artifacts("p") == []
        v = store.create_artifact_version(digest=ok, size=4, file_count=1, **fields)
        assert v.spec == "ghost:v0"
    finally:
        store.close()
        objects.close()


def test_cli_artifacts_commands_remotely(server_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
    env.update(MLTRAIL_TRACKING_URI=server_url, MLTRAIL_CACHE_DIR=str(tmp_path / "cache"))
    data = _tree(tmp_path / "ds")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mltrail", "artifacts", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    put = json.loads(cli("put", str(data), "--name", "ds", "-p", "team", "--json"))
    assert put["version"] == 0 and put["created"] is True
    listed = json.loads(cli("ls", "-p", "team", "--json"))
    assert [x["name"] for x in listed] == ["ds"]
    got = json.loads(cli("get", "team/ds:v0", "--dest", str(tmp_path / "got"), "--json"))
    assert _same_tree(data, Path(got["path"]))


def test_two_replicas_on_one_postgresql_and_s3(
    serve: Callable[..., str],
    pg_url_factory: Callable[..., str],
    make_s3_store: Callable[..., S3ObjectStore],
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    pg, s3 = pg_url_factory(), make_s3_store()
    env = {"MLTRAIL_S3_ENDPOINT_URL": s3_endpoint, "MLTRAIL_SERVER_PART_SIZE": str(PART)}
    a, b = (serve(pg, objects=s3.uri, env=env) for _ in range(2))
    assert a != b
    clients = [Client(a), Client(b)]
    data = _tree(tmp_path / "data")
    v = clients[0].put_artifact(data, "shared", "dataset", project="p")
    assert _same_tree(data, clients[1].download_artifact("p/shared", tmp_path / "via-b"))
    for i in range(6):  # alternate: every write through one is read through the other
        writer, reader = clients[i % 2], clients[(i + 1) % 2]
        (data / "config.json").write_text(json.dumps({"round": i}))
        made = writer.put_artifact(data, "shared", "dataset", project="p")
        writer.set_alias("p/shared", f"round{i}", made.version)
        assert reader.get_artifact(f"p/shared:round{i}") == writer.get_artifact(
            f"p/shared:v{i + 1}"
        )
        assert reader.manifest(f"p/shared:round{i}") == writer.manifest(made.spec)
    assert clients[0].list_artifacts("p") == clients[1].list_artifacts("p")
    assert clients[1].lineage("p/shared:v0", "down") == clients[0].lineage("p/shared:v0", "down")
    assert v.version == 0
