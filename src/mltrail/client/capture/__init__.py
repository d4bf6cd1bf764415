"""Reproducibility capture: everything about code, environment and machine, at ``init``.

``collect(settings)`` returns one JSON-able dict with the sections ``git`` (absent
outside a work tree or without git), ``code``, ``env``, ``packages`` and ``hardware``;
each but ``code`` can be switched off. A section that fails unexpectedly is left out and
its error recorded under ``errors``: capture never stops a run from starting.

The git commands start first and run while the rest is gathered, so ``collect()`` takes
about as long as the slowest of them (``bench/bench_capture.py``).

Settings come from the environment (``CaptureSettings.from_env()``)::

    MLTRAIL_CAPTURE_GIT / _DIFF / _ENV / _PACKAGES / _HARDWARE   0|1 (default 1)
    MLTRAIL_CAPTURE_UNTRACKED_CONTENT                           0|1 (default 0)
    MLTRAIL_CAPTURE_DIFF_MAX_BYTES                              default 1000000
    MLTRAIL_ENV_ALLOW        extra variable names or globs, comma-separated

>>> info = collect(CaptureSettings(packages=False, hardware=False))
>>> {"code", "env"} <= set(info)
True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.client.capture.environment import (
    DEFAULT_ENV_ALLOW,
    code_info,
    env_info,
    packages,
)
from mltrail.client.capture.git import GitProbe
from mltrail.client.capture.hardware import hardware_info
from mltrail.errors import ConfigurationError

__all__ = ["DEFAULT_ENV_ALLOW", "CaptureSettings", "collect"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean", hint=f"set {name}=0 or 1")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(
            f"{name}={raw!r} is not a whole number of bytes >= 0", hint=f"e.g. {name}={default}"
        )
    return value


@dataclass(frozen=True)
class CaptureSettings:
    """What ``collect()`` gathers. ``env_allow`` adds to ``DEFAULT_ENV_ALLOW``."""

    git: bool = True
    diff: bool = True
    untracked_content: bool = False
    max_diff_bytes: int = 1_000_000
    packages: bool = True
    env: bool = True
    hardware: bool = True
    env_allow: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> CaptureSettings:
        """Settings from ``MLTRAIL_CAPTURE_*`` and ``MLTRAIL_ENV_ALLOW``.

        >>> isinstance(CaptureSettings.from_env(), CaptureSettings)
        True
        """
        allow = os.environ.get("MLTRAIL_ENV_ALLOW", "")
        return cls(
            git=_env_bool("MLTRAIL_CAPTURE_GIT", cls.git),
            diff=_env_bool("MLTRAIL_CAPTURE_DIFF", cls.diff),
            untracked_content=_env_bool("MLTRAIL_CAPTURE_UNTRACKED_CONTENT", cls.untracked_content),
            max_diff_bytes=_env_int("MLTRAIL_CAPTURE_DIFF_MAX_BYTES", cls.max_diff_bytes),
            packages=_env_bool("MLTRAIL_CAPTURE_PACKAGES", cls.packages),
            env=_env_bool("MLTRAIL_CAPTURE_ENV", cls.env),
            hardware=_env_bool("MLTRAIL_CAPTURE_HARDWARE", cls.hardware),
            env_allow=tuple(p.strip() for p in allow.split(",") if p.strip()),
        )


def collect(settings: CaptureSettings, *, cwd: Path | None = None) -> dict[str, Any]:
    """Everything captured at init, as JSON-able nested dicts.

    Top-level keys: ``git`` (commit, branch, remote, dirty, diff, diff_truncated,
    untracked, untracked_content, root), ``code`` (program, module, args, command, cwd,
    python_executable), ``env`` (python, implementation, os, platform, hostname, user,
    container, slurm, ci, variables, ...), ``packages`` ({name: version}) and
    ``hardware`` (cpu, memory_total_bytes, gpus); ``errors`` only when a part failed.
    """
    where = Path.cwd() if cwd is None else Path(cwd)
    errors: dict[str, str] = {}
    probe = None
    if settings.git:
        probe = _guard("git", errors, lambda: GitProbe.start(
            where, diff=settings.diff, max_diff_bytes=settings.max_diff_bytes,
            untracked_content=settings.untracked_content,
        ))  # fmt: skip
    out: dict[str, Any] = {}
    if settings.env:
        allow = (*DEFAULT_ENV_ALLOW, *settings.env_allow)
        _put(out, "env", errors, lambda: env_info(allow))
    if settings.packages:
        _put(out, "packages", errors, packages)
    if settings.hardware:
        _put(out, "hardware", errors, hardware_info)
    git = _guard("git", errors, probe.result) if probe is not None else None
    root = Path(git["root"]) if git else None
    _put(out, "code", errors, lambda: code_info(root))
    if git:
        out["git"] = git
    if errors:
        out["errors"] = errors
    return {k: out[k] for k in ("git", "code", "env", "packages", "hardware", "errors") if k in out}


def _guard(name: str, errors: dict[str, str], fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # capture is best effort: record, never raise into init
        errors[name] = f"{type(exc).__name__}: {exc}"
        return None


def _put(out: dict[str, Any], name: str, errors: dict[str, str], fn: Callable[[], Any]) -> None:
    value = _guard(name, errors, fn)
    if name not in errors:
        out[name] = value
