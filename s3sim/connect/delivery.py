"""Phase 2: the background worker that delivers staged items to the customer's bucket.

Each item goes to `<BucketPrefix>/YYYY/MM/DD/<ContactId>_<YYYYMMDD>T<HH:MM>_UTC.<ext>`
(UTC time of ingest) with SSE-KMS under the storage config's key, written by the
instance's service role (KMS access through the grant). The target key is fixed by
the item, so a retry (after a failure or a kill -9) rewrites the same object or finds
it already there: never a second one. Failures keep the item staged, FAILED with the
AWS error, retried with exponential backoff on the (simulated) clock.

Every server process runs this loop (`s3sim serve --workers N`). A delivery starts with
a claim, a compare-and-set in the store that exactly one process can win: the item
becomes DELIVERING with `attempts + 1`, which is the claim's fencing token, and a lease
of `lease_seconds` (`next_attempt_at`). Whatever the delivery writes afterwards
(DELIVERED, FAILED) is conditioned on that token, so a process whose claim was taken
over writes nothing. A DELIVERING item is due again only once its lease ran out (its
process died mid-delivery); the main process's startup sweep drops the leases of the
previous run (`Store.release_claims`). Maintenance (retention, data-key destruction,
grant retirement, promote-waiting) runs only where `maintains` is set: the main process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from kmscore.clock import Clock
from kmscore.errors import KMSError
from s3sim.connect.access import service_role
from s3sim.connect.models import (
    DELIVERED,
    DELIVERING,
    FAILED,
    WAITING_FOR_CONFIG,
    Instance,
    Item,
    StorageConfig,
)
from s3sim.connect.paths import backoff_seconds, target_key
from s3sim.connect.staging import IntermediateStore
from s3sim.connect.store import Store
from s3sim.s3.errors import S3Error
from s3sim.s3.models import SseRequest

log = logging.getLogger(__name__)
# How long a claim holds an item (simulated seconds). A 1 MiB delivery takes tens of ms
# and a GiB-sized one a few seconds, so only a process that died mid-delivery (or a
# clock advanced past the lease) lets another one take an item over.
LEASE_SECONDS = 300.0


async def same_bytes(a: AsyncIterator[bytes], b: AsyncIterator[bytes]) -> bool:
    """Whether two byte streams hold the same bytes, however each one is chunked."""
    held = memoryview(b"")
    async for chunk in a:
        view = memoryview(chunk)
        while view:
            while not held:
                nxt = await anext(b, None)
                if nxt is None:
                    return False
                held = memoryview(nxt)
            n = min(len(view), len(held))
            if view[:n] != held[:n]:
                return False
            view, held = view[n:], held[n:]
    if held:
        return False
    async for rest in b:
        if rest:
            return False
    return True


def error_of(err: BaseException) -> tuple[str, str]:
    """The AWS error behind a failure: a KMS error S3 ran into wins over S3's mapping."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, KMSError):
            return e.code, e.message
        e = e.__cause__ or e.__context__
    if isinstance(err, S3Error):
        return err.code, err.message
    return "InternalServiceException", f"{type(err).__name__}: {err}"


def sse_for(config: StorageConfig) -> SseRequest:
    return SseRequest("aws:kms", config.key_arn) if config.key_arn else SseRequest()


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        staging: IntermediateStore,
        s3: Any,
        clock: Clock,
        *,
        retention_seconds: float = 86400.0,
        max_parallel: int = 8,
        retry_base: float = 1.0,
        retry_cap: float = 300.0,
        poll_interval: float = 0.2,
        retire_grants: Callable[[], int] = lambda: 0,
        lease_seconds: float = LEASE_SECONDS,
        maintains: bool = True,
    ) -> None:
        self._store = store
        self._staging = staging
        self._s3 = s3
        self._clock = clock
        self._retention = retention_seconds
        self._sem = asyncio.Semaphore(max_parallel)
        self._max_parallel = max_parallel
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._poll = poll_interval
        self._retire_grants = retire_grants
        self._lease = timedelta(seconds=lease_seconds)
        self.maintains = maintains  # False: deliver only (a worker process)
        self._in_flight: dict[str, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self._backlog = False
        self._maintained_at: datetime | None = None
        self._task: asyncio.Task | None = None
        self.delivered_count = 0

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="connect-delivery")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        pending = list(self._in_flight.values())
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            # cleared before the pass: a wake-up while it runs (an item staged after its
            # query, a delivery done) means another pass, not a wait for the poll
            self._wake.clear()
            try:
                await self.run_once(wait=False, maintain=self._maintenance_due())
            except asyncio.CancelledError:
                raise
            except Exception:  # keep delivering whatever one pass ran into
                log.exception("connect delivery pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except TimeoutError:
                pass

    # -- one pass ----------------------------------------------------------------
    def _maintenance_due(self) -> bool:
        """The background loop maintains at most once per poll interval (not per wake-up:
        an ingest wakes it, and maintenance costs queries and thread hops)."""
        last = self._maintained_at
        return last is None or (self._clock.now() - last).total_seconds() >= self._poll

    async def run_once(self, wait: bool = True, maintain: bool = True) -> int:
        """Maintenance, then start every due delivery; with wait, until they finish."""
        now = self._clock.now()
        if maintain:
            self._maintained_at = now
            await asyncio.to_thread(self._maintain, now)
        self._retire_grants_here()
        limit = self._max_parallel * 4 + len(self._in_flight)
        due = await self._store.run(self._store.due_items, now, limit)
        self._backlog = len(due) >= limit  # more may be due than this pass could read
        started = []
        for item in due:
            if item.item_id in self._in_flight or item.status == WAITING_FOR_CONFIG:
                continue
            task = asyncio.create_task(self._guarded(item))
            self._in_flight[item.item_id] = task
            started.append(task)
        if wait and started:
            await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    def _maintain(self, now: datetime) -> None:
        """Expiry, data-key destruction and promote-waiting where this process maintains;
        elsewhere only forget the data keys another process destroyed."""
        if not self.maintains:
            self._staging.forget_destroyed()
            return
        self._staging.maintain(now, self._retention)
        # items that wait for a config that now exists become due (closes an ingest race)
        self._store.promote_waiting()

    def _retire_grants_here(self) -> None:
        if self.maintains:
            self._retire_grants()

    async def _guarded(self, item: Item) -> None:
        try:
            async with self._sem:
                await self.deliver(item)
        finally:
            self._in_flight.pop(item.item_id, None)
            if self._backlog and len(self._in_flight) <= self._max_parallel:
                self._wake.set()  # running low with a backlog: read the next items now

    # -- one item ----------------------------------------------------------------
    async def deliver(self, item: Item) -> str:
        """Deliver one item; returns its new status (the status read if another process
        holds it, or if this pass read it before an earlier attempt delivered it)."""
        inst = self._store.get_instance(item.instance_id)
        config = self._store.config_for(item.instance_id, item.resource_type)
        now = self._clock.now()
        if inst is None:
            return item.status
        if config is None:
            self._store.update_item(
                item.item_id,
                item.generation,
                from_status=item.status,
                fence=item.attempts,
                status=WAITING_FOR_CONFIG,
                updated_at=now,
            )
            return WAITING_FOR_CONFIG
        token = item.attempts + 1
        if not await self._claim(item, token, now):
            return item.status  # re-staged, delivered or claimed by another process
        key = target_key(config.prefix, item.contact_id, item.ext, item.staged_at)
        try:
            await self._put(inst, item, config, key)
        except asyncio.CancelledError:
            self._release(item, token)
            raise
        except Exception as err:  # every failure keeps the item, with its AWS error
            return self._failed(item, token, err)
        return await self._delivered(item, token, f"{config.bucket}/{key}")

    def _release(self, item: Item, token: int) -> None:
        """A delivery cut short by a stop: the item is due again at once, elsewhere too."""
        self._store.update_item(
            item.item_id, item.generation, from_status=DELIVERING, fence=token, next_attempt_at=None
        )

    async def _claim(self, item: Item, token: int, now: datetime) -> bool:
        """Claim the item; a stop that cuts the wait short hands a claim it won back."""
        claim = asyncio.ensure_future(
            self._store.run(self._store.claim_item, item, now, now + self._lease)
        )
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            claim.add_done_callback(
                lambda f: (
                    f.cancelled()
                    or f.exception() is not None
                    or not f.result()
                    or self._release(item, token)
                )
            )
            raise

    async def _delivered(self, item: Item, token: int, location: str) -> str:
        now = self._clock.now()
        done = await self._store.run(
            self._store.update_item,
            item.item_id,
            item.generation,
            from_status=DELIVERING,
            fence=token,  # nothing if another process took the item over meanwhile
            status=DELIVERED,
            location=location,
            delivered_at=now,
            updated_at=now,
            blob_id=None,
            next_attempt_at=None,
            last_error_code=None,
            last_error_message=None,
        )
        if done:
            self._staging.destroy_blob(item.blob_id)
            self.delivered_count += 1
            log.info("delivered %s to %s (pid %d)", item.item_id, location, os.getpid())
        self._retire_grants_here()
        return DELIVERED

    async def _put(self, inst: Instance, item: Item, config: StorageConfig, key: str) -> None:
        role = service_role(inst)
        # Only a retry or a re-stage can find its own earlier PUT there (a first attempt of
        # a first generation cannot): skip the HEAD (a thread hop) on the common path.
        maybe_done = item.attempts > 0 or item.generation > 1
        if maybe_done and await self._already_there(role, inst, config, key, item):
            return
        body, release = await self._staging.open(inst, item)
        try:
            await self._s3.put_object(
                role, config.bucket, key, body, sse=sse_for(config), content_type=item.content_type
            )
        finally:
            release()

    async def _already_there(
        self, role: Any, inst: Instance, config: StorageConfig, key: str, item: Item
    ) -> bool:
        """A delivery cut short after its PUT committed: the object is already right
        (same size and key, and the same bytes as staged: read both, on retries only)."""
        try:
            info = await asyncio.to_thread(self._s3.head_object, role, config.bucket, key)
        except S3Error:
            return False
        same_key = not config.key_arn or info.sse.key_arn == config.key_arn
        if info.size != item.size or not same_key:
            return False
        try:
            res = await self._s3.objects.get(role, config.bucket, key)
            staged, release = await self._staging.open(inst, item)
        except (S3Error, LookupError):
            return False
        try:
            return await same_bytes(res.body, staged)
        except S3Error:
            return False
        finally:
            release()
            await res.body.aclose()
            await staged.aclose()  # type: ignore[attr-defined]  # an async generator

    def _failed(self, item: Item, token: int, err: BaseException) -> str:
        code, message = error_of(err)
        if code == "InternalServiceException":
            log.warning("connect delivery of %s failed", item.item_id, exc_info=err)
        delay = backoff_seconds(token, self._retry_base, self._retry_cap)
        now = self._clock.now()
        self._store.update_item(
            item.item_id,
            item.generation,
            from_status=DELIVERING,
            fence=token,
            status=FAILED,
            last_error_code=code,
            last_error_message=message,
            next_attempt_at=now + timedelta(seconds=delay),
            updated_at=now,
        )
        self._retire_grants_here()
        return FAILED
