"""Dataset versions in the tracking store: artifact versions of type ``dataset``.

``mltrail data add`` records one (a new version only when the manifest hash changes), so
``mltrail gc`` keeps the data's objects and ``mltrail lineage`` shows data -> run once a
run calls ``use_dataset`` on the data path.

The artifact is named after the data path relative to the git toplevel with ``/``
replaced by ``.`` (artifact names hold no ``/``): ``data/images`` -> ``data.images``.
When another path already has that name (``a/b.c`` and ``a.b/c``), the second gets a
short hash of its path appended.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from mltrail.data.pointer import Pointer, pointer_path, read_pointer
from mltrail.entities import ArtifactVersion

__all__ = ["DATASET_TYPE", "dataset_name", "default_project", "record_input", "record_version"]

DATASET_TYPE = "dataset"
_BAD = re.compile(r"[^A-Za-z0-9._-]")


def default_project() -> str:
    """``MLTRAIL_PROJECT`` or ``"default"``."""
    return os.environ.get("MLTRAIL_PROJECT") or "default"


def repo_root(folder: Path) -> Path:
    """The git work tree holding ``folder`` (``folder`` itself if none)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        return folder
    return Path(done.stdout.decode().strip()) if done.returncode == 0 else folder


def data_relpath(pfile: Path, pointer: Pointer) -> str:
    """The data path of a pointer relative to its git toplevel, with ``/`` separators."""
    folder = pfile.absolute().parent
    root = repo_root(folder)
    rel = os.path.relpath(os.path.realpath(folder / pointer.path), os.path.realpath(root))
    return rel.replace(os.sep, "/")


def dataset_name(rel: str) -> str:
    """The artifact name of a data path relative to the toplevel (``a/b`` -> ``a.b``)."""
    name = _BAD.sub("_", rel.strip("/").replace("/", "."))
    name = name.lstrip("._-") or "data"
    return name[:128]


def record_version(
    store: Any, pfile: Path, pointer: Pointer, project: str | None = None
) -> ArtifactVersion:
    """The ``dataset`` artifact version of a pointer, created if its hash is new."""
    rel = data_relpath(pfile, pointer)
    return find_or_create(store, project or default_project(), rel, pointer)


def find_or_create(store: Any, project: str, rel: str, pointer: Pointer) -> ArtifactVersion:
    """An existing version with the pointer's manifest hash, else a new one."""
    from mltrail.objects.hashing import hash_bytes

    name = dataset_name(rel)
    versions = _versions(store, project, name)
    if any(v.metadata.get("path", rel) != rel for v in versions):
        # another path maps to the same name (a/b.c and a.b/c): a name of its own
        name = f"{name[:119]}-{hash_bytes(rel.encode())[:8]}"
        versions = _versions(store, project, name)
    same = [v for v in versions if v.digest == pointer.hash]
    if same:  # this content was added before (maybe reverted to): reuse its version
        return same[-1]
    version: ArtifactVersion = store.create_artifact_version(
        project=project,
        name=name,
        type=DATASET_TYPE,
        digest=pointer.hash,
        size=pointer.size,
        file_count=pointer.files,
        metadata={"path": rel, "kind": pointer.type},
        run_id=None,
        reference=False,
    )
    return version


def _versions(store: Any, project: str, name: str) -> list[ArtifactVersion]:
    from mltrail.errors import MltrailError

    try:
        return list(store.artifact_versions(project, name))
    except MltrailError:
        return []  # no such project or artifact yet


def record_input(
    store: Any, run_id: str, project: str, path: str | os.PathLike[str]
) -> tuple[Pointer, ArtifactVersion] | None:
    """Record the dataset version a data path's pointer names as an input of a run.

    ``None`` when ``path`` has no ``PATH.mltrail`` pointer beside it.
    """
    pfile = pointer_path(path)
    if not pfile.is_file():
        return None
    pointer = read_pointer(pfile)
    version = record_version(store, pfile, pointer, project)
    store.add_run_input(run_id, version.project, version.name, version.version)
    return pointer, version
