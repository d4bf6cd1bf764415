"""Validation of artifact names, specs (``name:v3``, ``name:best``) and manifest paths."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from mltrail.errors import InvalidArtifactPath

__all__ = ["parse_spec", "split_project", "validate_name", "validate_relpath"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str, what: str = "artifact name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise InvalidArtifactPath(
            f"{what} {name!r} is not valid",
            hint="use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def parse_spec(spec: str) -> tuple[str, int | str | None]:
    """``"name"`` -> (name, None); ``"name:v3"`` -> (name, 3); ``"name:best"`` -> (name, "best")."""
    name, _, ref = spec.partition(":")
    validate_name(name)
    if not ref or ref == "latest":
        return name, None
    if ref.startswith("v") and ref[1:].isdecimal():
        return name, int(ref[1:])
    if ref.isdecimal():
        return name, int(ref)
    if not ALIAS_RE.match(ref):
        raise InvalidArtifactPath(f"alias {ref!r} in {spec!r} is not valid")
    return name, ref


def split_project(spec: str) -> tuple[str | None, str]:
    """``"proj/name:v1"`` -> ("proj", "name:v1"); ``"name:v1"`` -> (None, "name:v1").

    The project part must itself be a valid name: ``"../x"`` is an error, not a project.
    """
    if "/" not in spec:
        return None, spec
    project, _, rest = spec.partition("/")
    validate_name(project, "project name")
    if "/" in rest:
        raise InvalidArtifactPath(f"{spec!r} is not 'name', 'name:version' or 'project/name'")
    return project, rest


def validate_relpath(path: str) -> str:
    """A manifest path: relative, posix, no '..', no empty parts, no NUL or control chars."""
    bad = (
        not path
        or "\x00" in path
        or any(ord(ch) < 32 for ch in path)
        or "\\" in path
        or path.startswith("/")
        or re.match(r"^[A-Za-z]:", path) is not None
    )
    parts = PurePosixPath(path).parts if not bad else ()
    if bad or any(p in ("..", ".", "") for p in path.split("/")) or not parts:
        raise InvalidArtifactPath(
            f"artifact path {path!r} is not allowed",
            hint="paths inside an artifact are relative, use '/', and have no '..' parts",
        )
    return path
