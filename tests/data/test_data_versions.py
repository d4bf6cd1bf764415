"""Dataset versions in the tracking store: ``data add`` records them, gc keeps their
objects, and ``run.use_dataset`` links them to runs (lineage data -> run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mltrail
from mltrail.data.versions import dataset_name
from mltrail.objects import open_object_store
from tests.cli.helpers import ok
from tests.data import test_data as base

repo = base.repo  # the fixture: a git repo as working folder, with its own store
cli, cli_json, git = base.cli, base.cli_json, base.git


def _uri(repo: Path) -> str:
    return os.environ["MLTRAIL_TRACKING_URI"]


def test_add_records_a_dataset_version_only_when_the_content_changes(repo: Path) -> None:
    out = cli_json("data", "add", "data/images/")
    assert (out["project"], out["artifact"]) == ("default", "data.images:v0")
    client = mltrail.Client(_uri(repo))
    [v0] = client._art.artifact_versions("default", "data.images")
    assert (v0.type, v0.digest, v0.size, v0.file_count) == ("dataset", out["hash"], 2572, 3)
    assert v0.metadata["path"] == "data/images"
    assert cli_json("data", "add", "data/images")["artifact"] == "data.images:v0"
    (repo / "data" / "images" / "a.txt").write_text("ALPHA!\n")
    changed = cli_json("data", "add", "data/images")
    assert changed["artifact"] == "data.images:v1" and changed["hash"] != out["hash"]
    # from a subfolder the name is still relative to the git toplevel
    os.chdir(repo / "data")
    assert cli_json("data", "add", "images")["artifact"] == "data.images:v1"
    # another project, via the option
    other = cli_json("data", "add", "images", "--project", "vision")
    assert (other["project"], other["artifact"]) == ("vision", "data.images:v0")
    text = ok(cli("data", "add", "images"))
    assert "dataset version default/data.images:v1" in text


def test_dataset_names() -> None:
    assert dataset_name("data/images") == "data.images"
    assert dataset_name("model.pt") == "model.pt"
    assert dataset_name("raw data/é x") == "raw_data.__x"
    assert dataset_name(".hidden/x") == "hidden.x"


def test_paths_with_the_same_dotted_name_get_their_own_datasets(repo: Path) -> None:
    (repo / "a" / "b.c").mkdir(parents=True)
    (repo / "a" / "b.c" / "x.txt").write_text("one\n")
    (repo / "a.b" / "c").mkdir(parents=True)
    (repo / "a.b" / "c" / "x.txt").write_text("two\n")
    first = cli_json("data", "add", "a/b.c")["artifact"]
    second = cli_json("data", "add", "a.b/c")["artifact"]
    assert first == "a.b.c:v0"
    assert second.startswith("a.b.c-") and second.endswith(":v0")
    assert cli_json("data", "add", "a.b/c")["artifact"] == second  # stable
    (repo / "a" / "b.c" / "x.txt").write_text("three\n")
    assert cli_json("data", "add", "a/b.c")["artifact"] == "a.b.c:v1"


def test_gc_yes_keeps_data_objects_and_deletes_garbage(repo: Path) -> None:
    cli_json("data", "add", "data/images")
    objects_dir = repo.parent / "store" / "objects"
    stores = (objects_dir / ".mltrail-stores").read_text()
    assert "mltrail-data:" not in stores  # no fake user that makes gc refuse
    objects = open_object_store(objects_dir)
    stray = objects.put_bytes(b"nobody references me").oid
    gc = cli_json("gc", "--yes", "--grace", "0")
    assert gc["deleted"] == [stray], gc
    assert not objects.exists(stray)
    shutil.rmtree(repo / "data" / "images")
    [st] = cli_json("data", "checkout")
    assert st["state"] == "missing"
    assert (repo / "data" / "images" / "sub" / "c.txt").read_text() == "gamma\n"
    assert cli_json("data", "status")[0]["state"] == "unchanged"


def test_use_dataset_links_the_pointer_version_to_the_run(repo: Path) -> None:
    cli_json("data", "add", "data/images")
    uri = _uri(repo)
    with mltrail.init(project="default", uri=uri) as run:
        digest = run.use_dataset("data/images")
        run.log_artifact(repo / "data" / "images" / "a.txt", name="model", type="model")
        run_id = run.id
    pointer = base.parse_pointer((repo / "data" / "images.mltrail").read_text(), "p")
    assert digest == pointer.hash
    client = mltrail.Client(uri)
    assert client._art.artifact_runs("default", "data.images", 0)["in"] == [run_id]
    up = client.lineage("model:v0", direction="up", depth=3)
    [run_node] = up.children
    assert run_node.id == run_id
    assert [c.id for c in run_node.children] == ["data.images:v0"]
    down = client.lineage("data.images:v0", direction="down", depth=2)
    assert [c.id for c in down.children] == [run_id]
    assert [c.id for c in down.children[0].children] == ["model:v0"]
    record = client.get_run(run_id)
    [entry] = record.metadata["inputs"]
    assert entry["hash"] == pointer.hash and entry["name"] == "images"


def test_use_dataset_pointer_of_another_store_and_without_pointer(repo: Path) -> None:
    from mltrail.data import add

    objects = open_object_store(repo.parent / "elsewhere")
    add(objects, repo / "data" / "images")  # a pointer the tracking store never saw
    (repo / "plain.txt").write_text("plain\n")
    with mltrail.init(project="p2", uri=_uri(repo)) as run:
        run.use_dataset(repo / "data" / "images.mltrail")
        plain = run.use_dataset("plain.txt")  # no pointer: today's behaviour
        run_id = run.id
    client = mltrail.Client(_uri(repo))
    assert client._art.artifact_runs("p2", "data.images", 0)["in"] == [run_id]
    assert [v.name for v in client._art.list_artifacts("p2")] == ["data.images"]
    inputs = client.get_run(run_id).metadata["inputs"]
    assert [i["name"] for i in inputs] == ["images", "plain.txt"]
    assert inputs[1]["hash"] == plain and inputs[1]["files"] == 1
