"""Injectable time. Production uses SimClock, whose offset tests can advance."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kmscore.shared import SharedCell


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """now() as seconds since the epoch (no datetime built: hot paths compare these)."""
        ...

    def wall(self) -> datetime:
        """Real time, without any simulated offset (clients sign requests with it)."""
        ...


class SimClock:
    """Wall-clock time plus an offset that only moves forward (simulated time).

    With `cell` (kmscore.shared.SharedCell) the offset lives in a file every server
    process over one data dir maps, so an advance in one is seen by all at once."""

    def __init__(self, offset_seconds: float = 0.0, cell: SharedCell | None = None) -> None:
        self._offset = offset_seconds
        self._cell = cell
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def time(self) -> float:
        return time.time() + self.offset_seconds

    def wall(self) -> datetime:
        return datetime.fromtimestamp(time.time(), tz=UTC)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("simulated time only moves forward")
        with self._lock:
            if self._cell is None:
                self._offset += seconds
            else:
                with self._cell.locked():
                    self._cell.set_float(self._cell.get_float() + seconds)
        return self.now()

    @property
    def offset_seconds(self) -> float:
        return self._offset if self._cell is None else self._cell.get_float()


class FixedClock:
    """A clock that stands still until told to move (unit tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def wall(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now
