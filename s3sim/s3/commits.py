"""Group commit of object rows: the PUTs of one process that reach their commit while
the previous group is being written share the next transaction (with --fsync, one fsync).

Without fsync a group is written on the event loop, at most one loop turn after its
first PUT asked; with fsync on a worker thread, while the loop goes on collecting the
next group. Each PUT still gets its own outcome: its replaced row, or the exception its
conditional check raised (`Index.put_objects`). Measured: docs/PERFORMANCE.md, session 4.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from s3sim.s3.blobs import Garbage
from s3sim.s3.errors import S3Error
from s3sim.storage.index import Index, ObjectPut, ObjectRow

Outcome = asyncio.Future[ObjectRow | None]
# a queued put: its outcome, and the blob its row names when the writer settles it
Queued = tuple[ObjectPut, Outcome, str | None]


class Commits:
    """One per S3 service (each server process has its own); used from one event loop."""

    def __init__(self, index: Index, garbage: Garbage) -> None:
        self._index = index
        self._garbage = garbage
        self._pending: list[Queued] = []
        self._writer: asyncio.Task[None] | None = None  # with fsync: the writing task
        self._scheduled = False  # a group write is due (task or loop callback)

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

        The writer settles the garbage itself, so a cancelled request still has its
        commit finished and frees the right blobs; only its answer is dropped."""
        sealed = None if inline is None else (blob_id, inline)
        await self._queue(ObjectPut(row, check, sealed), blob_id)

    def put(self, put: ObjectPut) -> Outcome:
        """Queue a put; the future resolves once its group committed (or refused it).
        The caller frees the losing blobs."""
        return self._queue(put, None)

    def _queue(self, put: ObjectPut, blob_id: str | None) -> Outcome:
        loop = asyncio.get_running_loop()
        outcome: Outcome = loop.create_future()
        self._pending.append((put, outcome, blob_id))
        if not self._scheduled:
            self._scheduled = True
            if self._index.fsync:  # the transaction waits for the disk: on a thread
                self._writer = loop.create_task(self._write_groups())
            else:  # it does not: one plain callback on the next loop turn
                loop.call_soon(self._write_here)
        return outcome

    def _write_here(self) -> None:
        group, self._pending = self._pending, []
        self._scheduled = False
        try:
            results = self._index.put_objects([p for p, _, _ in group])
        except BaseException as exc:
            results = self._failed(group, exc)
        self._settle(group, results)

    async def _write_groups(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                await self._write(group)
        finally:
            self._writer = None
            self._scheduled = False
            for _, outcome, _ in self._pending:  # only when cancelled (server shutdown)
                outcome.cancel()

    async def _write(self, group: list[Queued]) -> None:
        puts = [p for p, _, _ in group]
        results: list[ObjectRow | None | BaseException]
        try:
            results = list(await self._index.run(self._index.put_objects, puts))
        except BaseException as exc:
            results = self._failed(group, exc)
        self._settle(group, results)

    @staticmethod
    def _failed(group: list[Queued], exc: BaseException) -> list[BaseException]:
        """A group whose transaction raised: every put in it failed with that error; a
        cancellation (or exit) cancels every outcome and goes on."""
        if not isinstance(exc, Exception):
            for _, outcome, _ in group:
                outcome.cancel()
            raise exc
        return [exc] * len(group)

    def _settle(
        self, group: list[Queued], results: Sequence[ObjectRow | None | BaseException]
    ) -> None:
        """Free each put's losing blobs, then answer it (unless its request was cancelled)."""
        for (_, outcome, blob_id), result in zip(group, results, strict=True):
            if blob_id is not None:
                self._free(blob_id, result)
            if outcome.cancelled():
                continue
            if isinstance(result, BaseException):
                outcome.set_exception(result)
            else:
                outcome.set_result(result)

    def _free(self, blob_id: str, result: ObjectRow | None | BaseException) -> None:
        if isinstance(result, S3Error):  # refused by its check: the new blob is garbage
            self._garbage.delete([blob_id])
        elif isinstance(result, ObjectRow):  # the replaced version's blobs are
            self._garbage.delete(result.blob_ids())
