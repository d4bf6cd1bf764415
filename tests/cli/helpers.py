"""Reading what ``mltrail`` printed, and running it as a real ``python -m mltrail`` process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from typer.testing import Result

# Rich reads these when it prints: plain text only.
PLAIN_ENV: dict[str, str | None] = {"NO_COLOR": "1", "FORCE_COLOR": None, "TTY_COMPATIBLE": None}


def ok(result: Result) -> str:
    """The stdout of a command that must succeed (its exception re-raised otherwise)."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def loads(text: str) -> Any:
    """Strict JSON: a bare NaN or Infinity token (not JSON) fails the test."""

    def reject(token: str) -> Any:
        raise AssertionError(f"invalid JSON constant {token} in output")

    return json.loads(text, parse_constant=reject)


def rows(output: str) -> list[list[str]]:
    """The body rows of every Rich table in ``output``, as lists of stripped cells."""
    return [
        [c.strip() for c in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.lstrip().startswith("│")
    ]


def header(output: str) -> list[str]:
    """The column names of the first table in ``output``."""
    line = next(line for line in output.splitlines() if line.lstrip().startswith("┃"))
    return [c.strip() for c in line.strip().strip("┃").split("┃")]


def field(output: str, name: str) -> str:
    """The value of ``name`` in the key/value grid ``runs show`` prints first."""
    match = re.search(rf"^{re.escape(name)}\s{{2,}}(.*?)\s*$", output, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{output}"
    return match.group(1)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    env.update(extra)
    return env


def mltrail_process(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m mltrail ARGS`` as a real process, in the test's working directory."""
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(**env),
        timeout=60,
    )
