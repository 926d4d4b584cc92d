"""Phase 1: the intermediate store.

A recording enters through S3 (bucket `connect-staging`, key
`<InstanceId>/<ResourceType>/<ContactId>.<ext>`) and is kept encrypted under a data
key that belongs to one instance only: generated from Connect's AWS-owned key with
the encryption context {"aws:connect:instanceArn": <instance ARN>}, used for at most
`rotate_items` items or `rotate_seconds` seconds, never by another instance.
Expiry (retention) and delivery destroy the staged bytes; a data key is destroyed
once it is retired and no pending item needs it, so what is left is unreadable. With
several server processes (`destroy_grace`) only `destroy_grace` seconds after it was
retired: an ingest in another process may still be writing with it (this process's own
ingests are known to it).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from kmscore.caller import Caller
from kmscore.clock import Clock
from s3sim.connect.access import connect_itself
from s3sim.connect.errors import DataKeyGone
from s3sim.connect.models import (
    CHANNELS,
    CONNECT_PRINCIPAL,
    CONTENT_TYPES,
    CONTEXT_KEY,
    EXPIRED,
    OWNED_KEY_NAME,
    STAGED,
    WAITING_FOR_CONFIG,
    Contact,
    DataKeyRecord,
    Instance,
    Item,
)
from s3sim.connect.paths import BadStagingKey, StagingKey, contact_arn, parse_staging_key
from s3sim.connect.store import Store
from s3sim.s3.blobs import BlobHeader, BlobStore, Garbage, Written
from s3sim.s3.errors import S3Error

STAGING_KIND = "staging"


def instance_context(inst: Instance) -> dict[str, str]:
    return {CONTEXT_KEY: inst.arn}


def blob_header(inst: Instance, item_id: str, dk: DataKeyRecord) -> BlobHeader:
    return BlobHeader(STAGING_KIND, item_id, dk.key_arn, dk.ciphertext_blob, instance_context(inst))


class LockedGarbage:
    """S3's deferred blob deletion, made safe to call from worker threads too."""

    def __init__(self, blobs: BlobStore) -> None:
        self._garbage = Garbage(blobs)
        self._lock = threading.Lock()

    def pin(self, blob_ids: list[str]) -> Callable[[], None]:
        with self._lock:
            release = self._garbage.pin(blob_ids)

        def locked_release() -> None:
            with self._lock:
                release()

        return locked_release

    def delete(self, blob_ids: list[str]) -> None:
        with self._lock:
            self._garbage.delete(blob_ids)

    def sweep(self, referenced: set[str]) -> int:
        with self._lock:
            return self._garbage.sweep(referenced)


class IntermediateStore:
    """The S3 staging sink (validate/ingest) and the staged items' keys and bytes."""

    def __init__(
        self,
        store: Store,
        kms: Any,
        blobs: BlobStore,
        clock: Clock,
        rng: Callable[[int], bytes],
        *,
        delivery_delay: float = 0.0,
        rotate_items: int = 100,
        rotate_seconds: float = 3600.0,
        on_ingest: Callable[[], None] = lambda: None,
        destroy_grace: float = 0.0,
    ) -> None:
        self._store = store
        self._kms = kms
        self._blobs = blobs
        self.garbage = LockedGarbage(blobs)
        self._clock = clock
        self._rng = rng
        self._delay = delivery_delay
        self._rotate_items = rotate_items
        self._rotate_seconds = rotate_seconds
        self._on_ingest = on_ingest
        self._grace = timedelta(seconds=destroy_grace)
        self._plain: dict[str, bytes] = {}  # dk_id -> plaintext data key (memory only)
        self._locks: dict[str, asyncio.Lock] = {}
        self._chosen: dict[str, int] = {}  # dk_id -> items that chose it (this process)
        self._in_use: dict[str, int] = {}  # dk_id -> ingests under way with it
        self._owned: str | None = None

    def owned_key(self) -> str:
        if self._owned is None:
            self._owned = self._kms.aws_owned_key(CONNECT_PRINCIPAL, OWNED_KEY_NAME)
        return self._owned

    def sweep_orphans(self) -> int:
        """Remove blobs no item references (an ingest cut short by a crash)."""
        return self.garbage.sweep(self._store.staged_blob_ids())

    # -- the S3 staging sink -----------------------------------------------------
    def validate(self, caller: Caller, key: str) -> tuple[Instance, StagingKey]:
        try:
            sk = parse_staging_key(key)
        except BadStagingKey as err:
            raise S3Error("InvalidArgument", f"connect-staging: {err}") from None
        inst = self._store.get_instance(sk.instance_id)
        if inst is None or inst.account != caller.account:
            raise S3Error(
                "AccessDenied",
                f"connect-staging: no Amazon Connect instance {sk.instance_id} in account "
                f"{caller.account}",
            )
        if not caller.iam_allows("s3:PutObject"):
            raise S3Error("AccessDenied", f"User: {caller.arn} may not perform s3:PutObject")
        return inst, sk

    async def ingest(
        self,
        caller: Caller,
        key: str,
        body: AsyncIterator[bytes],
        content_type: str | None,
        size_hint: int | None,
    ) -> tuple[str, int]:
        inst, sk = self.validate(caller, key)
        dk, plain = await self._data_key(inst)
        self._in_use[dk.dk_id] = self._in_use.get(dk.dk_id, 0) + 1  # not destroyed meanwhile
        try:
            item_id = str(uuid.UUID(bytes=self._rng(16), version=4))
            # no MD5: the delivered SSE-KMS object's ETag is not one (as on AWS), and an
            # SSE-S3 delivery hashes while it writes
            header = blob_header(inst, item_id, dk)
            written = await self._blobs.write(body, plain, header, (), md5=False)
            try:
                item, contact = self._new_item(inst, sk, item_id, written, dk, content_type)
                old_blob = await self._store.run(self._store.stage_item, item, contact)
            except BaseException as err:
                self.garbage.delete([written.blob_id])
                if isinstance(err, DataKeyGone):
                    raise S3Error("ServiceUnavailable", "Please retry the upload.") from None
                raise
        finally:
            self._in_use[dk.dk_id] -= 1
            if not self._in_use[dk.dk_id]:
                del self._in_use[dk.dk_id]
        if old_blob:
            self.garbage.delete([old_blob])
        self._on_ingest()
        return item.etag, written.size

    def _new_item(
        self,
        inst: Instance,
        sk: StagingKey,
        item_id: str,
        written: Written,
        dk: DataKeyRecord,
        content_type: str | None,
    ) -> tuple[Item, Contact]:
        now = self._clock.now()
        has_config = self._store.config_for(inst.instance_id, sk.resource_type) is not None
        item = Item(
            item_id=item_id,
            instance_id=inst.instance_id,
            resource_type=sk.resource_type,
            contact_id=sk.contact_id,
            ext=sk.ext,
            status=STAGED if has_config else WAITING_FOR_CONFIG,
            staged_at=now,
            updated_at=now,
            size=written.size,
            etag=self._rng(16).hex(),  # opaque: what the ingest PUT answers
            content_type=content_type or CONTENT_TYPES[sk.ext],
            blob_id=written.blob_id,
            dk_id=dk.dk_id,
            next_attempt_at=now + timedelta(seconds=self._delay) if self._delay else None,
        )
        channel = CHANNELS[sk.resource_type]
        contact = Contact(
            inst.instance_id, sk.contact_id, contact_arn(inst.arn, sk.contact_id), channel, now
        )
        return item, contact

    # -- data keys ---------------------------------------------------------------
    async def _data_key(self, inst: Instance) -> tuple[DataKeyRecord, bytes]:
        """The instance's current data key, rotated after N items or T seconds."""
        lock = self._locks.setdefault(inst.instance_id, asyncio.Lock())
        async with lock:
            dk = self._store.current_data_key(inst.instance_id)
            if dk is None or self._worn_out(dk):
                if dk is not None:
                    now = self._clock.now()
                    await asyncio.to_thread(self._store.retire_data_key, dk.dk_id, now)
                dk, plain = await asyncio.to_thread(self._new_data_key, inst)
            else:
                plain = await self.plaintext(inst, dk)
            # counted when chosen (in memory; stage_item persists it with the item), so
            # concurrent ingests cannot overrun the bound
            self._chosen[dk.dk_id] = self._chosen.get(dk.dk_id, dk.items) + 1
            return dk, plain

    def _worn_out(self, dk: DataKeyRecord) -> bool:
        age = (self._clock.now() - dk.created).total_seconds()
        used = self._chosen.get(dk.dk_id, dk.items)
        return used >= self._rotate_items or age >= self._rotate_seconds

    def _new_data_key(self, inst: Instance) -> tuple[DataKeyRecord, bytes]:
        out = self._kms.generate_data_key(
            connect_itself(inst), self.owned_key(), instance_context(inst)
        )
        dk = DataKeyRecord(
            dk_id=self._rng(16).hex(),
            instance_id=inst.instance_id,
            key_arn=out.key_arn,
            ciphertext_blob=out.ciphertext_blob,
            created=self._clock.now(),
            items=0,
            retired=False,
        )
        self._store.insert_data_key(dk)
        self._plain[dk.dk_id] = out.plaintext
        return dk, out.plaintext

    async def plaintext(self, inst: Instance, dk: DataKeyRecord) -> bytes:
        """The data key in the clear: from memory, else Decrypt with the instance context."""
        plain = self._plain.get(dk.dk_id)
        if plain is None:
            out = await asyncio.to_thread(
                self._kms.decrypt, connect_itself(inst), dk.ciphertext_blob, instance_context(inst)
            )
            plain = self._plain[dk.dk_id] = out.plaintext
        return plain

    # -- reading and destroying --------------------------------------------------
    async def open(self, inst: Instance, item: Item) -> tuple[AsyncIterator[bytes], Callable]:
        """The staged bytes (verified while read) and a release function to call after."""
        dk = self._store.get_data_key(item.dk_id) if item.dk_id else None
        if dk is None or item.blob_id is None:
            raise LookupError(f"item {item.item_id}: its staged data is gone")
        plain = await self.plaintext(inst, dk)
        unpin = self.garbage.pin([item.blob_id])
        try:
            header = blob_header(inst, item.item_id, dk)
            span = (0, item.size)
            reader = await self._blobs.open(item.blob_id, plain, header, item.size, span)
        except BaseException:
            unpin()
            raise

        def release() -> None:
            reader.close()  # the staged file it holds open
            unpin()

        return reader.iter_range(0, item.size), release

    def forget_data_keys(self, dk_ids: list[str]) -> None:
        """Drop destroyed data keys from memory."""
        for dk_id in dk_ids:
            self._plain.pop(dk_id, None)
            self._chosen.pop(dk_id, None)

    def forget_destroyed(self) -> None:
        """Drop from memory the data keys another process destroyed."""
        held = {*self._plain, *self._chosen}  # before the query: a key is stored first
        if not held:
            return
        known = self._store.data_key_ids()
        self.forget_data_keys([k for k in held if k not in known])

    def destroy_blob(self, blob_id: str | None) -> None:
        if blob_id:
            self.garbage.delete([blob_id])

    def maintain(self, now: datetime, retention_seconds: float) -> tuple[int, int]:
        """Retire worn-out keys, expire items past retention, destroy unneeded data keys.

        Returns (items expired, data keys destroyed).
        """
        for dk in self._store.live_data_keys():
            if (now - dk.created).total_seconds() >= self._rotate_seconds:
                self._store.retire_data_key(dk.dk_id, now)
        expired = self._store.expired_items(now - timedelta(seconds=retention_seconds))
        for item in expired:
            if self._store.update_item(  # not if a delivery claimed it meanwhile
                item.item_id,
                item.generation,
                from_status=item.status,
                fence=item.attempts,
                status=EXPIRED,
                blob_id=None,
                updated_at=now,
            ):
                self.destroy_blob(item.blob_id)
                if item.dk_id:
                    self._store.retire_data_key(item.dk_id, now)
        destroyed = self._store.destroy_unused_data_keys(set(self._in_use), now - self._grace)
        self.forget_data_keys(destroyed)
        return len(expired), len(destroyed)
