"""Hashes of files that did not change, so logging them again reads nothing.

Keyed by (absolute path, size, mtime in ns, inode, ctime in ns), as DVC's state
database: a file whose stat is unchanged is assumed unchanged. Kept in a small SQLite
file (stdlib ``sqlite3``) in the local ``.mltrail`` folder; any failure just means a
cache miss.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

__all__ = ["HashCache", "hash_cache_path"]

_BATCH = 500  # paths per SELECT (SQLite allows 999 parameters on old versions)


def hash_cache_path(uri: str) -> Path:
    """Where the hash cache of the tracking store at ``uri`` (resolved) lives."""
    from mltrail.config import local_dir

    return local_dir(uri) / "hashcache.sqlite"


class HashCache:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, int, int, str]] = []

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self._path, timeout=5, check_same_thread=False)
                db.execute("PRAGMA journal_mode = WAL")
                # A cache: losing recent entries to a power cut costs a re-read, so
                # commits need not wait for fsync.
                db.execute("PRAGMA synchronous = OFF")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER,"
                    " mtime_ns INTEGER, ino INTEGER, ctime_ns INTEGER, oid TEXT)"
                )
                self._db = db
            except sqlite3.Error:
                return None
        return self._db

    @staticmethod
    def key(st: os.stat_result) -> tuple[int, int, int, int]:
        """What must be unchanged for a cached hash to hold: size, mtime, inode, ctime."""
        return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def get_many(self, stats: Mapping[str, os.stat_result]) -> dict[str, str]:
        """``{path: oid}`` for the paths (absolute, resolved) whose cached stat matches."""
        found: dict[str, str] = {}
        paths = list(stats)
        with self._lock:
            db = self._conn()
            if db is None:
                return found
            try:
                for i in range(0, len(paths), _BATCH):
                    batch = paths[i : i + _BATCH]
                    marks = ",".join("?" * len(batch))
                    rows = db.execute(
                        "SELECT path, size, mtime_ns, ino, ctime_ns, oid FROM hashes"
                        f" WHERE path IN ({marks})",
                        batch,
                    ).fetchall()
                    for path, *key, oid in rows:
                        if tuple(key) == self.key(stats[path]):
                            found[path] = str(oid)
            except sqlite3.Error:
                return {}
        return found

    def get(self, path: Path | str, st: os.stat_result) -> str | None:
        with self._lock:
            db = self._conn()
            if db is None:
                return None
            try:
                row = db.execute(
                    "SELECT size, mtime_ns, ino, ctime_ns, oid FROM hashes WHERE path = ?",
                    (str(path),),
                ).fetchone()
            except sqlite3.Error:
                return None
        if row is None or tuple(row[:4]) != self.key(st):
            return None
        return str(row[4])

    def put(self, path: Path | str, st: os.stat_result, oid: str) -> None:
        with self._lock:
            self._pending.append((str(path), *self.key(st), oid))

    def flush(self) -> None:
        with self._lock:
            db, rows, self._pending = self._conn(), self._pending, []
            if db is None or not rows:
                return
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.Error:
                pass
