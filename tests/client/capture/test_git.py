"""The ``git`` section, against real repositories."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.client.capture import CaptureSettings, collect
from mltrail.client.capture.git import UNTRACKED_FILE_MAX_BYTES

from .conftest import git

ONLY_GIT = CaptureSettings(env=False, packages=False, hardware=False)


def test_clean_repo(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"train.py": "print(1)\n", "lib/model.py": "x = 1\n"})
    info = collect(ONLY_GIT, cwd=repo)["git"]
    assert info["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert info["branch"] == "main"
    assert info["root"] == str(repo)
    assert info["dirty"] is False
    assert info["diff"] == "" and info["diff_truncated"] is False
    assert info["untracked"] == []
    assert info["remote"] is None
    assert "untracked_content" not in info


def test_dirty_tree_diff_and_untracked(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"train.py": "lr = 0.1\n", "data.csv": "a,b\n"})
    (repo / "train.py").write_text("lr = 0.3\n")
    (repo / "staged.py").write_text("staged = True\n")
    git(repo, "add", "staged.py")
    (repo / "notes.txt").write_text("todo\n")
    (repo / "scratch").mkdir()
    (repo / "scratch" / "tmp.py").write_text("pass\n")
    info = collect(ONLY_GIT, cwd=repo)["git"]
    assert info["dirty"] is True
    assert "-lr = 0.1\n+lr = 0.3\n" in info["diff"]
    assert "+staged = True" in info["diff"]  # staged changes are part of `git diff HEAD`
    assert "notes.txt" not in info["diff"]  # untracked content is not
    assert info["diff"] == git(repo, "diff", "HEAD")
    assert info["untracked"] == ["notes.txt", "scratch/"]  # as `git status` shows them


def test_only_untracked_files_is_not_dirty(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    (repo / "new.txt").write_text("x\n")
    info = collect(ONLY_GIT, cwd=repo)["git"]
    assert info["dirty"] is False and info["untracked"] == ["new.txt"]


def test_remote_credentials_are_stripped(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    git(repo, "remote", "add", "backup", "https://someone:pw@backup.example/x.git")
    git(repo, "remote", "add", "origin", "https://bob:ghp_s3cr3t@github.com/acme/x.git")
    info = collect(ONLY_GIT, cwd=repo)["git"]
    assert info["remote"] == "https://github.com/acme/x.git"
    git(repo, "remote", "remove", "origin")
    assert collect(ONLY_GIT, cwd=repo)["git"]["remote"] == "https://backup.example/x.git"


def test_ssh_remote_is_kept(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    git(repo, "remote", "add", "origin", "git@github.com:acme/x.git")
    assert collect(ONLY_GIT, cwd=repo)["git"]["remote"] == "git@github.com:acme/x.git"


def test_diff_is_truncated_with_a_marker(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"big.txt": "".join(f"line {i}\n" for i in range(2000))})
    (repo / "big.txt").write_text("".join(f"changed {i}\n" for i in range(2000)))
    full = git(repo, "diff", "HEAD")
    settings = CaptureSettings(env=False, packages=False, hardware=False, max_diff_bytes=500)
    info = collect(settings, cwd=repo)["git"]
    assert info["diff_truncated"] is True
    kept, marker = info["diff"].rsplit("\n[mltrail: diff truncated", 1)
    assert full.startswith(kept + "\n")
    assert len(kept.encode()) <= 500
    assert "MLTRAIL_CAPTURE_DIFF_MAX_BYTES" in marker
    untouched = collect(ONLY_GIT, cwd=repo)["git"]
    assert untouched["diff_truncated"] is False and untouched["diff"] == full


def test_diff_can_be_switched_off(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    (repo / "train.py").write_text("changed\n")
    settings = CaptureSettings(diff=False, env=False, packages=False, hardware=False)
    info = collect(settings, cwd=repo)["git"]
    assert info["dirty"] is True and "diff" not in info and "diff_truncated" not in info


def test_untracked_content_only_when_opted_in(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    (repo / "notes.txt").write_text("remember the seed\n")
    (repo / "scratch").mkdir()
    (repo / "scratch" / "try.py").write_text("print('x')\n")
    (repo / "huge.txt").write_text("x" * (UNTRACKED_FILE_MAX_BYTES + 1))
    (repo / "weights.bin").write_bytes(b"\x00\x01\x02")
    (repo / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    assert "untracked_content" not in collect(ONLY_GIT, cwd=repo)["git"]
    settings = CaptureSettings(env=False, packages=False, hardware=False, untracked_content=True)
    info = collect(settings, cwd=repo)["git"]
    assert sorted(info["untracked"]) == [
        "huge.txt", "latin1.txt", "notes.txt", "scratch/try.py", "weights.bin"
    ]  # fmt: skip
    assert info["untracked_content"] == {
        "notes.txt": "remember the seed\n",
        "scratch/try.py": "print('x')\n",
    }


def test_untracked_content_stays_within_budget(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    for i in range(5):
        (repo / f"f{i}.txt").write_text("y" * 100)
    settings = CaptureSettings(
        env=False, packages=False, hardware=False, untracked_content=True, max_diff_bytes=250
    )
    content = collect(settings, cwd=repo)["git"]["untracked_content"]
    assert len(content) == 2


def test_unborn_branch(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"train.py": "print('first')\n"}, commit=False)
    info = collect(ONLY_GIT, cwd=repo)["git"]
    assert info["commit"] is None and info["branch"] == "main"
    assert info["dirty"] is True
    assert "+print('first')" in info["diff"]


def test_detached_head_has_no_branch(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    git(repo, "checkout", "-q", "--detach")
    info = collect(ONLY_GIT, cwd=repo)["git"]
    assert info["branch"] is None and info["commit"]


def test_from_a_subdirectory(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"src/pkg/train.py": "x\n"})
    (repo / "top.txt").write_text("new\n")
    info = collect(ONLY_GIT, cwd=repo / "src" / "pkg")["git"]
    assert info["root"] == str(repo)
    assert info["untracked"] == ["top.txt"]  # paths are relative to the root


def test_never_rewrites_the_index(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    index = repo / ".git" / "index"
    before = index.read_bytes()
    st = (repo / "train.py").stat()
    os.utime(repo / "train.py", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    collect(ONLY_GIT, cwd=repo)  # plain `git status` would refresh the stat info here
    assert index.read_bytes() == before
    assert not (repo / ".git" / "index.lock").exists()


def test_outside_a_repository(tmp_path: Path) -> None:
    info = collect(ONLY_GIT, cwd=tmp_path)
    assert "git" not in info and "errors" not in info


def test_without_git_installed(
    make_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    info = collect(ONLY_GIT, cwd=repo)
    assert "git" not in info and "errors" not in info


def test_switched_off(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    settings = CaptureSettings(git=False, env=False, packages=False, hardware=False)
    assert "git" not in collect(settings, cwd=repo)


def test_a_broken_repository_is_reported_not_raised(tmp_path: Path) -> None:
    work = tmp_path / "worktree"
    work.mkdir()
    (work / ".git").write_text(f"gitdir: {tmp_path / 'gone'}\n")  # a deleted worktree
    info = collect(ONLY_GIT, cwd=work)
    assert "git" not in info
    assert info["errors"]["git"].startswith("RuntimeError: git rev-parse: fatal:")
