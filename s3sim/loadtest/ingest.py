"""The ingest workload: recordings PUT into `connect-staging`, then polled until delivered.

One op = PutObject of `<InstanceId>/CALL_RECORDINGS/<ContactId>.wav` (row `ingest.put`),
then GET /_s3sim/connect/instances/<InstanceId>/items/<ContactId> every poll interval until
its status is DELIVERED (row `delivered`: latency from the start of the PUT to the poll that
saw DELIVERED, so its resolution is the poll interval). An item not delivered within the
ingest timeout counts as error `NotDelivered.<last status>`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Sequence

from s3sim.loadtest.body import BodyPool
from s3sim.loadtest.client import AwsClient, RequestFailed
from s3sim.loadtest.stats import Recorder
from s3sim.loadtest.workloads import (
    STAGING_BUCKET,
    SetupError,
    WorkloadConfig,
    recorded,
    setup_failure,
)

PUT_ROW = "ingest.put"
DELIVERED_ROW = "delivered"


class IngestWorkload:
    def __init__(self, cfg: WorkloadConfig, pool: BodyPool) -> None:
        self.cfg = cfg
        self.pool = pool
        self.instance_id = cfg.instance_id

    async def setup(self, clients: Sequence[AwsClient]) -> None:
        if self.instance_id:
            return
        try:
            self.instance_id = await create_instance(clients[0], self.cfg)
        except RequestFailed as exc:
            raise SetupError(f"endpoint unreachable: {exc}") from exc

    async def op(self, client: AwsClient, rng: random.Random, rec: Recorder) -> None:
        rec.declare(PUT_ROW, in_total=True)
        rec.declare(DELIVERED_ROW, in_total=False)
        contact = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        key = f"{self.instance_id}/CALL_RECORDINGS/{contact}.wav"
        size = self.cfg.sizes.pick(rng)
        body = self.pool.chunks(size, rng.getrandbits(24))
        t0 = time.perf_counter()
        put = client.put_object(STAGING_BUCKET, key, body)
        if await recorded(rec, PUT_ROW, put, size) is None:
            return
        status = await self._wait_delivered(client, contact, t0 + self.cfg.ingest_timeout_s)
        if status == "DELIVERED":
            rec.success(DELIVERED_ROW, time.perf_counter() - t0, size)
        else:
            rec.error(DELIVERED_ROW, f"NotDelivered.{status}")

    async def _wait_delivered(self, client: AwsClient, contact: str, deadline: float) -> str:
        path = f"/_s3sim/connect/instances/{self.instance_id}/items/{contact}"
        status = "UNKNOWN"
        while time.perf_counter() < deadline:
            await asyncio.sleep(self.cfg.poll_interval_s)
            try:
                resp, _ = await client.send("GET", path, sign=False, keep_body=True)
            except RequestFailed:
                status = "Unreachable"
                continue
            if resp.status == 200:
                status = _status_of(resp.body)
                if status == "DELIVERED":
                    return status
            else:
                status = f"HTTP{resp.status}"
        return status


def _status_of(body: bytes) -> str:
    """The item's status from `{"status": ...}` or s3sim's `{"Items": [{"Status": ...}]}`
    (DELIVERED only when every item of the contact is)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "MalformedStatus"
    if not isinstance(doc, dict):
        return "MalformedStatus"
    if "status" in doc or "Status" in doc:
        return str(doc.get("status", doc.get("Status")))
    items = doc.get("Items")
    if not isinstance(items, list) or not items:
        return "UNKNOWN"
    statuses = [str(i.get("Status", "UNKNOWN")) if isinstance(i, dict) else "?" for i in items]
    pending = [st for st in statuses if st != "DELIVERED"]
    return pending[0] if pending else "DELIVERED"


async def create_instance(client: AwsClient, cfg: WorkloadConfig) -> str:
    """A Connect instance whose CALL_RECORDINGS go to `cfg.bucket` under a new KMS key
    (or `cfg.kms_key_id` when it is a key ARN)."""
    alias = f"loadtest-{uuid.uuid4().hex[:8]}"
    body = {
        "IdentityManagementType": "CONNECT_MANAGED",
        "InstanceAlias": alias,
        "InboundCallsEnabled": True,
        "OutboundCallsEnabled": False,
    }
    resp, _ = await client.connect("PUT", "/instance", body)
    _check(resp, "CreateInstance")
    instance_id = json.loads(resp.body)["Id"]
    key_arn = cfg.kms_key_id
    if not key_arn:
        resp, _ = await client.kms("CreateKey", {"Description": "s3sim loadtest ingest"})
        _check(resp, "CreateKey")
        key_arn = json.loads(resp.body)["KeyMetadata"]["Arn"]
    failed = await client.ensure_bucket(cfg.bucket)
    if failed is not None:
        _check(failed, f"CreateBucket {cfg.bucket}")
    s3config = {
        "BucketName": cfg.bucket,
        "BucketPrefix": f"connect/{alias}/CallRecordings",
        "EncryptionConfig": {"EncryptionType": "KMS", "KeyId": key_arn},
    }
    config = {
        "ResourceType": "CALL_RECORDINGS",
        "StorageConfig": {"StorageType": "S3", "S3Config": s3config},
    }
    resp, _ = await client.connect("PUT", f"/instance/{instance_id}/storage-config", config)
    _check(resp, "AssociateInstanceStorageConfig")
    return instance_id


def _check(resp, what: str) -> None:
    if resp.status >= 300:
        raise setup_failure(f"{what} failed", resp)
