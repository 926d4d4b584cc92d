"""The workloads: put, get, mixed, multipart, ingest, kms.

Each workload has `setup(clients)` (run once, before the clock starts) and
`op(client, rng, rec)` (one unit of work, recorded in `rec`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence

from kmscore.frozen import frozen
from s3sim.loadtest.body import BodyPool
from s3sim.loadtest.client import (
    AwsClient,
    RequestFailed,
    error_code,
    error_message,
    sse_headers,
    xml_value,
)
from s3sim.loadtest.rawhttp import Response
from s3sim.loadtest.sizes import SizeDist
from s3sim.loadtest.stats import Recorder

WORKLOADS = ("put", "get", "mixed", "multipart", "ingest", "kms")
STAGING_BUCKET = "connect-staging"


class SetupError(Exception):
    """The workload could not be prepared (endpoint down, bucket not creatable, ...)."""


@frozen
class WorkloadConfig:
    name: str = "put"
    bucket: str = "s3sim-loadtest"
    sizes: SizeDist = SizeDist.single(4096)
    keys: int = 100
    prefix: str = "loadtest/"
    sse: str = "none"
    kms_key_id: str | None = None
    read_ratio: float = 0.5
    part_size: int = 8 << 20
    instance_id: str | None = None
    poll_interval_s: float = 0.02
    ingest_timeout_s: float = 30.0
    populate: bool = True  # get/mixed: write the key space first


async def recorded(rec: Recorder, name: str, call, nbytes: int | None = None) -> Response | None:
    """Await a client call; record success (latency, bytes) or the error code."""
    try:
        resp, latency = await call
    except RequestFailed as exc:
        rec.error(name, exc.code)
        return None
    if resp.status >= 300:
        rec.error(name, error_code(resp))
        return None
    rec.success(name, latency, resp.nbytes if nbytes is None else nbytes)
    return resp


def setup_failure(what: str, resp: Response) -> SetupError:
    """One line: what failed, the HTTP status, AWS's error code and message."""
    return SetupError(f"{what}: HTTP {resp.status} {error_code(resp)}: {error_message(resp)}")


class S3Workload:
    """put, get and mixed: single-request objects over a key space."""

    def __init__(self, cfg: WorkloadConfig, pool: BodyPool) -> None:
        self.cfg = cfg
        self.pool = pool
        self.sse = sse_headers(cfg.sse, cfg.kms_key_id)

    def key(self, rng: random.Random) -> str:
        return f"{self.cfg.prefix}{rng.randrange(self.cfg.keys):08d}"

    async def setup(self, clients: Sequence[AwsClient]) -> None:
        try:
            failed = await clients[0].ensure_bucket(self.cfg.bucket)
        except RequestFailed as exc:
            raise SetupError(f"endpoint unreachable: {exc}") from exc
        if failed is not None:
            raise setup_failure(f"cannot create bucket {self.cfg.bucket}", failed)
        if self.cfg.name in ("get", "mixed") and self.cfg.populate:
            await self._populate(clients)

    async def _populate(self, clients: Sequence[AwsClient]) -> None:
        rng = random.Random(0)
        todo = list(range(self.cfg.keys))

        async def fill(client: AwsClient) -> None:
            while todo:
                i = todo.pop()
                key = f"{self.cfg.prefix}{i:08d}"
                body = self.pool.chunks(self.cfg.sizes.pick(rng), i)
                resp, _ = await client.put_object(self.cfg.bucket, key, body, self.sse)
                if resp.status >= 300:
                    raise setup_failure(f"cannot write {key}", resp)

        try:
            await asyncio.gather(*(fill(c) for c in clients[:16]))
        except RequestFailed as exc:
            raise SetupError(f"populating keys failed: {exc}") from exc

    async def op(self, client: AwsClient, rng: random.Random, rec: Recorder) -> None:
        name = self.cfg.name
        if name == "get" or (name == "mixed" and rng.random() < self.cfg.read_ratio):
            await recorded(rec, "get", client.get_object(self.cfg.bucket, self.key(rng)))
            return
        size = self.cfg.sizes.pick(rng)
        body = self.pool.chunks(size, rng.getrandbits(24))
        call = client.put_object(self.cfg.bucket, self.key(rng), body, self.sse)
        await recorded(rec, "put", call, size)


class MultipartWorkload(S3Workload):
    """One op = CreateMultipartUpload + UploadPart x N + CompleteMultipartUpload."""

    async def op(self, client: AwsClient, rng: random.Random, rec: Recorder) -> None:
        size = self.cfg.sizes.pick(rng)
        path = f"/{self.cfg.bucket}/{self.key(rng)}"
        t0 = time.perf_counter()
        try:
            code = await self._upload(client, path, size, rng)
        except RequestFailed as exc:
            code = exc.code
        if code is None:
            rec.success("multipart", time.perf_counter() - t0, size)
        else:
            rec.error("multipart", code)

    async def _upload(self, client: AwsClient, path: str, size: int, rng) -> str | None:
        resp, _ = await client.send(
            "POST", path, query={"uploads": ""}, headers=self.sse, keep_body=True
        )
        upload_id = xml_value(resp.body, "UploadId") if resp.status == 200 else None
        if upload_id is None:
            return error_code(resp)
        parts = []
        part_size = self.cfg.part_size
        for number, off in enumerate(range(0, max(size, 1), part_size), start=1):
            body = self.pool.chunks(min(part_size, size - off), rng.getrandbits(24))
            query = {"partNumber": str(number), "uploadId": upload_id}
            resp, _ = await client.send("PUT", path, query=query, body=body)
            if resp.status >= 300:
                return error_code(resp)
            etag = resp.headers.get("etag", "")
            parts.append(f"<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>")
        doc = f"<CompleteMultipartUpload>{''.join(parts)}</CompleteMultipartUpload>".encode()
        resp, _ = await client.send(
            "POST", path, query={"uploadId": upload_id}, body=[doc], keep_body=True
        )
        # S3 may answer 200 with an <Error> body on CompleteMultipartUpload.
        if resp.status >= 300 or b"<Error>" in resp.body[:512]:
            return error_code(resp)
        return None


class KmsWorkload:
    """One op = GenerateDataKey then Decrypt of its CiphertextBlob (two recorded requests)."""

    def __init__(self, cfg: WorkloadConfig) -> None:
        self.cfg = cfg
        self.key_id = cfg.kms_key_id

    async def setup(self, clients: Sequence[AwsClient]) -> None:
        if self.key_id:
            return
        try:
            resp, _ = await clients[0].kms("CreateKey", {"Description": "s3sim loadtest"})
        except RequestFailed as exc:
            raise SetupError(f"endpoint unreachable: {exc}") from exc
        if resp.status != 200:
            raise setup_failure("CreateKey failed", resp)
        self.key_id = json.loads(resp.body)["KeyMetadata"]["Arn"]

    async def op(self, client: AwsClient, rng: random.Random, rec: Recorder) -> None:
        context = {"loadtest": str(rng.getrandbits(32))}
        req = {"KeyId": self.key_id, "KeySpec": "AES_256", "EncryptionContext": context}
        resp = await recorded(rec, "GenerateDataKey", client.kms("GenerateDataKey", req), 0)
        if resp is None:
            return
        try:
            blob = json.loads(resp.body)["CiphertextBlob"]
        except (ValueError, KeyError, TypeError):
            rec.error("Decrypt", "MalformedGenerateDataKeyResponse")
            return
        req = {"CiphertextBlob": blob, "EncryptionContext": context}
        await recorded(rec, "Decrypt", client.kms("Decrypt", req), 0)
