"""The command line a ``program`` sweep runs per trial, with W&B's macros.

``command`` defaults to ``${env} ${interpreter} ${program} ${args}``. ``${args}`` is
``--name=value`` per parameter (nested names dotted: ``--optimizer.lr=0.01``),
``${args_no_hyphens}`` the same without dashes, ``${args_no_boolean_flags}`` writes
true flags as ``--flag`` and leaves false ones out, ``${args_json}`` is the
configuration as one JSON argument and ``${args_json_file}`` a file holding it.
``${interpreter}`` is the agent's own Python, so the program runs in its environment.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltrail.client.values import flatten
from mltrail.sweeps.config import SweepSpec

__all__ = ["DEFAULT_COMMAND", "build_command"]

DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    return json.dumps(value)


def build_command(spec: SweepSpec, params: Mapping[str, Any], json_file: Path) -> list[str]:
    """argv for one trial (``json_file`` is written when ``${args_json_file}`` is used)."""
    flat = flatten(dict(params), ".", what="config")
    args = [f"--{k}={_text(v)}" for k, v in flat.items()]
    lists = {
        "${args}": args,
        "${args_no_hyphens}": [f"{k}={_text(v)}" for k, v in flat.items()],
        "${args_no_boolean_flags}": [
            f"--{k}" if v is True else f"--{k}={_text(v)}"
            for k, v in flat.items()
            if v is not False
        ],
    }
    scalars = {
        "${env}": "/usr/bin/env",
        "${interpreter}": sys.executable,
        "${program}": spec.program or "",
        "${args_json}": json.dumps(dict(params)),
        "${args_json_file}": str(json_file),
    }
    if any("${args_json_file}" in part for part in spec.command or DEFAULT_COMMAND):
        json_file.write_text(json.dumps(dict(params)), encoding="utf-8")
    argv: list[str] = []
    for part in spec.command or DEFAULT_COMMAND:
        if part in lists:
            argv += lists[part]
            continue
        for macro, text in scalars.items():
            part = part.replace(macro, text)
        argv.append(part)
    return argv
