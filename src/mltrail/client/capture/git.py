"""The git state of the working tree: commit, branch, remote, and what is uncommitted.

Four plumbing commands are started at once (``rev-parse``, ``status --porcelain=v2``,
``diff-index -p HEAD``, ``config --get-regexp``) and read later, so they run while the
caller gathers everything else. A capture never writes to the repository: ``status``
runs with ``GIT_OPTIONAL_LOCKS=0``, and the diff comes from ``diff-index``, which prints
what ``git diff HEAD`` prints but, unlike it, never refreshes the index file. Nothing
prompts (``GIT_TERMINAL_PROMPT=0``, stdin closed), and all the commands together must
finish within ``timeout`` seconds or are killed.

Untracked files are listed the way ``git status`` shows them (an untracked folder is
one entry, ``data/``), unless their content is wanted, in which case every file is
listed and small text files (``UNTRACKED_FILE_MAX_BYTES`` each, ``max_diff_bytes`` in
all) are read.

>>> probe = GitProbe.start(Path.cwd())  # doctest: +SKIP
>>> probe.result()["commit"]  # doctest: +SKIP
'3f2c...'
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from mltrail.client.capture.redact import strip_credentials

__all__ = ["GIT_TIMEOUT", "UNTRACKED_FILE_MAX_BYTES", "UNTRACKED_LIST_MAX", "GitProbe"]

GIT_TIMEOUT = 5.0
UNTRACKED_FILE_MAX_BYTES = 64 * 1024
UNTRACKED_LIST_MAX = 1000
_GIT_ENV = {
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "LC_ALL": "C",
}
_DIFF = ("diff-index", "-p", "--no-color", "--no-ext-diff", "--no-textconv")


def _in_work_tree(start: Path) -> bool:
    """Cheap check before spawning anything: a ``.git`` entry here or above."""
    if "GIT_DIR" in os.environ:
        return True
    return any((d / ".git").exists() for d in (start, *start.parents))


class GitProbe:
    """Git commands started together in ``cwd``; ``result()`` collects them."""

    def __init__(
        self,
        cwd: Path,
        *,
        diff: bool = True,
        max_diff_bytes: int = 1_000_000,
        untracked_content: bool = False,
        timeout: float = GIT_TIMEOUT,
    ) -> None:
        self._cwd = cwd
        self._max_diff = max(0, max_diff_bytes)
        self._untracked_content = untracked_content
        self._deadline = time.monotonic() + timeout
        self._git = shutil.which("git")
        self._env = {**os.environ, **_GIT_ENV}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._errors: dict[str, str] = {}
        if self._git is None or not _in_work_tree(cwd):
            return
        untracked = "all" if untracked_content else "normal"
        self._spawn("toplevel", "rev-parse", "--show-toplevel", stderr=True)
        self._spawn("status", "status", "--porcelain=v2", "--branch", "-z", f"-u{untracked}")
        self._spawn("remotes", "config", "-z", "--get-regexp", r"^remote\..*\.url$")
        if diff:
            self._spawn("diff", *_DIFF, "HEAD", "--")

    @classmethod
    def start(cls, cwd: Path, **options: Any) -> GitProbe:
        """Start the commands; same keyword options as the constructor."""
        return cls(cwd, **options)

    def _spawn(self, key: str, *args: str, stderr: bool = False) -> None:
        assert self._git is not None
        try:
            self._procs[key] = subprocess.Popen(
                [self._git, *args],
                cwd=self._cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
            )
        except OSError:  # git vanished or cwd unreadable: that part is just missing
            pass

    def _remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def _output(self, key: str) -> bytes | None:
        """Whole stdout of a command, or None when it failed or timed out."""
        proc = self._procs.pop(key, None)
        if proc is None:
            return None
        try:
            out, err = proc.communicate(timeout=self._remaining())
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self._errors[key] = "timed out"
            return None
        if proc.returncode != 0:
            self._errors[key] = (err or b"").decode("utf-8", errors="replace").strip()
            return None
        return out

    def _bounded(self, proc: subprocess.Popen[bytes]) -> tuple[bytes, str]:
        """At most ``max_diff`` bytes of stdout, and "ok", "truncated", "timeout" or "failed"."""
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(self._remaining(), kill)
        timer.daemon = True
        timer.start()
        try:
            stdout: IO[bytes] | None = proc.stdout
            assert stdout is not None
            data = stdout.read(self._max_diff + 1)
            if len(data) > self._max_diff:
                proc.kill()
            stdout.close()
            proc.wait()
        finally:
            timer.cancel()
        if len(data) > self._max_diff:
            return data[: self._max_diff], "truncated"
        if timed_out.is_set():
            return data, "timeout"
        return data, "ok" if proc.returncode == 0 else "failed"

    def close(self) -> None:
        """Kill whatever is still running (``result()`` does this itself)."""
        for proc in self._procs.values():
            proc.kill()
            proc.communicate()
        self._procs.clear()

    def result(self) -> dict[str, Any] | None:
        """The ``git`` section, or None outside a work tree or without git.

        Raises ``RuntimeError`` when a ``.git`` is there but git refuses to read it (an
        old git, "dubious ownership", a timeout): ``collect()`` records that in ``errors``.
        """
        try:
            return self._collect()
        finally:
            self.close()

    def _collect(self) -> dict[str, Any] | None:
        if not self._procs:  # not in a work tree, or no git
            return None
        top = self._output("toplevel")
        status = self._output("status")
        if top is None or status is None:
            failed = "toplevel" if top is None else "status"
            detail = self._errors.get(failed) or "failed"
            raise RuntimeError(f"git {'rev-parse' if top is None else 'status'}: {detail}")
        root = Path(os.fsdecode(top.strip()))
        info: dict[str, Any] = {"root": str(root), **_parse_status(status)}
        info["remote"] = _pick_remote(self._output("remotes"))
        untracked: list[str] = info.pop("untracked_all")
        info["untracked"] = untracked[:UNTRACKED_LIST_MAX]
        if len(untracked) > UNTRACKED_LIST_MAX:
            info["untracked_truncated"] = True
        if "diff" in self._procs:
            self._add_diff(info)
        if self._untracked_content:
            info["untracked_content"] = _read_small_files(root, untracked, self._max_diff)
        return info

    def _add_diff(self, info: dict[str, Any]) -> None:
        data, state = self._bounded(self._procs.pop("diff"))
        if state == "failed" and info["commit"] is None:  # no HEAD yet: diff the empty tree
            empty = self._empty_tree()
            if empty is not None:
                self._spawn("diff", *_DIFF, empty, "--")
                if "diff" in self._procs:
                    data, state = self._bounded(self._procs.pop("diff"))
        if state == "failed":
            return
        text = data.decode("utf-8", errors="replace")
        if state != "ok":
            reason = (
                f"truncated to {self._max_diff} bytes; raise MLTRAIL_CAPTURE_DIFF_MAX_BYTES "
                "to keep more"
                if state == "truncated"
                else "cut short: git diff timed out"
            )
            text = text[: text.rfind("\n") + 1] + f"[mltrail: diff {reason}]\n"
        info["diff"] = text
        info["diff_truncated"] = state != "ok"

    def _empty_tree(self) -> str | None:
        assert self._git is not None
        try:
            out = subprocess.run(
                [self._git, "hash-object", "-t", "tree", "--stdin"],
                cwd=self._cwd, env=self._env, input=b"", capture_output=True,
                timeout=self._remaining(), check=True,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.decode().strip() or None


def _parse_status(raw: bytes) -> dict[str, Any]:
    """``git status --porcelain=v2 --branch -z``: commit, branch, dirty, untracked."""
    commit: str | None = None
    branch: str | None = None
    dirty = False
    untracked: list[str] = []
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode()
            commit = None if oid == "(initial)" else oid
        elif entry.startswith(b"# branch.head "):
            head = entry[len(b"# branch.head ") :].decode("utf-8", errors="replace")
            branch = None if head == "(detached)" else head
        elif entry.startswith(b"? "):
            untracked.append(os.fsdecode(entry[2:]))
        elif entry[:2] in (b"1 ", b"u "):
            dirty = True
        elif entry.startswith(b"2 "):  # rename/copy: the original path follows
            dirty = True
            i += 1
    return {"commit": commit, "branch": branch, "dirty": dirty, "untracked_all": untracked}


def _pick_remote(raw: bytes | None) -> str | None:
    """URL of ``origin``, else of the first remote by name, credentials stripped."""
    if not raw:
        return None
    urls: dict[str, str] = {}
    for record in raw.split(b"\0"):
        key, _, value = record.decode("utf-8", errors="replace").partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            urls.setdefault(key[len("remote.") : -len(".url")], value)
    if not urls:
        return None
    name = "origin" if "origin" in urls else min(urls)
    return strip_credentials(urls[name])


def _read_small_files(root: Path, paths: list[str], budget: int) -> dict[str, str]:
    """Contents of small UTF-8 text files among ``paths``, within ``budget`` bytes."""
    out: dict[str, str] = {}
    for rel in paths:
        path = root / rel
        try:
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if size > UNTRACKED_FILE_MAX_BYTES or size > budget:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data:
            continue
        try:
            out[rel] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        budget -= len(data)
    return out
