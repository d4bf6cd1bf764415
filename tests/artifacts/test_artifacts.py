"""Versioned artifacts on both metadata backends: dedupe, aliases, lineage, safety."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import mltrail
from mltrail.artifacts.names import parse_spec, validate_relpath
from mltrail.errors import (
    ArtifactNotFound,
    InvalidArtifactPath,
    InvalidValueError,
    ObjectCorrupted,
    QuerySyntaxError,
)

MakeRun = Callable[..., mltrail.Run]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLTRAIL_OBJECTS", str(tmp_path / "objects"))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _objects(tmp_path: Path) -> list[Path]:
    root = tmp_path / "objects"
    return [p for p in root.glob("??/*") if p.is_file()]  # objects only, not .tmp/ or markers


def test_versions_dedupe_and_latest(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    data = _tree(tmp_path / "model", {"weights.bin": "w" * 1000, "cfg/config.json": "{}"})
    run = make_run()
    v0 = run.log_artifact(data, name="resnet", type="model", metadata={"acc": 0.9},
                          aliases=["best"])  # fmt: skip
    stored = len(_objects(tmp_path))
    again = run.log_artifact(data, name="resnet", type="model")
    assert again.version == 0 and len(_objects(tmp_path)) == stored  # nothing new
    (data / "weights.bin").write_text("x" * 1000)
    v1 = run.log_artifact(data, name="resnet", type="model")
    assert len(_objects(tmp_path)) == stored + 2  # the changed file + a new manifest
    run.finish()
    assert (v0.version, v0.file_count, v0.size, v0.metadata) == (0, 2, 1002, {"acc": 0.9})
    assert v1.spec == "resnet:v1" and v1.aliases == ("latest",)
    assert client.get_artifact("resnet").version == 1
    assert client.get_artifact("resnet:best").version == 0
    assert client.get_artifact("resnet:v0").digest == v0.digest
    assert [v.version for v in client.artifact_versions("resnet")] == [0, 1]
    assert client.diff_artifacts("resnet:v0", "resnet:v1") == {
        "added": [], "removed": [], "modified": ["weights.bin"]
    }  # fmt: skip
    assert [a.name for a in client.list_artifacts(type="model")] == ["resnet"]
    with pytest.raises(InvalidValueError, match="type"):
        client.put_artifact(data, name="resnet", type="dataset", project="test")


def test_use_artifact_records_input_and_lineage(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    raw = _tree(tmp_path / "raw", {"a.csv": "1,2\n", "b.csv": "3,4\n"})
    prep = make_run(name="prep")
    prep.log_artifact(raw, name="dataset", type="dataset")
    prep.finish()
    train = make_run(name="train")
    path = train.use_artifact("dataset:latest")
    assert sorted(p.name for p in path.iterdir()) == ["a.csv", "b.csv"]
    assert (path / "a.csv").read_text() == "1,2\n"
    model = _tree(tmp_path / "m", {"model.pt": "weights"})
    train.log_artifact(model, name="clf", type="model")
    train.finish()
    up = client.lineage("clf:v0", direction="up", depth=4)
    assert up.id == "clf:v0" and up.children[0].id == train.id
    assert up.children[0].children[0].id == "dataset:v0"
    assert up.children[0].children[0].children[0].id == prep.id
    down = client.lineage(prep.id, direction="down", depth=4)
    assert down.children[0].children[0].children[0].id == "clf:v0"
    # the cache is reused
    again = make_run().use_artifact("dataset")
    assert again == path


def test_alias_moves_are_recorded(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    run = make_run()
    for i in range(3):
        run.log_artifact(_tree(tmp_path / f"d{i}", {"f": str(i)}), name="ds", type="dataset")
    run.finish()
    client.set_alias("ds", "champion", 1, reason="best val")
    client.set_alias("ds", "champion", "v2")
    client.set_alias("ds", "champion", None)
    events = client.alias_history("ds")
    assert [(e.alias, e.from_version, e.to_version) for e in events] == [
        ("champion", None, 1), ("champion", 1, 2), ("champion", 2, None)
    ]  # fmt: skip
    assert events[0].reason == "best val" and events[0].actor
    with pytest.raises(InvalidValueError, match="reserved"):
        client.set_alias("ds", "latest", 0)
    with pytest.raises(ArtifactNotFound):
        client.set_alias("ds", "x", 7)
    with pytest.raises(ArtifactNotFound):
        client.get_artifact("nope:v0")


def test_reference_artifacts_are_not_copied(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    big = _tree(tmp_path / "bucket", {"shard-0.bin": "data0", "shard-1.bin": "data1"})
    run = make_run()
    ref = run.log_reference(big, name="shards", type="dataset")
    run.finish()
    assert ref.reference and ref.file_count == 2
    assert len(_objects(tmp_path)) == 1  # only the manifest
    out = client.download_artifact("shards", root=tmp_path / "out")
    assert (out / "shard-1.bin").read_text() == "data1"
    (big / "shard-0.bin").write_text("changed")
    with pytest.raises(ObjectCorrupted, match="changed since it was logged"):
        client.download_artifact("shards", root=tmp_path / "out2")


@pytest.mark.parametrize(
    "bad", ["../evil", "/abs/path", "a/../../b", "a\x00b", "", "a//b", "C:/x", "a\\b", "./a"]
)
def test_unsafe_manifest_paths_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidArtifactPath):
        validate_relpath(bad)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 129, "a b"])
def test_unsafe_names_are_rejected(bad: str, make_run: MakeRun, tmp_path: Path) -> None:
    f = _tree(tmp_path, {"f.txt": "x"}) / "f.txt"
    run = make_run()
    with pytest.raises(InvalidArtifactPath):
        run.log_artifact(f, name=bad)
    run.finish()


def test_specs() -> None:
    assert parse_spec("m") == ("m", None) and parse_spec("m:latest") == ("m", None)
    assert parse_spec("m:v3") == ("m", 3) and parse_spec("m:best") == ("m", "best")
    with pytest.raises(InvalidArtifactPath):
        parse_spec("m:../x")


def test_symlink_escaping_the_folder_is_refused(make_run: MakeRun, tmp_path: Path) -> None:
    secret = _tree(tmp_path / "outside", {"secret.txt": "s"}) / "secret.txt"
    data = _tree(tmp_path / "data", {"ok.txt": "ok"})
    os.symlink(secret, data / "link.txt")
    run = make_run()
    with pytest.raises(InvalidArtifactPath, match="outside the artifact folder"):
        run.log_artifact(data, name="data")
    run.finish()


def test_checkout_never_writes_through_a_symlink(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    run = make_run()
    run.log_artifact(_tree(tmp_path / "d", {"sub/f.txt": "x"}), name="d")
    run.finish()
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dest / "sub")
    with pytest.raises(InvalidArtifactPath, match="outside"):
        client.download_artifact("d", root=dest)
    assert not (tmp_path / "elsewhere" / "f.txt").exists()


def test_corrupt_object_fails_loudly_and_leaves_nothing(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    run = make_run()
    v = run.log_artifact(_tree(tmp_path / "d", {"f.bin": "payload" * 100}), name="d")
    run.finish()
    (entry,) = client.manifest("d")
    obj = tmp_path / "objects" / entry.oid[:2] / entry.oid[2:]
    obj.chmod(0o644)
    obj.write_text("tampered" * 100)
    with pytest.raises(ObjectCorrupted):
        client.download_artifact("d")
    cache = tmp_path / "cache"
    assert not (cache / v.digest).exists()
    assert not [p for p in cache.iterdir() if p.name.endswith(".partial")]


def test_cache_is_bounded_lru(make_run: MakeRun, client: mltrail.Client, tmp_path: Path) -> None:
    run = make_run()
    for i in range(3):
        run.log_artifact(_tree(tmp_path / f"d{i}", {"f": "x" * 1000 + str(i)}), name=f"a{i}")
    run.finish()
    paths = [client.download_artifact(f"a{i}") for i in range(3)]
    client.download_artifact("a0")  # most recently used now
    removed, freed = client.cache_prune(max_bytes=2100)
    assert (removed, freed) == (1, 1001)
    assert paths[0].exists() and not paths[1].exists() and paths[2].exists()


def test_gc_keeps_referenced_and_young_objects(client: mltrail.Client, tmp_path: Path) -> None:
    client.put_artifact(_tree(tmp_path / "d", {"f": "kept"}), name="d", project="p")
    from mltrail.objects import open_object_store

    objects = open_object_store(str(tmp_path / "objects"))
    orphan = objects.put_bytes(b"nobody points at me").oid
    report = client.gc(dry_run=True, grace_seconds=0)
    assert report.garbage == (orphan,) and objects.exists(orphan)
    assert client.gc(dry_run=False, grace_seconds=3600).deleted == ()  # too young
    assert client.gc(dry_run=False, grace_seconds=0).deleted == (orphan,)
    assert not objects.exists(orphan)
    assert client.download_artifact("p/d").joinpath("f").read_text() == "kept"


def test_offline_runs_cannot_log_artifacts(store_uri: str, tmp_path: Path) -> None:
    from mltrail.errors import ConfigurationError

    run = mltrail.init(project="p", uri=store_uri, mode="offline")
    with pytest.raises(ConfigurationError, match="offline"):
        run.log_artifact(_tree(tmp_path, {"f": "x"}) / "f")
    run.finish()


def test_artifacts_on_s3_objects(
    make_run: MakeRun,
    client: mltrail.Client,
    tmp_path: Path,
    make_s3_store: Callable[..., object],
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same flow with blobs in an S3 API server (moto on loopback)."""
    bucket = make_s3_store()
    monkeypatch.setenv("MLTRAIL_OBJECTS", f"s3://{bucket.bucket}/{bucket.prefix}")  # type: ignore[attr-defined]
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    data = _tree(tmp_path / "d", {"a.txt": "alpha", "sub/b.txt": "beta" * 1000})
    run = make_run()
    v0 = run.log_artifact(data, name="ds", type="dataset", aliases=["best"])
    assert run.log_artifact(data, name="ds", type="dataset").version == 0
    run.finish()
    s3_client = mltrail.Client(client.uri)
    out = s3_client.download_artifact("ds:best", root=tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "beta" * 1000
    assert s3_client.get_artifact("ds").digest == v0.digest
    assert s3_client.gc(dry_run=True, grace_seconds=0).garbage == ()


def test_search_artifacts(make_run: MakeRun, client: mltrail.Client, tmp_path: Path) -> None:
    run = make_run()
    run.log_artifact(_tree(tmp_path / "m0", {"w": "0"}), name="resnet", type="model",
                     metadata={"framework": "torch", "acc": 0.9}, aliases=["best"])  # fmt: skip
    run.log_artifact(_tree(tmp_path / "m1", {"w": "1"}), name="resnet", type="model",
                     metadata={"framework": "torch", "acc": 0.8})  # fmt: skip
    run.log_artifact(_tree(tmp_path / "j", {"w": "j"}), name="jaxnet", type="model",
                     metadata={"framework": "jax", "acc": 0.95})  # fmt: skip
    run.log_artifact(_tree(tmp_path / "d", {"x": "d"}), name="data", type="dataset")
    run.finish()

    def found(q: str) -> list[str]:
        return sorted(v.spec for v in client.search_artifacts(q))

    assert found("type = 'model' and metadata.framework = 'torch'") == ["resnet:v0", "resnet:v1"]
    assert found("metadata.acc >= 0.9") == ["jaxnet:v0", "resnet:v0"]
    assert found("alias = 'best'") == ["resnet:v0"]
    assert found("alias = 'latest' and type = 'model'") == ["jaxnet:v0", "resnet:v1"]
    assert found("name like 'res%' and version = 1") == ["resnet:v1"]
    assert found("type != 'model' or metadata.framework = 'jax'") == ["data:v0", "jaxnet:v0"]
    assert found("metadata.framework is null") == ["data:v0"]
    assert len(found("")) == 4
    with pytest.raises(QuerySyntaxError, match="unknown attribute"):
        client.search_artifacts("status = 'x'")
    with pytest.raises(QuerySyntaxError):
        client.search_artifacts("metrics.acc > 1")


def test_specs_with_projects_and_ambiguous_names(client: mltrail.Client, tmp_path: Path) -> None:
    f = _tree(tmp_path / "d", {"f": "x"})
    client.put_artifact(f, name="shared", project="alpha")
    client.put_artifact(f, name="shared", project="zeta")
    with pytest.raises(InvalidValueError, match="several projects"):
        client.get_artifact("shared")
    assert client.get_artifact("zeta/shared").project == "zeta"
    assert client.get_artifact("shared:v0", project="alpha").project == "alpha"
    for bad in ("../evil", "ds:../x", "a/b/c", "/ds"):
        with pytest.raises(InvalidArtifactPath):
            client.get_artifact(bad)
    with pytest.raises(InvalidValueError, match="not a number"):
        client.set_alias("alpha/shared", "best", "vv0")


def test_gc_refuses_objects_shared_with_another_store(
    client: mltrail.Client, tmp_path: Path
) -> None:
    client.put_artifact(_tree(tmp_path / "d", {"f": "mine"}), name="d", project="p")
    other = mltrail.Client(f"sqlite:///{tmp_path / 'other' / 'mltrail.db'}")
    other.put_artifact(_tree(tmp_path / "e", {"f": "theirs"}), name="e", project="p")
    assert client.gc(dry_run=True, grace_seconds=0).garbage  # would hit the other's objects
    from mltrail.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="also used by"):
        client.gc(dry_run=False, grace_seconds=0)
    assert other.download_artifact("e", root=tmp_path / "out").joinpath("f").read_text() == "theirs"


def test_postgres_store_needs_an_explicit_object_location(
    pg_url_factory: Callable[..., str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mltrail.errors import ConfigurationError

    monkeypatch.delenv("MLTRAIL_OBJECTS")
    pg = mltrail.Client(pg_url_factory())
    with pytest.raises(ConfigurationError, match="MLTRAIL_OBJECTS"):
        pg.put_artifact(_tree(tmp_path / "d", {"f": "x"}), name="d")


def test_local_checkout_links_instead_of_copying(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    run = make_run()
    run.log_artifact(_tree(tmp_path / "d", {"big.bin": "x" * 10_000}), name="d")
    run.finish()
    out = client.download_artifact("d", root=tmp_path / "ws")
    (obj,) = [p for p in _objects(tmp_path) if p.stat().st_size == 10_000]
    same_inode = (out / "big.bin").stat().st_ino == obj.stat().st_ino
    # reflink where the filesystem can (a new inode), else a read-only hardlink
    assert same_inode or (out / "big.bin").read_text() == "x" * 10_000
    if same_inode:
        assert not os.access(obj, os.W_OK) or os.geteuid() == 0
        assert obj.stat().st_mode & 0o222 == 0


def test_hash_cache_skips_unchanged_files_but_sees_changes(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    import sqlite3

    from mltrail.config import local_dir

    data = _tree(tmp_path / "d", {"a.bin": "a" * 5000, "b.bin": "b" * 5000})
    run = make_run()
    v0 = run.log_artifact(data, name="d")
    cache = local_dir(client.uri) / "hashcache.sqlite"
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT count(*) FROM hashes").fetchone()[0] == 2
    assert run.log_artifact(data, name="d").digest == v0.digest  # from the cache
    st = (data / "a.bin").stat()
    (data / "a.bin").write_text("z" * 5000)  # same size ...
    os.utime(data / "a.bin", ns=(st.st_atime_ns, st.st_mtime_ns))  # ... same mtime
    v1 = run.log_artifact(data, name="d")  # ctime moved: re-read, new version
    run.finish()
    assert v1.version == 1
    assert client.diff_artifacts("d:v0", "d:v1")["modified"] == ["a.bin"]


def test_many_files_in_one_artifact_are_stored_once_each(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    """The batch path: nested folders, duplicates, an empty file, a big file, a FIFO."""
    from mltrail.objects.local import SMALL_MAX

    files = {f"d{i % 7}/sub{i % 3}/f{i:03d}.bin": f"content {i % 40}" for i in range(120)}
    data = _tree(tmp_path / "data", {**files, "empty": ""})
    big = os.urandom(SMALL_MAX + 5)
    (data / "big.bin").write_bytes(big)
    os.mkfifo(data / "pipe")  # not a file: skipped, never opened
    run = make_run()
    v = run.log_artifact(data, name="many", type="dataset")
    run.finish()
    assert v.file_count == 122 and v.size == sum(map(len, files.values())) + len(big)
    assert len(_objects(tmp_path)) == 40 + 1 + 1 + 1  # contents, empty, big, manifest
    out = client.download_artifact("many", root=tmp_path / "out")
    for rel, text in files.items():
        assert (out / rel).read_text() == text
    assert (out / "big.bin").read_bytes() == big and (out / "empty").read_bytes() == b""
    assert not (out / "pipe").exists()


def test_log_files_manifest_matches_the_files(tmp_path: Path) -> None:
    from mltrail.artifacts.ops import log_files, read_manifest
    from mltrail.objects.hashing import hash_file
    from mltrail.objects.local import LocalObjectStore

    data = _tree(tmp_path / "d", {f"x/{i}.txt": str(i) * i for i in range(30)})
    (data / "link.txt").symlink_to(data / "x" / "7.txt")  # inside: followed
    store = LocalObjectStore(tmp_path / "objs")
    cache = tmp_path / "hashcache.sqlite"
    digest, size, count = log_files(store, data, hash_cache=cache)
    entries = read_manifest(store, digest)
    assert count == len(entries) == 31
    for e in entries:
        assert (e.oid, e.size) == hash_file(data / e.path)
        assert store.path_of(e.oid).read_bytes() == (data / e.path).read_bytes()
    assert size == sum(e.size for e in entries)
    assert log_files(store, data, hash_cache=cache) == (digest, size, count)  # cache hits


def test_cached_hash_of_a_deleted_object_stores_the_file_again(
    make_run: MakeRun, client: mltrail.Client, tmp_path: Path
) -> None:
    data = _tree(tmp_path / "d", {"a.bin": "a" * 3000, "b.bin": "b" * 3000})
    run = make_run()
    v0 = run.log_artifact(data, name="d")
    (entry, _) = client.manifest("d")
    obj = tmp_path / "objects" / entry.oid[:2] / entry.oid[2:]
    obj.unlink()  # as gc would, had nothing referenced it
    assert run.log_artifact(data, name="d").digest == v0.digest
    run.finish()
    assert obj.read_text() == "a" * 3000
