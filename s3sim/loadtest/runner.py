"""Drives a workload with N concurrent workers (one keep-alive connection each), bounded by
a duration and/or an op count, with a progress line every second on long runs."""

from __future__ import annotations

import asyncio
import random
import ssl
import sys
import time
from typing import Protocol, TextIO

from kmscore.frozen import frozen
from s3sim.loadtest.body import BodyPool
from s3sim.loadtest.client import AwsClient, Credentials
from s3sim.loadtest.ingest import IngestWorkload
from s3sim.loadtest.rawhttp import Endpoint, HttpConnection
from s3sim.loadtest.stats import Recorder, Summary
from s3sim.loadtest.workloads import KmsWorkload, MultipartWorkload, S3Workload, WorkloadConfig

DEFAULT_DURATION_S = 10.0
PROGRESS_AFTER_S = 2.0
PROGRESS_INTERVAL_S = 1.0


class Workload(Protocol):
    async def setup(self, clients: list[AwsClient]) -> None: ...

    async def op(self, client: AwsClient, rng: random.Random, rec: Recorder) -> None: ...


@frozen
class RunConfig:
    endpoint: str = "http://127.0.0.1:4566"
    creds: Credentials = Credentials()
    concurrency: int = 16
    duration_s: float | None = None
    count: int | None = None
    timeout_s: float = 60.0
    signed_payload: bool = False
    seed: int = 1
    ssl_context: ssl.SSLContext | None = None

    def limits(self) -> tuple[float | None, int | None]:
        """Duration and count; with neither given the run lasts DEFAULT_DURATION_S."""
        if self.duration_s is None and self.count is None:
            return DEFAULT_DURATION_S, None
        return self.duration_s, self.count


def make_workload(cfg: WorkloadConfig) -> Workload:
    if cfg.name == "kms":
        return KmsWorkload(cfg)
    pool = BodyPool(cfg.part_size if cfg.name == "multipart" else cfg.sizes.max_size)
    if cfg.name == "ingest":
        return IngestWorkload(cfg, pool)
    if cfg.name == "multipart":
        return MultipartWorkload(cfg, pool)
    if cfg.name in ("put", "get", "mixed"):
        return S3Workload(cfg, pool)
    raise ValueError(f"unknown workload {cfg.name!r}")


async def run_load(
    workload: Workload, run: RunConfig, progress: TextIO | None = sys.stderr
) -> Summary:
    """Set the workload up, run it, and summarize. Raises workloads.SetupError."""
    endpoint = Endpoint.parse(run.endpoint)
    clients = [
        AwsClient(
            HttpConnection(endpoint, run.ssl_context, run.timeout_s),
            run.creds,
            signed_payload=run.signed_payload,
        )
        for _ in range(max(1, run.concurrency))
    ]
    try:
        await workload.setup(clients)
        return await _drive(workload, clients, run, progress)
    finally:
        for c in clients:
            c.conn.close()


async def _drive(workload, clients, run: RunConfig, progress: TextIO | None) -> Summary:
    duration, count = run.limits()
    rec = Recorder()
    start = time.perf_counter()
    deadline = start + duration if duration is not None else float("inf")
    issued = 0

    async def worker(client: AwsClient, rng: random.Random) -> None:
        nonlocal issued
        while time.perf_counter() < deadline and (count is None or issued < count):
            issued += 1
            await workload.op(client, rng, rec)

    ticker = asyncio.create_task(_progress(rec, start, progress)) if progress else None
    try:
        await asyncio.gather(
            *(worker(c, random.Random(run.seed * 1_000_003 + i)) for i, c in enumerate(clients))
        )
    finally:
        if ticker is not None:
            ticker.cancel()
    return rec.summary(time.perf_counter() - start)


async def _progress(rec: Recorder, start: float, out: TextIO) -> None:
    last = (start, 0, 0)
    printed = False
    try:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            now = time.perf_counter()
            dt = now - last[0]
            line = (
                f"[{now - start:5.1f}s] {(rec.ok - last[1]) / dt:9.0f} ops/s "
                f"{(rec.nbytes - last[2]) / dt / 1e6:9.1f} MB/s  errors {rec.failed}"
            )
            last = (now, rec.ok, rec.nbytes)
            if now - start >= PROGRESS_AFTER_S:
                print(line, file=out, flush=True)
                printed = True
    finally:
        if printed:
            out.flush()
