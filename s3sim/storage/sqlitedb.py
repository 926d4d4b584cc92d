"""One SQLite database in WAL mode behind a lock: the metadata commit point.

The S3 index and the Connect store both build on it. `fsync=True` makes every commit
durable against an OS crash (synchronous=FULL); `fsync=False` (synchronous=NORMAL in WAL
mode) still survives `kill -9` of the server, since the OS keeps what was written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Database:
    """Thread-safe: one connection, one re-entrant lock; `tx()` is one transaction."""

    def __init__(self, path: Path, schema: str, fsync: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: other server processes over the same data dir may hold the write lock
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE .. COMMIT), rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()
