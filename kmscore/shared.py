"""Coordination between several server processes over one data directory.

A `SharedCell` is one 8-byte file mapped into memory by every process that opens it: a
read is a memory load (no system call), a write is seen by every other process at once
(they share the page cache). `locked()` holds an exclusive flock on the cell's own
descriptor, so a read-modify-write is atomic across processes. flock does not exclude
threads of one process that share the descriptor: callers hold a thread lock first.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_INT = struct.Struct("<q")
_FLOAT = struct.Struct("<d")
SIZE = 8


class SharedCell:
    """An 8-byte value in `path` (created as zero), shared by every process mapping it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        if os.fstat(self._fd).st_size < SIZE:
            os.ftruncate(self._fd, SIZE)
        self._map = mmap.mmap(self._fd, SIZE)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    @contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def get_int(self) -> int:
        return _INT.unpack_from(self._map)[0]

    def set_int(self, value: int) -> None:
        _INT.pack_into(self._map, 0, value)

    def get_float(self) -> float:
        return _FLOAT.unpack_from(self._map)[0]

    def set_float(self, value: float) -> None:
        _FLOAT.pack_into(self._map, 0, value)


class StateLock:
    """A re-entrant lock over state that several processes may change.

    Alone (`cell=None`) it is a thread RLock. With a cell, the outermost holder also holds
    the cell's flock and, when the cell's save counter moved since this process last saw
    it, calls `reload()` first; `saved()` (under the lock) counts a save of this process.
    """

    def __init__(self, cell: SharedCell | None, reload: Callable[[], None]) -> None:
        self._rlock = threading.RLock()
        self._cell = cell
        self._reload = reload
        self._depth = 0
        self._seen = cell.get_int() if cell is not None else 0
        self._reading = _Reading(self)

    def __enter__(self) -> StateLock:
        self._rlock.acquire()
        self._depth += 1
        cell = self._cell
        if cell is not None and self._depth == 1:
            try:
                cell.acquire()
                now = cell.get_int()
                if now != self._seen:
                    self._reload()
                    self._seen = now
            except BaseException:
                self._leave()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._cell is not None and self._depth == 1:
            self._cell.release()
        self._depth -= 1
        self._rlock.release()

    def reading(self) -> _Reading:
        """A read-only section: the thread lock, and the cross-process lock only to reload
        a state another process saved since (a change still being made by another
        process is not seen yet: the read happened before it)."""
        return self._reading

    def _enter_reading(self) -> None:
        self._rlock.acquire()
        cell = self._cell
        if cell is not None and self._depth == 0 and cell.get_int() != self._seen:
            try:
                with self:
                    pass
            except BaseException:
                self._rlock.release()
                raise

    def saved(self) -> None:
        if self._cell is not None:
            self._seen += 1
            self._cell.set_int(self._seen)


class _Reading:
    """StateLock.reading() as a plain context manager (it is entered on hot paths)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: StateLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock._enter_reading()

    def __exit__(self, *exc: object) -> None:
        self._lock._rlock.release()


class Generation:
    """A change counter: in memory, or in a SharedCell when several processes share the
    thing it counts changes of. Read it before reading the thing, bump it after changing
    it: a reader whose value still matches has seen every change."""

    def __init__(self, cell: SharedCell | None = None) -> None:
        self._cell = cell
        self._local = 0

    def value(self) -> int:
        return self._local if self._cell is None else self._cell.get_int()

    def bump(self) -> None:
        if self._cell is None:
            self._local += 1
            return
        with self._cell.locked():
            self._cell.set_int(self._cell.get_int() + 1)
