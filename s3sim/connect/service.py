"""ConnectService: the facade the HTTP adapter, the S3 staging sink and the server use.

State: <data-dir>/connect/connect.db (metadata, the commit point) and
<data-dir>/connect/blobs/ (the intermediate store's encrypted files).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from kmscore.caller import Caller
from kmscore.clock import Clock
from kmscore.errors import KMSError
from s3sim.connect import report
from s3sim.connect.access import service_role
from s3sim.connect.contacts import Contacts, ContactView
from s3sim.connect.delivery import DeliveryWorker
from s3sim.connect.errors import ResourceNotFoundException
from s3sim.connect.instances import Instances, NewInstance
from s3sim.connect.models import Instance, Item, StorageConfig
from s3sim.connect.paths import is_uuid
from s3sim.connect.staging import IntermediateStore
from s3sim.connect.storage_configs import S3ConfigInput, StorageConfigs
from s3sim.connect.store import Store

# With several processes a retired data key outlives its last item this long (seconds):
# an ingest in another process may still be writing with it (as SHARED_GRACE for blobs).
KEY_GRACE = 300.0


def _engine_store(
    root: Path, rng: Callable[[int], bytes], fsync: bool, sweep: bool, spares: Any
) -> Any:
    """Staged blobs are deleted at once even when several processes share the data dir
    (no trash, unlike S3 blobs): only the delivery holding an item's claim reads its blob,
    and it holds the file open before it reads, so a later unlink cannot cut it short.
    The one reader that can find a blob gone is a delivery of a generation superseded
    between its claim and its open: it fails and, fenced, changes nothing, while the new
    generation is delivered. A trashed 1 MiB recording, by contrast, is written back to
    disk for nothing (measured: 15-20% more server CPU per recording). With `spares` the
    deleted file becomes a spare that the next blob, staged or delivered, is written
    into (s3sim/storage/spares.py); with fsync it is kept in place for this process's
    next staged blob (storage/blobstore.py, "kept files"): that reader fails the same
    way (the blob's header names another item)."""
    from s3sim.s3.engine import EngineStore

    return EngineStore(
        root,
        rng=rng,
        fsync=fsync,
        sweep=sweep,
        spares=spares,
        give_spares=True,
        fan_out_ahead=True,  # every recording writes here: no mkdir on the ingest path
    )


class ConnectService:
    def __init__(
        self,
        data_dir: Path,
        region: str,
        clock: Clock,
        kms: Any,
        s3: Any,
        rng: Callable[[int], bytes] = os.urandom,
        delivery_delay: float = 0.0,
        retention_seconds: float = 86400.0,
        max_parallel: int = 8,
        *,
        retry_base: float = 1.0,
        retry_cap: float = 300.0,
        rotate_items: int = 100,
        rotate_seconds: float = 3600.0,
        poll_interval: float = 0.2,
        fsync: bool = True,
        blob_store: Any = None,
        sweep: bool = True,
        shared: bool = False,
        spares: Any = None,
    ) -> None:
        root = Path(data_dir) / "connect"
        root.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.kms = kms
        self.s3 = s3
        self.store = Store(root / "connect.db", fsync=fsync, shared=shared)
        blobs = blob_store
        if blobs is None:
            blobs = _engine_store(root / "blobs", rng, fsync, sweep, spares)
        self.instances = Instances(self.store, region, clock, rng)
        self.staging = IntermediateStore(
            self.store,
            kms,
            blobs,
            clock,
            rng,
            delivery_delay=delivery_delay,
            rotate_items=rotate_items,
            rotate_seconds=rotate_seconds,
            on_ingest=self._wake,
            destroy_grace=KEY_GRACE if shared else 0.0,
        )
        self.configs = StorageConfigs(
            self.store, self.instances, kms, s3, region, clock, rng, on_change=self._wake
        )
        self.contacts = Contacts(self.store, self.instances)
        self.worker = DeliveryWorker(
            self.store,
            self.staging,
            s3,
            clock,
            retention_seconds=retention_seconds,
            max_parallel=max_parallel,
            retry_base=retry_base,
            retry_cap=retry_cap,
            poll_interval=poll_interval,
            retire_grants=self.configs.retire_pending,
        )
        self.orphans_removed = self.staging.sweep_orphans() if sweep else 0
        # the startup sweep runs before any process delivers: leftover claims are void
        self.claims_released = self.store.release_claims() if sweep else 0
        if hasattr(s3, "set_staging_sink"):
            s3.set_staging_sink(self.staging)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, maintain: bool = True) -> None:
        """Start the delivery loop; `maintain=False` in all but one process of a data dir
        (retention, data-key destruction and grant retirement run there only)."""
        self.worker.maintains = maintain
        await self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()

    def close(self) -> None:
        self.store.close()

    def _wake(self) -> None:
        try:
            self.worker.wake()
        except AttributeError:  # during construction
            pass

    # -- the S3 staging sink (also reachable as .staging) -----------------------------------
    def validate(self, caller: Caller, key: str) -> None:
        self.staging.validate(caller, key)

    async def ingest(
        self,
        caller: Caller,
        key: str,
        body: AsyncIterator[bytes],
        content_type: str | None,
        size_hint: int | None,
    ) -> tuple[str, int]:
        return await self.staging.ingest(caller, key, body, content_type, size_hint)

    # -- API operations (synchronous; the adapter runs them off the event loop) --------------
    def create_instance(self, caller: Caller, spec: NewInstance) -> Instance:
        return self.instances.create(caller, spec)

    def describe_instance(self, caller: Caller, instance_id: str) -> Instance:
        return self.instances.get(caller, instance_id, "DescribeInstance")

    def list_instances(
        self, caller: Caller, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[Instance], str | None]:
        return self.instances.list(caller, max_results, next_token)

    def delete_instance(self, caller: Caller, instance_id: str) -> None:
        """Retire the instance's grants, destroy its staged data, forget it."""
        inst = self.instances.get(caller, instance_id, "DeleteInstance")
        for cfg in self.store.configs(inst.instance_id):
            if cfg.grant_token:
                try:
                    self.kms.retire_grant(service_role(inst), grant_token=cfg.grant_token)
                except KMSError:
                    pass
        keys = [dk.dk_id for dk in self.store.data_keys(inst.instance_id)]
        for blob_id in self.store.delete_instance(inst.instance_id):
            self.staging.destroy_blob(blob_id)
        self.staging.forget_data_keys(keys)

    def associate_storage_config(
        self, caller: Caller, instance_id: str, resource_type: str, cfg: S3ConfigInput
    ) -> str:
        return self.configs.associate(caller, instance_id, resource_type, cfg)

    def describe_storage_config(
        self, caller: Caller, instance_id: str, association_id: str, resource_type: str
    ) -> StorageConfig:
        return self.configs.describe(caller, instance_id, association_id, resource_type)

    def list_storage_configs(
        self,
        caller: Caller,
        instance_id: str,
        resource_type: str,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[StorageConfig], str | None]:
        return self.configs.list(caller, instance_id, resource_type, max_results, next_token)

    def update_storage_config(
        self,
        caller: Caller,
        instance_id: str,
        association_id: str,
        resource_type: str,
        cfg: S3ConfigInput,
    ) -> None:
        self.configs.update(caller, instance_id, association_id, resource_type, cfg)

    def disassociate_storage_config(
        self, caller: Caller, instance_id: str, association_id: str, resource_type: str
    ) -> None:
        self.configs.disassociate(caller, instance_id, association_id, resource_type)

    def describe_contact(self, caller: Caller, instance_id: str, contact_id: str) -> ContactView:
        return self.contacts.describe(caller, instance_id, contact_id)

    # -- simulator views (no auth: served under /_s3sim/) ----------------------------------------
    def pipeline_items(self, instance_id: str, contact_id: str | None = None) -> list[Item]:
        inst = self.store.get_instance(instance_id) if is_uuid(instance_id) else None
        if inst is None:
            raise ResourceNotFoundException(f"Instance not found: {instance_id}")
        return self.store.items(inst.instance_id, contact_id)

    def status_lines(self) -> list[str]:
        return report.status_lines(self.store)
