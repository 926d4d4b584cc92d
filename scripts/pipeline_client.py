"""The Connect pipeline as bench_pipeline drives it: recordings PUT into connect-staging
(closed or open loop) and the simulator's pipeline view read back."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

from s3sim.loadtest.body import BodyPool
from s3sim.loadtest.client import AwsClient, Credentials, RequestFailed, error_code
from s3sim.loadtest.rawhttp import Endpoint, HttpConnection
from s3sim.loadtest.workloads import STAGING_BUCKET

PENDING = ("STAGED", "DELIVERING", "WAITING_FOR_CONFIG")


def new_client(endpoint: str, timeout_s: float = 60.0) -> AwsClient:
    return AwsClient(HttpConnection(Endpoint.parse(endpoint), None, timeout_s), Credentials())


def ts(iso: str | None) -> float | None:
    """Epoch seconds of the pipeline view's `2026-01-01T00:00:00.000000Z` (UTC)."""
    if not iso:
        return None
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def count(errors: dict[str, int], code: str) -> None:
    errors[code] = errors.get(code, 0) + 1


class Ingester:
    """PUTs recordings into connect-staging for one instance; remembers when each began."""

    def __init__(self, endpoint: str, instance_id: str, size: int, pool_size: int) -> None:
        self.instance_id = instance_id
        self.size = size
        self.body = BodyPool(size)
        self.clients: asyncio.Queue[AwsClient] = asyncio.Queue()
        for _ in range(pool_size):
            self.clients.put_nowait(new_client(endpoint))
        self.started: dict[str, float] = {}  # contact id -> wall time the op was due/began
        self.errors: dict[str, int] = {}
        self.put_done = 0

    def close(self) -> None:
        while not self.clients.empty():
            self.clients.get_nowait().conn.close()

    async def blast(self, n: int, workers: int) -> None:
        """`n` recordings, closed loop, by `workers` concurrent PUTs."""
        todo = iter(range(n))

        async def worker() -> None:
            for _ in todo:
                await self.put()

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def put(self, due: float | None = None) -> None:
        """One recording; its start is `due` (open loop) or now (closed loop)."""
        contact = str(uuid.uuid4())
        self.started[contact] = due if due is not None else time.time()
        client = await self.clients.get()
        try:
            key = f"{self.instance_id}/CALL_RECORDINGS/{contact}.wav"
            body = self.body.chunks(self.size, len(self.started) * 4099)
            resp, _ = await client.put_object(STAGING_BUCKET, key, body)
            if resp.status >= 300:
                count(self.errors, f"ingest.{error_code(resp)}")
                del self.started[contact]
            else:
                self.put_done += 1
        except RequestFailed as exc:
            count(self.errors, f"ingest.{exc.code}")
            del self.started[contact]
        finally:
            self.clients.put_nowait(client)


async def pipeline_items(endpoint: str, instance_id: str) -> list[dict]:
    """Every item of the instance, read whole: the load generator's connection keeps at most
    1 MiB of a body (~1,500 items), so this one harness read goes through the standard
    library, on a thread."""
    url = f"{endpoint.rstrip('/')}/_s3sim/connect/instances/{instance_id}/items"

    def read() -> list[dict]:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return json.load(resp)["Items"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"pipeline view: HTTP {exc.code}") from None

    return await asyncio.to_thread(read)


async def status_counts(client: AwsClient, instance_id: str) -> dict[str, int]:
    """The instance's item counts by status (one cheap query on the server)."""
    resp, _ = await client.send("GET", "/_s3sim/connect/instances", sign=False, keep_body=True)
    if resp.status != 200:
        raise RuntimeError(f"pipeline view: HTTP {resp.status}")
    for inst in json.loads(resp.body)["Instances"]:
        if inst["InstanceId"] == instance_id:
            return inst["Counts"]
    raise RuntimeError(f"instance {instance_id} missing from the pipeline view")


async def wait_delivered(
    endpoint: str, instance_id: str, contacts: set[str], deadline: float
) -> dict[str, dict]:
    """Poll the instance's counts (every 50 ms) until nothing is pending and as many items
    are DELIVERED as this run expects, or the deadline passes; then read the items once.
    Returns {contact: item} of the contacts asked for."""
    client = new_client(endpoint)
    try:
        while time.monotonic() < deadline:
            counts = await status_counts(client, instance_id)
            pending = sum(counts.get(s, 0) for s in PENDING)
            if pending == 0 and counts.get("DELIVERED", 0) >= len(contacts):
                break
            await asyncio.sleep(0.05)
        items = {i["ContactId"]: i for i in await pipeline_items(endpoint, instance_id)}
        return {c: items[c] for c in contacts if c in items}
    finally:
        client.conn.close()


def not_delivered(items: dict[str, dict], contacts: set[str], errors: dict[str, int]) -> None:
    for c in contacts:
        status = items[c]["Status"] if c in items else "MISSING"
        if status != "DELIVERED":
            count(errors, f"NotDelivered.{status}")
