"""``mltrail data add|status|checkout|diff`` in real git repositories in tmp dirs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mltrail.cli import app
from mltrail.data.pointer import parse_pointer
from tests.cli.helpers import PLAIN_ENV, ok

runner = CliRunner()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository as the working folder, with its own tracking store."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    monkeypatch.chdir(root)
    for var in ("MLTRAIL_TRACKING_URI", "MLTRAIL_OBJECTS", "MLTRAIL_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'mltrail.db'}")
    (root / ".gitignore").write_text("/.mltrail\n")
    images = root / "data" / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.txt").write_text("alpha\n")
    (images / "b.bin").write_bytes(bytes(range(256)) * 10)
    (images / "sub" / "c.txt").write_text("gamma\n")
    return root


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), env=PLAIN_ENV)


def cli_json(*args: str) -> Any:
    return json.loads(ok(cli(*args, "--json")))


def fails(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code != 0, result.output
    from mltrail.errors import MltrailError

    assert isinstance(result.exception, MltrailError), result.exception
    return result.exception.message + " " + (result.exception.hint or "")


def test_add_writes_a_stable_pointer_and_ignores_the_data_once(repo: Path) -> None:
    out = cli_json("data", "add", "data/images/")
    pointer = repo / "data" / "images.mltrail"
    text = pointer.read_text()
    assert out["pointer"] == "data/images.mltrail"
    assert (out["files"], out["size"], out["type"]) == (3, 6 + 2560 + 6, "directory")
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split(":")[0] for line in body] == ["path", "hash", "size", "files", "type"]
    assert parse_pointer(text, "x").hash == out["hash"]
    assert (repo / "data" / ".gitignore").read_text() == "/images\n"
    again = cli_json("data", "add", "data/images")
    assert again["hash"] == out["hash"]
    assert again["pointer_written"] is False and again["gitignore_added"] is False
    assert pointer.read_bytes() == text.encode()
    assert (repo / "data" / ".gitignore").read_text() == "/images\n"
    # git sees the pointer but not the data
    git(repo, "add", "-A")
    tracked = git(repo, "ls-files").split()
    assert "data/images.mltrail" in tracked
    assert not any(t.startswith("data/images/") for t in tracked)


def test_add_a_single_file_appends_to_an_existing_gitignore(repo: Path) -> None:
    model = repo / "model.pt"
    model.write_bytes(b"weights")
    (repo / ".gitignore").write_text("/.mltrail")  # no trailing newline
    out = cli_json("data", "add", "model.pt")
    assert (out["type"], out["files"], out["size"]) == ("file", 1, 7)
    assert (repo / ".gitignore").read_text() == "/.mltrail\n/model.pt\n"
    model.write_bytes(b"changed")
    st = cli_json("data", "status", "model.pt")
    assert st[0]["state"] == "modified" and st[0]["modified"] == ["model.pt"]
    ok(cli("data", "checkout", "model.pt"))
    assert model.read_bytes() == b"weights"


def test_status_reports_added_removed_modified_and_missing(repo: Path) -> None:
    ok(cli("data", "add", "data/images"))
    assert cli_json("data", "status")[0]["state"] == "unchanged"
    images = repo / "data" / "images"
    (images / "a.txt").write_text("ALPHA\n")
    (images / "sub" / "c.txt").unlink()
    (images / "new.txt").write_text("new\n")
    [st] = cli_json("data", "status")
    assert st["pointer"] == "data/images.mltrail"
    assert (st["state"], st["added"], st["removed"], st["modified"]) == (
        "modified",
        ["new.txt"],
        ["sub/c.txt"],
        ["a.txt"],
    )
    text = ok(cli("data", "status", "data/images.mltrail"))
    assert "modified" in text and "+ new.txt" in text and "- sub/c.txt" in text
    os.rename(images, repo / "elsewhere")
    [st] = cli_json("data", "status", "data/images")
    assert st["state"] == "missing"
    assert sorted(st["removed"]) == ["a.txt", "b.bin", "sub/c.txt"]


def test_checkout_restores_modified_deleted_and_removes_extra_files(repo: Path) -> None:
    ok(cli("data", "add", "data/images"))
    images = repo / "data" / "images"
    (images / "a.txt").write_text("ALPHA\n")
    (images / "sub" / "c.txt").unlink()
    (images / "extra").mkdir()
    (images / "extra" / "x.txt").write_text("x")
    [done] = cli_json("data", "checkout")
    assert done["state"] == "modified"
    assert (images / "a.txt").read_text() == "alpha\n"
    assert (images / "sub" / "c.txt").read_text() == "gamma\n"
    assert not (images / "extra").exists()
    assert cli_json("data", "status")[0]["state"] == "unchanged"
    # the restored file is writable and editing it does not touch the store
    (images / "a.txt").write_text("edited\n")
    ok(cli("data", "checkout", "data/images"))
    assert (images / "a.txt").read_text() == "alpha\n"
    # a deleted folder comes back whole
    import shutil

    shutil.rmtree(images)
    text = ok(cli("data", "checkout"))
    assert "restored" in text
    assert sorted(p.name for p in images.rglob("*") if p.is_file()) == ["a.txt", "b.bin", "c.txt"]


def test_data_follows_git_checkout_and_diff_lists_changes(repo: Path) -> None:
    images = repo / "data" / "images"
    ok(cli("data", "add", "data/images"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    v1 = git(repo, "rev-parse", "HEAD").strip()
    (images / "a.txt").write_text("alpha v2\n")
    (images / "b.bin").unlink()
    (images / "d.txt").write_text("delta\n")
    ok(cli("data", "add", "data/images"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2")

    [d] = cli_json("data", "diff", v1, "HEAD")
    assert d["pointer"] == "data/images.mltrail" and d["changed"] is True
    assert (d["added"], d["removed"], d["modified"]) == (["d.txt"], ["b.bin"], ["a.txt"])
    [same] = cli_json("data", "diff", "HEAD", "HEAD", "data/images")
    assert same["changed"] is False and same["modified"] == []
    text = ok(cli("data", "diff", v1, "main"))
    assert "+ d.txt" in text and "- b.bin" in text and "M a.txt" in text

    git(repo, "checkout", "-q", v1)
    assert cli_json("data", "status")[0]["state"] == "modified"
    ok(cli("data", "checkout"))
    assert (images / "a.txt").read_text() == "alpha\n"
    assert (images / "b.bin").read_bytes() == bytes(range(256)) * 10
    assert not (images / "d.txt").exists()
    git(repo, "checkout", "-q", "main")
    ok(cli("data", "checkout", "--mode", "copy"))
    assert (images / "a.txt").read_text() == "alpha v2\n"
    assert (images / "d.txt").read_text() == "delta\n"


def test_data_command_in_a_subprocess(repo: Path) -> None:
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR",)}
    env["NO_COLOR"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "mltrail", "data", "status", "nothing/here"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2  # a validation error
    assert "no pointer file nothing/here.mltrail" in done.stderr
    assert "mltrail data add" in done.stderr
    assert "Traceback" not in done.stderr


def test_errors_missing_path_damaged_pointer_missing_object(repo: Path) -> None:
    assert "does not exist" in fails("data", "add", "data/nope")
    assert not (repo / "data" / "nope.mltrail").exists()

    out = cli_json("data", "add", "data/images")
    pointer = repo / "data" / "images.mltrail"
    good = pointer.read_text()
    pointer.write_text(good.replace(out["hash"], "not-a-hash"))
    msg = fails("data", "status")
    assert "damaged" in msg and "not-a-hash" in msg and "git checkout" in msg
    pointer.write_text("path: [unclosed\n")
    assert "not valid YAML" in fails("data", "checkout", "data/images")
    pointer.write_text(good)

    store = repo.parent / "store" / "objects"
    import mltrail.objects.hashing as hashing

    oid = hashing.hash_bytes(b"gamma\n")
    obj = store / oid[:2] / oid[2:]
    assert obj.exists()
    obj.chmod(0o644)
    obj.unlink()
    (repo / "data" / "images" / "sub" / "c.txt").unlink()
    msg = fails("data", "checkout")
    assert "1 object(s)" in msg and "sub/c.txt" in msg and oid[:12] in msg

    (repo / "data" / "images" / "a.txt").write_text("gone\n")
    assert "not a commit" in fails("data", "diff", "nosuchrev", "HEAD", "data/images")


def test_progress_reports_each_file_once(repo: Path) -> None:
    from mltrail.data import add, status
    from mltrail.objects import open_object_store

    objects = open_object_store(repo.parent / "store" / "objects")
    seen: list[int] = []
    result = add(objects, repo / "data" / "images", progress=seen.append)
    assert sum(seen) == result.pointer.size == 2572 and len(seen) == 3
    assert result.version is None  # no tracking store given
    assert status(objects, repo / "data" / "images").state == "unchanged"
