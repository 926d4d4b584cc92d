"""Group commit of object rows: the PUTs of one process that reach their commit while
the previous group is being written share the next transaction (with --fsync, one fsync).

Without fsync a group is written on the event loop, at most one loop turn after its
first PUT asked; with fsync on a worker thread, while the loop goes on collecting the
next group. Each PUT still gets its own outcome: its replaced row, or the exception its
conditional check raised (`Index.put_objects`). Measured: docs/PERFORMANCE.md, session 4.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from s3sim.s3.blobs import Garbage
from s3sim.s3.errors import S3Error
from s3sim.storage.index import Index, ObjectPut, ObjectRow

Outcome = asyncio.Future[ObjectRow | None]


class Commits:
    """One per S3 service (each server process has its own); used from one event loop."""

    def __init__(self, index: Index, garbage: Garbage) -> None:
        self._index = index
        self._garbage = garbage
        self._pending: list[tuple[ObjectPut, Outcome]] = []
        self._writer: asyncio.Task[None] | None = None

    async def commit(
        self,
        row: ObjectRow,
        check: Callable[[ObjectRow | None], None] | None,
        blob_id: str,
        inline: bytes | None,
    ) -> None:
        """Point the key at `row` (with its inline blob, if any) in the next group; the
        losing side's blobs become garbage: the replaced version's, or this one's when its
        check refuses it (the check's S3Error is then raised).

        The wait is shielded: a cancelled request still has its commit finished and frees
        the right blobs."""
        sealed = None if inline is None else (blob_id, inline)
        outcome = self.put(ObjectPut(row, check, sealed))
        try:
            await asyncio.shield(outcome)
        except asyncio.CancelledError:
            outcome.add_done_callback(
                lambda f: f.cancelled() or self._settled(blob_id, f.result, quiet=True)
            )
            raise
        except S3Error:
            pass  # refused by its check: _settled frees the new blob, then raises it
        self._settled(blob_id, outcome.result)

    def _settled(
        self, blob_id: str, result: Callable[[], ObjectRow | None], quiet: bool = False
    ) -> None:
        try:
            old = result()
        except S3Error:
            self._garbage.delete([blob_id])
            if quiet:  # nobody is waiting for the answer any more
                return
            raise
        if old is not None:
            self._garbage.delete(old.blob_ids())

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
            results = list(await self._index.run(self._index.put_objects, puts))
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
