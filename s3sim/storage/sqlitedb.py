"""One SQLite database in WAL mode behind a lock: the metadata commit point.

The S3 index and the Connect store both build on it. `fsync=True` makes every commit
durable against an OS crash (synchronous=FULL); `fsync=False` (synchronous=OFF) survives
`kill -9` of the server, since every commit is written to the OS, which keeps it, but not
an OS crash (as blob files without fsync). Not NORMAL: in WAL mode it still fsyncs at
each checkpoint, on the committing thread and under the write lock (measured: 4 KiB PUTs
with two processes, 2,430-2,550/s with NORMAL, 3,050-3,110/s with OFF).

`shared` (several server processes write the database): each write transaction first
takes an exclusive flock on `<database>.lock`. A process that finds SQLite's write lock
taken sleeps in its busy handler, 1 ms at first, then 2, 5, 10 ... 100 ms, on the event
loop's thread; measured with two processes writing 4 KiB objects, half the commits slept
and throughput stopped at ~2,100 PUT/s with the CPU a third idle. Waiting on the flock
instead wakes a writer the moment the other one commits.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Database:
    """Thread-safe: one connection, one re-entrant lock; `tx()` is one transaction."""

    def __init__(self, path: Path, schema: str, fsync: bool = True, shared: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync  # a COMMIT waits for the disk: async callers write off the loop
        self._flock = -1  # the writers' lock file (shared), held for each write transaction
        if shared:
            self._flock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # timeout: other server processes over the same data dir may hold the write lock
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
        self._db.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._flock >= 0:
                os.close(self._flock)
                self._flock = -1

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE .. COMMIT), rolled back on error."""
        with self._lock:
            if self._flock >= 0:
                fcntl.flock(self._flock, fcntl.LOCK_EX)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if self._flock >= 0:
                    fcntl.flock(self._flock, fcntl.LOCK_UN)

    async def run(self, call: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run `call` (one of this database's methods) for an async caller: with fsync on
        a worker thread, so the event loop never waits for the disk (a commit's, or one a
        reader waits behind on the lock); without, inline (a thread hand-off costs ~95 us
        of CPU here, more than most commits: docs/PERFORMANCE.md, sessions 4 and 6)."""
        if self.fsync:
            return await asyncio.to_thread(call, *args, **kw)
        return call(*args, **kw)

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()
