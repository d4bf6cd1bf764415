"""Dataset versions: data in the user's git repo, tracked by small ``*.mltrail`` pointers.

The bytes live in the tracking store's object store (the same one artifacts use); the
pointer (YAML: ``path``, ``hash``, ``size``, ``files``, ``type``) is committed to git.
"""

from __future__ import annotations

from mltrail.data.ops import DataStatus, add, checkout, diff_revisions, status
from mltrail.data.pointer import Pointer, find_pointers, pointer_path, read_pointer

__all__ = [
    "DataStatus",
    "Pointer",
    "add",
    "checkout",
    "diff_revisions",
    "find_pointers",
    "pointer_path",
    "read_pointer",
    "status",
]
