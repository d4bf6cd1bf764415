"""The run's spool: an append-only, checksummed record log under ``<dir>/spool/``.

Every batch the background writer drains is appended here before it goes to the store,
so a killed process or an unreachable database loses nothing that reached the OS. The
store records, in the same transaction as the batch, how far into the spool it has
written (``spool_commits``); replay starts from there, so nothing is applied twice.

File layout::

    b"MLTSPOOL" version:u8 header_len:u32 header(JSON)      file header
    length:u32 crc32:u32 payload                            a record, repeated
    payload = marshal((kind, body))

A live writer holds an exclusive ``flock`` on its file; a file whose lock can be taken
belongs to a dead process and is replayed by the next process that opens the store
(or by ``mltrail sync``). Replay stops at the first truncated or corrupt record, applies
everything before it, and reports what was left.
"""

from __future__ import annotations

import fcntl
import json
import marshal
import os
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import SpoolError

__all__ = [
    "Record",
    "ReplayReport",
    "SpoolReader",
    "SpoolWriter",
    "find_spools",
    "iter_records",
]

MAGIC = b"MLTSPOOL"
VERSION = 1
_REC = struct.Struct("<II")
_HDR = struct.Struct("<8sBI")
MAX_RECORD = 1 << 30

KIND_METRICS = "metrics"


@dataclass(frozen=True)
class Record:
    kind: str
    body: Any
    end: int  # file offset just past this record


class SpoolWriter:
    """Appends records to a new spool file and holds its lock while alive."""

    def __init__(self, directory: Path, run_id: str, uri: str, *, offline: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.spool_id = f"{run_id}.{uuid.uuid4().hex[:12]}"
        self.path = directory / f"{self.spool_id}.spool"
        header = json.dumps(
            {
                "spool_id": self.spool_id,
                "run_id": run_id,
                "uri": uri,
                "offline": offline,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "created": time.time(),
            }
        ).encode()
        # Created under a name replay ignores, locked and given its header, then renamed:
        # another process never sees an unlocked or headerless spool.
        tmp = directory / f".{self.spool_id}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd = fd
        self.offset = 0
        self._write(_HDR.pack(MAGIC, VERSION, len(header)) + header)
        os.rename(tmp, self.path)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.offset += len(data)

    def append(self, kind: str, body: Any) -> int:
        """Append one record; returns the offset just past it. Raises OSError (disk full)."""
        payload = marshal.dumps((kind, body), 4)
        self._write(_REC.pack(len(payload), zlib.crc32(payload)) + payload)
        return self.offset

    def close(self, *, delete: bool) -> None:
        if self._fd < 0:
            return
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # releases the lock
        self._fd = -1


@dataclass
class ReplayReport:
    spool_id: str
    run_id: str
    records: int = 0
    points: int = 0
    dropped_bytes: int = 0
    problems: list[str] = field(default_factory=list)


class SpoolReader:
    """Reads a spool file left by another (dead) process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise
        with open(path, "rb") as fh:
            head = fh.read(_HDR.size)
            if len(head) < _HDR.size:
                self.close()
                raise SpoolError(f"spool file {path} has no complete header")
            magic, version, hlen = _HDR.unpack(head)
            if magic != MAGIC or version != VERSION:
                self.close()
                raise SpoolError(f"{path} is not an mltrail spool file (version {version})")
            try:
                self.header: dict[str, Any] = json.loads(fh.read(hlen))
            except ValueError as exc:
                self.close()
                raise SpoolError(f"spool file {path} has a corrupt header") from exc
        self.data_start = _HDR.size + hlen

    @property
    def spool_id(self) -> str:
        return str(self.header["spool_id"])

    @property
    def run_id(self) -> str:
        return str(self.header["run_id"])

    def records(self, start: int, report: ReplayReport) -> Iterator[Record]:
        """Records after offset ``start``; stops at the first bad one (noted in report)."""
        return iter_records(self.path, max(start, self.data_start), report)

    def close(self, *, delete: bool = False) -> None:
        if self._fd < 0:
            return
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


def _data_start(path: Path) -> int:
    with open(path, "rb") as fh:
        head = fh.read(_HDR.size)
    if len(head) < _HDR.size:
        raise SpoolError(f"spool file {path} has no complete header")
    return _HDR.size + int(_HDR.unpack(head)[2])


def iter_records(path: Path, start: int, report: ReplayReport) -> Iterator[Record]:
    """Records of the spool at ``path`` after offset ``start`` (0: from the first).

    Stops at the first truncated, corrupt or undecodable record and notes it, and the
    bytes left after it, in ``report``.
    """
    size = path.stat().st_size
    pos = max(start, _data_start(path))
    with open(path, "rb") as fh:
        fh.seek(pos)
        while pos < size:
            head = fh.read(_REC.size)
            if len(head) < _REC.size:
                report.problems.append(f"truncated record header at offset {pos}")
                break
            length, crc = _REC.unpack(head)
            payload = fh.read(length) if length <= MAX_RECORD else b""
            if length > MAX_RECORD or len(payload) < length:
                report.problems.append(f"truncated record at offset {pos}")
                break
            if zlib.crc32(payload) != crc:
                report.problems.append(f"checksum mismatch in record at offset {pos}")
                break
            try:
                kind, body = marshal.loads(payload)
            except (ValueError, EOFError, TypeError) as exc:
                report.problems.append(f"undecodable record at offset {pos}: {exc}")
                break
            pos += _REC.size + length
            report.records += 1
            yield Record(kind, body, pos)
    report.dropped_bytes = size - pos


def find_spools(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.spool"))
