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
from pathlib import Path

__all__ = ["HashCache"]


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
                db.execute(
                    "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER,"
                    " mtime_ns INTEGER, ino INTEGER, ctime_ns INTEGER, oid TEXT)"
                )
                self._db = db
            except sqlite3.Error:
                return None
        return self._db

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def get(self, path: Path, st: os.stat_result) -> str | None:
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
        if row is None or tuple(row[:4]) != self._key(st):
            return None
        return str(row[4])

    def put(self, path: Path, st: os.stat_result, oid: str) -> None:
        with self._lock:
            self._pending.append((str(path), *self._key(st), oid))

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
