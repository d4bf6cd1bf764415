"""``mltrail data remote add|list``, ``push``, ``fetch``, ``pull`` with a folder remote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mltrail
from mltrail.objects import open_object_store
from tests.data import test_data as base

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
