"""``mltrail data remote add|list``, ``push``, ``fetch``, ``pull`` with a folder remote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mltrail
from mltrail.objects import open_object_store
from tests.data import test_data as base
from tests.server.conftest import make_s3_store, s3_endpoint, serve

__all__ = ["make_s3_store", "s3_endpoint", "serve"]

repo = base.repo  # the fixture: a git repo as working folder, with its own store
cli, cli_json, git, fails = base.cli, base.cli_json, base.git, base.fails


def test_push_sends_only_missing_objects_and_remembers_them(repo: Path) -> None:
    assert "no data remote" in fails("data", "push")
    added = cli_json("data", "add", "data/images")
    out = cli_json("data", "remote", "add", "origin", "../remote")
    assert out["default"] == "origin"
    assert "origin: ../remote" in (repo / ".mltrail-remotes.yaml").read_text()
    first = cli_json("data", "push")
    [row] = first["pointers"]
    assert (row["objects"], row["checked"], row["transferred"]) == (4, 4, 4)
    assert row["bytes"] > 2572  # the files and the manifest
    remote = open_object_store(repo.parent / "remote")
    assert remote.exists(added["hash"])
    # the index knows what the remote has: no remote call per object, even if it is gone
    shutil.move(repo.parent / "remote", repo.parent / "moved")
    [again] = cli_json("data", "push")["pointers"]
    assert (again["checked"], again["transferred"]) == (0, 0)
    shutil.move(repo.parent / "moved", repo.parent / "remote")
    (repo / "data" / "images" / "a.txt").write_text("changed\n")
    cli_json("data", "add", "data/images")
    [changed] = cli_json("data", "push", "data/images", "--remote", "origin")["pointers"]
    assert (changed["checked"], changed["transferred"]) == (2, 2)  # one file, the manifest
    listed = cli_json("data", "remote", "list")
    assert listed == {"default": "origin", "remotes": {"origin": "../remote"}}
    assert "no data remote 'nope'" in fails("data", "push", "--remote", "nope")


def test_pull_in_a_clone_with_its_own_store(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    added = cli_json("data", "add", "data/images")
    cli_json("data", "remote", "add", "origin", str(repo.parent / "remote"))
    cli_json("data", "push")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    clone = repo.parent / "clone"
    git(repo.parent, "clone", "-q", str(repo), str(clone))
    store2 = repo.parent / "store2" / "mltrail.db"
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{store2}")
    monkeypatch.chdir(clone)
    assert not (clone / "data" / "images").exists()
    assert "is not in" in fails("data", "status")  # this store has nothing yet
    [fetched] = cli_json("data", "fetch")["pointers"]
    assert (fetched["objects"], fetched["transferred"]) == (4, 4)
    [pulled] = cli_json("data", "pull")["pointers"]
    assert (pulled["transferred"], pulled["state"]) == (0, "missing")
    assert (clone / "data" / "images" / "sub" / "c.txt").read_text() == "gamma\n"
    assert cli_json("data", "status")[0]["state"] == "unchanged"
    # the fetched data is a dataset version of the clone's store, so gc keeps it
    client = mltrail.Client(f"sqlite:///{store2}")
    [v] = client._art.artifact_versions("default", "data.images")
    assert v.digest == added["hash"]
    gc = cli_json("gc", "--yes", "--grace", "0")
    assert gc["deleted"] == [] and gc["referenced"] >= 4
    shutil.rmtree(clone / "data" / "images")
    assert cli_json("data", "checkout")[0]["state"] == "missing"
    assert cli_json("data", "status")[0]["state"] == "unchanged"


def test_fetch_fails_clearly_when_the_remote_lacks_the_data(repo: Path) -> None:
    cli_json("data", "add", "data/images")
    cli_json("data", "remote", "add", "empty", "../empty")
    shutil.rmtree(repo.parent / "store" / "objects")
    message = fails("data", "fetch")
    assert "is not in" in message and "mltrail data push" in message


# -- every kind of remote: a folder, S3 (moto on loopback), another mltrail server --------


@pytest.fixture(params=["folder", "s3", "server"])
def remote_url(request: pytest.FixtureRequest, repo: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "folder":
        return str(repo.parent / "remote")
    if request.param == "s3":
        endpoint: str = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("make_s3_store")().bucket
        monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", endpoint)
        return f"s3://{bucket}/data"
    serve = request.getfixturevalue("serve")
    url: str = serve(f"sqlite:///{repo.parent / 'server' / 'mltrail.db'}")
    return url


def test_push_verify_and_pull_on_each_kind_of_remote(
    repo: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = cli_json("data", "add", "data/images")
    cli_json("data", "remote", "add", "origin", remote_url)
    [first] = cli_json("data", "push", "-j", "2")["pointers"]
    assert (first["objects"], first["transferred"]) == (4, 4)
    [again] = cli_json("data", "push")["pointers"]
    assert (again["checked"], again["transferred"]) == (0, 0)  # the index knows
    [verified] = cli_json("data", "push", "--verify")["pointers"]
    assert (verified["checked"], verified["transferred"]) == (4, 0)  # asked, all there

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    clone = repo.parent / "clone"
    git(repo.parent, "clone", "-q", str(repo), str(clone))
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{repo.parent / 'store2' / 'x.db'}")
    monkeypatch.chdir(clone)
    [pulled] = cli_json("data", "pull")["pointers"]
    assert (pulled["transferred"], pulled["state"]) == (4, "missing")
    assert (clone / "data" / "images" / "b.bin").read_bytes() == bytes(range(256)) * 10
    assert cli_json("data", "status")[0]["state"] == "unchanged"
    assert open_object_store(remote_url).exists(added["hash"])


class _Interrupt:
    """A progress display whose user presses Ctrl-C after ``after`` objects."""

    def __init__(self, after: int) -> None:
        self.after, self.seen = after, 0

    def start(self, objects: int, nbytes: int) -> None:
        self.total = objects

    def advance(self, nbytes: int) -> None:
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt


def test_an_interrupted_push_resumes_where_it_stopped(repo: Path) -> None:
    from mltrail.config import local_dir, resolve_uri
    from mltrail.data.remotes import RemoteIndex, open_remote, push

    many = repo / "data" / "many"
    many.mkdir()
    for i in range(60):
        (many / f"{i:03}.txt").write_text(f"file {i}\n")
    cli_json("data", "add", "data/many")
    cli_json("data", "remote", "add", "origin", "../remote")
    objects = open_object_store(repo.parent / "store" / "objects")
    url, remote = open_remote(repo, None)
    index = RemoteIndex(local_dir(resolve_uri(None)), url)
    with pytest.raises(KeyboardInterrupt):
        push(objects, remote, index, "data/many", jobs=1, progress=_Interrupt(after=25))
    assert len(index.known) == 24  # the 25th raised before it was counted as done
    manifest = parse_pointer_hash(repo / "data" / "many.mltrail")
    assert not remote.exists(manifest)  # the manifest goes last
    oids = {o.oid for o in remote.iter_oids()}
    # the push stopped: the 25th arrived, and perhaps one or two the worker began before
    # the rest were cancelled (how many depends on the scheduler)
    assert 25 <= len(oids) < 60
    [resumed] = cli_json("data", "push", "data/many")["pointers"]
    # the index spares asking about 24; those that arrived unindexed are asked, not re-sent
    assert (resumed["checked"], resumed["transferred"]) == (61 - 24, 61 - len(oids))
    assert remote.exists(manifest)


def parse_pointer_hash(path: Path) -> str:
    from mltrail.data.pointer import read_pointer

    return read_pointer(path).hash
