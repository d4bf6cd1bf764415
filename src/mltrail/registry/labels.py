"""Version labels by scheme: ``semver``, ``date``, ``hash`` and ``hybrid``.

The integer version number always exists too; a label is an extra, human name that is
unique per model. ``semver`` starts at ``1.0.0`` and bumps major/minor/patch from the
highest semver label so far; ``date`` is ``YYYY.MM.DD.N`` (N counts that day's versions
from 1); ``hash`` is the source run's git commit, shortened to 7 characters (a second
version from the same commit gets ``-2``, ``-3``…); ``hybrid`` is ``2.1.0+a1b2c3d``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from mltrail.errors import InvalidValueError

__all__ = ["BUMPS", "SCHEMES", "next_label", "validate_label"]

SCHEMES = ("semver", "date", "hash", "hybrid")
BUMPS = ("major", "minor", "patch")

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_LABEL = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise InvalidValueError(
            f"unknown version label scheme {scheme!r}", hint=f"choose one of {', '.join(SCHEMES)}"
        )
    return scheme


def validate_label(label: str) -> str:
    if not _LABEL.match(label) or label.isdecimal() or label in ("latest",):
        raise InvalidValueError(
            f"version label {label!r} is not usable",
            hint="1-64 letters, digits, '.', '+', '_' or '-', not only digits (numbers are "
            "the version numbers) and not 'latest'",
        )
    return label


def _semvers(existing: Sequence[str]) -> list[tuple[int, int, int]]:
    out = []
    for label in existing:
        m = _SEMVER.match(label)
        if m:
            out.append((int(m[1]), int(m[2]), int(m[3])))
    return out


def _bump(existing: Sequence[str], bump: str) -> str:
    if bump not in BUMPS:
        raise InvalidValueError(f"bump must be one of {', '.join(BUMPS)}, not {bump!r}")
    versions = _semvers(existing)
    if not versions:
        return "1.0.0"
    major, minor, patch = max(versions)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _unique(base: str, existing: Sequence[str]) -> str:
    taken = set(existing)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def next_label(
    scheme: str,
    existing: Sequence[str],
    *,
    bump: str = "minor",
    commit: str | None = None,
    today: dt.date | None = None,
    explicit: str | None = None,
) -> str:
    """The label of the next version, given the labels the model already has."""
    if explicit is not None:
        label = validate_label(explicit)
        if label in existing:
            raise InvalidValueError(f"version label {label!r} is already taken")
        if scheme in ("semver", "hybrid") and not _SEMVER.match(label):
            raise InvalidValueError(
                f"version label {label!r} is not semantic versioning (like 2.1.0) as this "
                f"model's {scheme} scheme needs"
            )
        return label
    if scheme == "semver":
        return _bump(existing, bump)
    if scheme == "date":
        day = (today or dt.datetime.now(dt.timezone.utc).date()).strftime("%Y.%m.%d")
        n = sum(1 for label in existing if label.startswith(day + ".")) + 1
        return _unique(f"{day}.{n}", existing)
    if not commit:
        raise InvalidValueError(
            f"the {scheme} label scheme needs the source run's git commit, and there is none",
            hint="register from a run started inside a git repository, or pass label=...",
        )
    short = commit[:7]
    if scheme == "hash":
        return _unique(short, existing)
    return _unique(f"{_bump(existing, bump)}+{short}", existing)
