"""The ``PATH.mltrail`` pointer file: small, stable, human-readable YAML, tracked by git."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidValueError

__all__ = [
    "SUFFIX",
    "Pointer",
    "add_to_gitignore",
    "find_pointers",
    "parse_pointer",
    "pointer_path",
    "read_pointer",
    "write_pointer",
]

SUFFIX = ".mltrail"
HEADER = "# mltrail data pointer: commit this file; the data is in the object store\n"
_SKIP_DIRS = frozenset({".git", ".mltrail", ".venv", "node_modules", "__pycache__"})


@dataclass(frozen=True, slots=True)
class Pointer:
    """What a pointer file says: the data at ``path`` (relative to the pointer's folder)."""

    path: str  # a name in the pointer's folder
    hash: str  # object id of the manifest (the tree hash)
    size: int  # total bytes
    files: int  # file count
    type: str  # "directory" or "file"

    def text(self) -> str:
        """The file's content: keys always in the same order, so equal data, equal bytes."""
        import yaml

        doc = {
            "path": self.path,
            "hash": self.hash,
            "size": self.size,
            "files": self.files,
            "type": self.type,
        }
        return HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def pointer_path(path: str | os.PathLike[str]) -> Path:
    """The pointer of a data path (``data/images/`` -> ``data/images.mltrail``), or the
    path itself if it already names a pointer."""
    p = Path(os.path.normpath(os.fspath(path)))
    if p.name.endswith(SUFFIX) and not p.is_dir():
        return p
    if p.name in ("", ".", ".."):
        raise InvalidValueError(
            f"{os.fspath(path)!r} names no file or folder to track",
            hint="give a path inside the folder, e.g. data/images",
        )
    return p.with_name(p.name + SUFFIX)


def parse_pointer(text: str, where: str) -> Pointer:
    """A pointer from its YAML text; ``where`` names it in errors."""
    import yaml

    from mltrail.objects.hashing import is_valid_oid

    hint = f"restore {where} from git (git checkout -- {where}) or run mltrail data add again"
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidValueError(f"{where} is not valid YAML: {exc}", hint=hint) from None
    if not isinstance(doc, dict):
        raise InvalidValueError(f"{where} is not an mltrail pointer (not a mapping)", hint=hint)
    path, digest, size, files = doc.get("path"), doc.get("hash"), doc.get("size"), doc.get("files")
    kind = doc.get("type", "directory")
    problems = []
    if not isinstance(path, str) or not path or "/" in path or path in (".", ".."):
        problems.append(f"path {path!r} is not a name in the pointer's folder")
    if not is_valid_oid(digest):
        problems.append(f"hash {digest!r} is not an object id")
    if not isinstance(size, int) or size < 0:
        problems.append(f"size {size!r} is not a byte count")
    if not isinstance(files, int) or files < 0:
        problems.append(f"files {files!r} is not a file count")
    if kind not in ("directory", "file"):
        problems.append(f"type {kind!r} is not 'directory' or 'file'")
    if problems:
        raise InvalidValueError(f"{where} is damaged: {'; '.join(problems)}", hint=hint)
    assert isinstance(path, str) and isinstance(digest, str)
    assert isinstance(size, int) and isinstance(files, int)
    return Pointer(path, digest, size, files, str(kind))


def read_pointer(pointer: str | os.PathLike[str]) -> Pointer:
    """Read and validate a pointer file."""
    p = Path(pointer)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidValueError(
            f"no pointer file {p}", hint="track the data first: mltrail data add PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"cannot read pointer {p}: {exc}") from None
    return parse_pointer(text, str(p))


def write_pointer(pointer: Path, value: Pointer) -> bool:
    """Write the pointer atomically unless it already holds these bytes; True if written."""
    text = value.text()
    try:
        if pointer.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    tmp = pointer.with_name(f".{pointer.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, pointer)
    return True


def add_to_gitignore(folder: Path, name: str) -> bool:
    """Ignore ``/name`` in ``folder/.gitignore`` (created if needed); True if added."""
    gitignore = folder / ".gitignore"
    line = "/" + name
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if any(x.strip() in (line, name, line + "/", name + "/") for x in lines):
        return False
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    gitignore.write_text(existing + line + "\n", encoding="utf-8")
    return True


def find_pointers(root: str | os.PathLike[str]) -> list[Path]:
    """Every ``*.mltrail`` file under ``root`` (skipping .git, .mltrail, venvs), sorted."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found.extend(Path(folder) / n for n in names if n.endswith(SUFFIX) and n != SUFFIX)
    return sorted(found)
