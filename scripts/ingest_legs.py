#!/usr/bin/env python3
"""Where a recording's server CPU goes: the plain PUT, the staging PUT alone, the delivery
alone, measured in turns against one server.

One `s3sim serve --workers 2 --no-fsync --connect-delivery-delay <hold>` (with `--fsync`:
every commit fsynced instead) on a free port and a temp data dir (server CPU summed over
its processes, from /proc). Setup as in bench_pipeline.py (a customer key, the delivery
bucket, an instance). Then, `--rounds` times:

1. plain PUT: 1 MiB objects, SSE-KMS under the customer key, closed loop, `--seconds`;
2. staging PUT: `--count` recordings into `connect-staging`; none is delivered (the
   delivery delay holds them back on the simulated clock);
3. delivery: the simulated clock advanced past the delay; server CPU until every one of
   them is delivered, divided by the count.

Each round uses a fresh instance (and key). Each figure is server CPU milliseconds per
operation. A diagnostic, not a target: the
ingest target itself is bench_pipeline.py's.

    python scripts/ingest_legs.py [--rounds 3] [--count 150] [--seconds 3] [--size 1MiB] [--fsync]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_client as pc  # noqa: E402
from bench_common import ServerProcess, free_port, python_cmd  # noqa: E402
from bench_pipeline import Params, plain_put, proc_cpu_s, setup  # noqa: E402

from s3sim.loadtest.sizes import parse_size  # noqa: E402

HOLD_S = 1000  # simulated seconds a staged item waits; less than the retention (86400)


def advance_clock(endpoint: str, seconds: float) -> None:
    body = json.dumps({"seconds": seconds}).encode()
    req = urllib.request.Request(f"{endpoint}/_s3sim/clock/advance", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


async def one_round(endpoint: str, pid: int, a) -> dict:
    # a fresh instance per round: the pipeline view read at the end holds only this round's
    # items (the load generator keeps at most 1 MiB of a response body)
    key_arn, instance_id = await setup(endpoint)
    p = Params(size=a.size, timeout_s=120.0)

    def cpu() -> float:
        return proc_cpu_s(pid) or 0.0

    c0 = cpu()
    put = await plain_put(endpoint, a.size, "aws:kms", key_arn, p, a.seconds)
    put_ms = 1e3 * (cpu() - c0) / max(put["count"], 1)
    ing = pc.Ingester(endpoint, instance_id, a.size, p.concurrency)
    c0 = cpu()
    try:
        await ing.blast(a.count, p.concurrency)
    finally:
        ing.close()
    stage_ms = 1e3 * (cpu() - c0) / max(ing.put_done, 1)
    c0 = cpu()
    await asyncio.to_thread(advance_clock, endpoint, HOLD_S + 1)
    deadline = time.monotonic() + p.timeout_s
    items = await pc.wait_delivered(endpoint, instance_id, set(ing.started), deadline)
    done = sum(1 for i in items.values() if i["Status"] == "DELIVERED")
    deliver_ms = 1e3 * (cpu() - c0) / max(done, 1)
    return {
        "put_ms": put_ms,
        "staging_put_ms": stage_ms,
        "delivery_ms": deliver_ms,
        "staged": ing.put_done,
        "delivered": done,
        "errors": {**put["errors"], **ing.errors},
    }


async def run(endpoint: str, pid: int, a) -> list[dict]:
    return [await one_round(endpoint, pid, a) for _ in range(a.rounds)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=150, help="recordings per round")
    ap.add_argument("--seconds", type=float, default=3.0, help="plain PUT per round")
    ap.add_argument("--size", type=parse_size, default=1 << 20)
    ap.add_argument("--fsync", action="store_true", help="the server fsyncs every commit")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ingest-legs-") as tmp:
        port = free_port()
        serve = ["-m", "s3sim", "serve", "--host", "127.0.0.1", "--port", str(port)]
        serve += ["--data-dir", str(Path(tmp) / "data")]
        serve += ["--workers", "2", "--fsync" if a.fsync else "--no-fsync"]
        serve += ["--log-level", "WARNING"]
        serve += ["--connect-delivery-delay", str(HOLD_S)]
        srv = ServerProcess("s3sim", python_cmd(*serve), port=port, ready_path="/_s3sim/health")
        srv.start()
        try:
            pid = srv.proc.pid if srv.proc else -1
            rounds = asyncio.run(run(srv.endpoint, pid, a))
        finally:
            srv.stop()
    print("round  PUT ms  staging PUT ms  delivery ms  (server CPU per op)")
    for i, r in enumerate(rounds):
        line = f"{i:5d}  {r['put_ms']:6.2f}  {r['staging_put_ms']:14.2f}  {r['delivery_ms']:11.2f}"
        if r["delivered"] != r["staged"] or r["errors"]:
            line += f"  delivered {r['delivered']}/{r['staged']} errors {r['errors']}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
