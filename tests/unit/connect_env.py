"""Shared setup for the Connect unit tests: real KMS, real S3Service, real engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kmscore import KMS, Caller
from kmscore.clock import FixedClock
from s3sim.connect.instances import NewInstance
from s3sim.connect.paths import target_key
from s3sim.connect.service import ConnectService
from s3sim.connect.storage_configs import S3ConfigInput
from s3sim.s3.service import S3Service

REGION = "us-east-1"
ACCOUNT = "111122223333"
OTHER = "444455556666"
ROOT = Caller(arn=f"arn:aws:iam::{ACCOUNT}:root", account=ACCOUNT)
OTHER_ROOT = Caller(arn=f"arn:aws:iam::{OTHER}:root", account=OTHER)


@dataclass
class Env:
    tmp: Path
    clock: FixedClock
    kms: KMS
    s3: S3Service
    connect: ConnectService

    def key(self, caller: Caller = ROOT) -> str:
        return self.kms.create_key(caller).arn

    def instance(self, alias: str = "inst", caller: Caller = ROOT):
        return self.connect.create_instance(
            caller, NewInstance("CONNECT_MANAGED", True, True, alias=alias)
        )

    def bucket(self, name: str, caller: Caller = ROOT) -> str:
        self.s3.buckets.create(caller, name)
        return name

    def associate(self, inst, bucket: str, key_arn: str, rtype: str = "CALL_RECORDINGS") -> str:
        cfg = S3ConfigInput("S3", bucket, "connect/rec", "KMS", key_arn)
        return self.connect.associate_storage_config(ROOT, inst.instance_id, rtype, cfg)

    async def ingest(self, inst, contact: str, data: bytes, rtype="CALL_RECORDINGS", ext="wav"):
        key = f"{inst.instance_id}/{rtype}/{contact}.{ext}"
        return await self.s3.put_object(ROOT, "connect-staging", key, body(data), sse=_sse())

    async def read(self, bucket: str, key: str, caller: Caller = ROOT) -> bytes:
        res = await self.s3.objects.get(caller, bucket, key)
        out = b""
        async for chunk in res.body:
            out += chunk
        return out


def _sse():
    from s3sim.s3.models import SseRequest

    return SseRequest()


async def body(data: bytes, size: int = 7):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def make_env(tmp: Path, **kw) -> Env:
    clock = FixedClock()
    kms = KMS(tmp, REGION, clock, root_key=b"\x01" * 32)
    s3 = S3Service(tmp, REGION, clock, kms, fsync=False)
    kw.setdefault("retry_base", 1.0)
    connect = ConnectService(tmp, REGION, clock, kms, s3, fsync=False, **kw)
    return Env(tmp, clock, kms, s3, connect)


DATA = bytes(range(256)) * 41 + b"tail"


def items(env: Env, inst, contact=None):
    return env.connect.pipeline_items(inst.instance_id, contact)


async def deliver_all(env: Env) -> int:
    return await env.connect.worker.run_once()


def expected_key(item, prefix="connect/rec"):
    return target_key(prefix, item.contact_id, item.ext, item.staged_at)
