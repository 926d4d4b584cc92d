"""Shared pieces of the S3Service tests: an in-memory blob store and a fake KMS."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from kmscore import errors as kms_errors
from kmscore.caller import Caller
from kmscore.clock import FixedClock
from s3sim.s3.blobs import BlobHeader, Written
from s3sim.s3.errors import S3Error
from s3sim.s3.service import S3Service
from s3sim.storage.checksums import checksum

ADMIN = Caller("arn:aws:iam::111122223333:root", "111122223333")
ALICE = Caller("arn:aws:iam::111122223333:user/alice", "111122223333", ("s3:*",))
READER = Caller("arn:aws:iam::111122223333:user/r", "111122223333", ("s3:GetObject",))
OTHER = Caller("arn:aws:iam::444455556666:root", "444455556666")
MiB = 1024 * 1024


@dataclass(frozen=True)
class DataKey:
    key_arn: str
    plaintext: bytes
    ciphertext_blob: bytes
    key_material_id: str = "m1"


class FakeKMS:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.states: dict[str, str] = {}
        self.root = b"fake root key".ljust(32, b"\0")  # the same across restarts

    def derived_secret(self, name: str) -> bytes:
        return hashlib.sha256(self.root + name.encode()).digest()

    def arn(self, key_id: str) -> str:
        if key_id.startswith("arn:"):
            return key_id
        return f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"

    def _check(self, caller: Caller, arn: str) -> None:
        state = self.states.get(arn)
        if state is None:
            raise kms_errors.NotFoundException(f"Key '{arn}' does not exist")
        if state == "Disabled":
            raise kms_errors.DisabledException(f"{arn} is disabled.")
        if caller.account != arn.split(":")[4]:
            raise kms_errors.AccessDeniedException("denied")

    def aws_managed_key(self, account: str, alias: str = "aws/s3") -> str:
        arn = f"arn:aws:kms:us-east-1:{account}:key/managed"
        self.states.setdefault(arn, "Enabled")
        return arn

    def generate_data_key(self, caller, key_id, context, *a, **k):
        arn = self.arn(key_id)
        self._check(caller, arn)
        self.calls.append(("GenerateDataKey", arn, dict(context)))
        pt = hashlib.sha256(json.dumps([arn, len(self.calls)]).encode()).digest()
        blob = json.dumps({"arn": arn, "ctx": context, "pt": pt.hex()}).encode()
        return DataKey(arn, pt, blob)

    def decrypt(self, caller, blob, context, key_id=None, grant_tokens=()):
        d = json.loads(blob)
        self._check(caller, d["arn"])
        self.calls.append(("Decrypt", d["arn"], dict(context)))
        if d["ctx"] != dict(context):
            raise kms_errors.InvalidCiphertextException("")
        return DataKey(d["arn"], bytes.fromhex(d["pt"]), b"")

    def key_state(self, arn: str) -> str:
        return self.states.get(arn, "NotFound")


class MemReader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def iter_range(self, start: int, end: int):
        for i in range(start, end, 65536):
            yield self.data[i : min(i + 65536, end)]

    def close(self) -> None:
        pass


class MemStore:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, bytes, BlobHeader]] = {}
        self.n = 0

    async def write(self, chunks, data_key, header, checksum_algorithms, md5=True, inline_max=0):
        """Every blob is kept like a file here (inline blobs: tests/unit/test_s3_engine.py)."""
        data = b"".join([c async for c in chunks])
        self.n += 1
        blob_id = f"blob{self.n}"
        self.blobs[blob_id] = (data, data_key, header)
        checks = {a: checksum(a, data) for a in checksum_algorithms}
        return Written(blob_id, len(data), hashlib.md5(data).hexdigest() if md5 else None, checks)

    async def open(self, blob_id, data_key, header, size=None, span=None):
        data, key, hdr = self.blobs[blob_id]
        if key != data_key or hdr != header:
            raise S3Error("InternalError", "corrupt")
        return MemReader(data)

    def read_small(self, blob_id, data_key, header, size):
        data, key, hdr = self.blobs[blob_id]
        if key != data_key or hdr != header or len(data) != size:
            raise S3Error("InternalError", "corrupt")
        return data

    def delete(self, blob_id, grace=True):
        del self.blobs[blob_id]

    def list_ids(self):
        return list(self.blobs)


async def body(data: bytes):
    for i in range(0, len(data), 1000):
        yield data[i : i + 1000]


async def read(res) -> bytes:
    if isinstance(res.body, bytes):  # a small object read whole (whole_max)
        return res.body
    return b"".join([c async for c in res.body])


def make_env(tmp_path):
    """(S3Service over MemStore and FakeKMS with key k1 enabled, kms, store, clock)."""
    kms, store, clock = FakeKMS(), MemStore(), FixedClock()
    kms.states[kms.arn("k1")] = "Enabled"
    s3 = S3Service(tmp_path, "us-east-1", clock, kms, store=store, fsync=False)
    s3.buckets.create(ADMIN, "bkt")
    return s3, kms, store, clock


def code(exc_info) -> tuple[str, int]:
    return exc_info.value.code, exc_info.value.status
