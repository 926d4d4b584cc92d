"""Group commit of object rows: the PUTs of one process that reach their commit while
the previous group is being written share the next transaction (with --fsync, one fsync).

Without fsync a group is written on the event loop, at most one loop turn after its
first PUT asked; with fsync on a worker thread, while the loop goes on collecting the
next group. Each PUT still gets its own outcome: its replaced row, or the exception its
conditional check raised (`Index.put_objects`). Measured: docs/PERFORMANCE.md, session 4.
"""

from __future__ import annotations

import asyncio

from s3sim.storage.index import Index, ObjectPut, ObjectRow

Outcome = asyncio.Future[ObjectRow | None]


class Commits:
    """One per S3 service (each server process has its own); used from one event loop."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._pending: list[tuple[ObjectPut, Outcome]] = []
        self._writer: asyncio.Task[None] | None = None

    def put(self, put: ObjectPut) -> Outcome:
        """Queue a put; the future resolves once its group committed (or refused it)."""
        loop = asyncio.get_running_loop()
        outcome: Outcome = loop.create_future()
        self._pending.append((put, outcome))
        if self._writer is None:
            self._writer = loop.create_task(self._write_groups())
        return outcome

    async def _write_groups(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                await self._write(group)
        finally:
            self._writer = None
            for _, outcome in self._pending:  # only when cancelled (server shutdown)
                outcome.cancel()

    async def _write(self, group: list[tuple[ObjectPut, Outcome]]) -> None:
        puts = [p for p, _ in group]
        results: list[ObjectRow | None | BaseException]
        try:
            if self._index.fsync:
                results = list(await asyncio.to_thread(self._index.put_objects, puts))
            else:
                results = list(self._index.put_objects(puts))
        except Exception as exc:  # the transaction itself failed: every put in it did
            results = [exc] * len(group)
        except BaseException:
            for _, outcome in group:
                outcome.cancel()
            raise
        for (_, outcome), result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                outcome.set_exception(result)
            else:
                outcome.set_result(result)
