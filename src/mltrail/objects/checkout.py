"""Materialise a stored object as a working file: reflink, else hardlink, else copy.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "obj").write_bytes(b"x")
>>> link_or_copy(d / "obj", d / "out", mode="copy")
'copy'
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Literal

from mltrail.errors import InvalidValueError, ObjectStoreError
from mltrail.objects._io import create_exclusive, temp_path

__all__ = ["FICLONE", "CheckoutMethod", "CheckoutMode", "link_or_copy"]

CheckoutMethod = Literal["reflink", "hardlink", "copy"]
CheckoutMode = Literal["auto", "reflink", "hardlink", "copy"]

#: Linux ``FICLONE`` ioctl (``_IOW(0x94, 9, int)``): share the source's extents.
FICLONE = 0x40049409

#: errnos meaning "this filesystem or pair of paths cannot do that": fall back.
_UNSUPPORTED = frozenset(
    {
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.ENOTTY,
        errno.EINVAL,
        errno.EXDEV,
        errno.EPERM,
        errno.EMLINK,
        errno.ENOSYS,
        errno.EACCES,
    }
)
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class _Unsupported(Exception):
    pass


def link_or_copy(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    mode: CheckoutMode = "auto",
) -> CheckoutMethod:
    """Make ``dest`` hold the content of ``src``; return the method used.

    ``auto`` tries a reflink (copy-on-write clone: an independent, writable file that
    shares disk blocks), then a hardlink (same inode: ``src`` is made read-only first,
    so editing the checkout in place cannot corrupt the store), then a plain copy.
    Any other ``mode`` uses only that method and raises ``ObjectStoreError`` if it is
    unsupported. ``dest`` is replaced atomically; its parent must exist.
    """
    if mode not in ("auto", "reflink", "hardlink", "copy"):
        raise InvalidValueError(
            f"unknown checkout mode {mode!r}", hint="use auto, reflink, hardlink or copy"
        )
    src_path, dest_path = Path(src), Path(dest)
    methods: tuple[CheckoutMethod, ...] = (
        ("reflink", "hardlink", "copy") if mode == "auto" else (mode,)
    )
    failures: list[str] = []
    for method in methods:
        tmp = temp_path(dest_path)
        try:
            _METHODS[method](src_path, tmp)
            os.replace(tmp, dest_path)
        except _Unsupported as exc:
            failures.append(f"{method}: {exc}")
            continue
        except OSError as exc:
            raise ObjectStoreError(f"cannot check out {src_path} to {dest_path}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return method
    raise ObjectStoreError(
        f"cannot check out {src_path} to {dest_path} by {mode}: {'; '.join(failures)}",
        hint="use mode='auto' to fall back to a copy",
    )


def _reflink(src: Path, tmp: Path) -> None:
    if not sys.platform.startswith("linux"):
        raise _Unsupported(f"FICLONE is Linux-only (platform {sys.platform})")
    import fcntl

    with open(src, "rb") as s, create_exclusive(tmp) as d:
        try:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                raise _Unsupported(os.strerror(exc.errno or 0)) from exc
            raise


def _hardlink(src: Path, tmp: Path) -> None:
    mode = src.stat().st_mode
    if mode & _WRITE_BITS:
        try:
            src.chmod(stat.S_IMODE(mode) & ~_WRITE_BITS)
        except OSError as exc:
            raise _Unsupported(f"cannot make {src} read-only: {exc}") from exc
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise _Unsupported(os.strerror(exc.errno or 0)) from exc
        raise


def _copy(src: Path, tmp: Path) -> None:
    shutil.copyfile(src, tmp)  # sendfile() on Linux; tmp is a fresh unique name


_METHODS = {"reflink": _reflink, "hardlink": _hardlink, "copy": _copy}
