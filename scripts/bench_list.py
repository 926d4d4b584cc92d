#!/usr/bin/env python3
"""ListObjectsV2 page latency at 10^3, 10^5 and 10^6 keys in one bucket.

Filling 10^6 keys through HTTP would take most of an hour on 2 cores, so the keys are
bulk-loaded: one real object (`obj/00000000`, 0 bytes) is PUT through the server, and its
index row is cloned (new key and object id, same metadata and blob reference) straight
into the S3 index (`<data-dir>/s3/index.sqlite3`, `objects` table of
`s3sim/storage/index.py`) in one SQLite transaction while the server is idle. The clones
are therefore exactly as large as real rows of tiny objects; only listing them is
meaningful (they share one blob). Every LISTING is measured through the running server
over HTTP: with the load generator's signed client (`s3sim.loadtest`, the figure the
ratio uses: server time, no XML parsing) and with boto3 (`list_objects_v2`, what a user
sees). Each figure is the median of `--runs` calls after one warm-up call.

Pages measured at each size: the first page (1000 keys), a deep page (`StartAfter` at
90 % of the keyspace) and the page after it (its `ContinuationToken`); the deep pages
only from 3000 keys on (both full pages).

    python scripts/bench_list.py [--sizes 1000,100000,1000000] [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ServerProcess, free_port, python_cmd  # noqa: E402

from s3sim.loadtest.client import (  # noqa: E402
    DEFAULT_ACCESS_KEY,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    AwsClient,
    Credentials,
    xml_value,
)
from s3sim.loadtest.rawhttp import Endpoint, HttpConnection  # noqa: E402
from s3sim.storage.index import ObjectRow  # noqa: E402

BUCKET = "bench-list"
PREFIX = "obj/"
TARGET = 2.0  # page@10^6 / page@10^3
FILL_BATCH = 50_000
MIN_DEEP = 3000  # smaller buckets have no full page deep in the keyspace


def key_of(i: int) -> str:
    return f"{PREFIX}{i:08d}"


@dataclass
class SizeResult:
    keys: int
    fill_s: float = 0.0
    first_ms: float | None = None
    deep_ms: float | None = None
    next_ms: float | None = None
    boto3_first_ms: float | None = None
    first_runs_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- fill


def index_path(data_dir: Path) -> Path:
    return data_dir / "s3" / "index.sqlite3"


def template_row(db: sqlite3.Connection) -> ObjectRow:
    row = db.execute("SELECT * FROM objects WHERE bucket=? AND key=?", (BUCKET, key_of(0)))
    found = row.fetchone()
    if found is None:
        raise RuntimeError("template object not found in the index")
    return ObjectRow(*found)


def fill(data_dir: Path, have: int, want: int) -> float:
    """Clone the template row for keys have..want-1; returns seconds taken."""
    t0 = time.perf_counter()
    db = sqlite3.connect(index_path(data_dir), isolation_level=None, timeout=30)
    try:
        db.execute("PRAGMA synchronous=NORMAL")
        t = template_row(db)
        db.execute("BEGIN IMMEDIATE")
        for lo in range(have, want, FILL_BATCH):
            rows = (
                (BUCKET, key_of(i), uuid.uuid4().hex, t.size, t.etag, t.last_modified)
                + (t.owner_account, t.segments, t.meta)
                for i in range(lo, min(want, lo + FILL_BATCH))
            )
            db.executemany("INSERT INTO objects VALUES (?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
        # As a server that took these writes one by one would have: fold the WAL into the
        # database so that reads do not go through a WAL of hundreds of MB.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return time.perf_counter() - t0


# ---------------------------------------------------------------- measure


async def raw_page(client: AwsClient, query: dict[str, str]) -> tuple[float, bytes]:
    resp, latency = await client.send("GET", f"/{BUCKET}", query=query, keep_body=True)
    if resp.status != 200:
        raise RuntimeError(f"ListObjectsV2 {query}: HTTP {resp.status} {resp.body[:200]!r}")
    return latency, resp.body


async def median_ms(client: AwsClient, query: dict[str, str], runs: int) -> tuple[float, list]:
    await raw_page(client, query)  # warm-up
    times = [(await raw_page(client, query))[0] * 1000 for _ in range(runs)]
    return statistics.median(times), times


async def measure_raw(endpoint: str, n: int, runs: int, res: SizeResult) -> None:
    conn = HttpConnection(Endpoint.parse(endpoint), None, 60.0)
    client = AwsClient(conn, Credentials())
    try:
        first = {"list-type": "2"}
        _, body = await raw_page(client, first)
        keys = body.count(b"<Key>")
        if keys != min(n, 1000):
            res.problems.append(f"first page has {keys} keys, expected {min(n, 1000)}")
        res.first_ms, res.first_runs_ms = await median_ms(client, first, runs)
        if n < MIN_DEEP:
            return
        deep = {"list-type": "2", "start-after": key_of(min(n * 9 // 10, n - 2001))}
        res.deep_ms, _ = await median_ms(client, deep, runs)
        _, body = await raw_page(client, deep)
        token = xml_value(body, "NextContinuationToken")
        if token:
            res.next_ms, _ = await median_ms(
                client, {"list-type": "2", "continuation-token": token}, runs
            )
    finally:
        conn.close()


def measure_boto3(endpoint: str, n: int, runs: int, res: SizeResult) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=DEFAULT_ACCESS_KEY,
        aws_secret_access_key=DEFAULT_SECRET_KEY,
        region_name=DEFAULT_REGION,
    )
    page = s3.list_objects_v2(Bucket=BUCKET)
    if page["KeyCount"] != min(n, 1000) or page["IsTruncated"] != (n > 1000):
        res.problems.append(f"boto3 page: KeyCount {page['KeyCount']}")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s3.list_objects_v2(Bucket=BUCKET)
        times.append((time.perf_counter() - t0) * 1000)
    res.boto3_first_ms = statistics.median(times)


def put_template(endpoint: str) -> None:
    """The bucket and one real 0-byte object, through the server (boto3)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=DEFAULT_ACCESS_KEY,
        aws_secret_access_key=DEFAULT_SECRET_KEY,
        region_name=DEFAULT_REGION,
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key_of(0), Body=b"")


def run(sizes: list[int], runs: int, tmp: Path) -> tuple[list[SizeResult], float | None]:
    data = tmp / "data"
    port = free_port()
    cmd = python_cmd("-m", "s3sim", "serve", "--host", "127.0.0.1", "--port", str(port))
    cmd += ["--data-dir", str(data), "--no-fsync"]
    srv = ServerProcess("s3sim", cmd, port, "/_s3sim/health", tmp / "server.log")
    srv.start()
    results = []
    try:
        put_template(srv.endpoint)
        have = 1
        for n in sorted(sizes):
            res = SizeResult(n, fill_s=fill(data, have, n) if n > have else 0.0)
            have = max(have, n)
            print(f"[list] {n:,} keys (fill {res.fill_s:.1f} s)", file=sys.stderr)
            asyncio.run(measure_raw(srv.endpoint, n, runs, res))
            measure_boto3(srv.endpoint, n, runs, res)
            results.append(res)
    finally:
        rss = srv.peak_rss_mib()
        srv.stop()
    return results, rss


# ---------------------------------------------------------------- output


def ratio(results: list[SizeResult]) -> float | None:
    lo, hi = results[0], results[-1]
    if len(results) < 2 or not lo.first_ms or hi.first_ms is None:
        return None
    return hi.first_ms / lo.first_ms


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.1f}"


def table(results: list[SizeResult], runs: int, rss: float | None) -> str:
    head = [
        "keys in bucket",
        "first page ms",
        "deep start-after ms",
        "next (token) ms",
        "first page boto3 ms",
        "fill s",
    ]
    rows = [head]
    for r in results:
        cells = [r.first_ms, r.deep_ms, r.next_ms, r.boto3_first_ms]
        rows.append([f"{r.keys:,}", *(_f(c) for c in cells), f"{r.fill_s:.1f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    q = ratio(results)
    if q is not None:
        verdict = "PASS" if q <= TARGET else "FAIL"
        lines.append(
            f"first page @{results[-1].keys:,} / @{results[0].keys:,} = {q:.2f}x "
            f"(target <= {TARGET:g}x: {verdict})"
        )
    lines.append(
        f"1000 keys per page; median of {runs} calls after a warm-up; ms columns but the boto3 "
        "one: load-generator client (request written -> response read); peak server RSS "
        + ("n/a" if rss is None else f"{rss:.0f} MiB")
    )
    for r in results:
        for p in r.problems:
            lines.append(f"{r.keys:,} keys: {p}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000", help="key counts, ascending")
    ap.add_argument("--runs", type=int, default=7, help="calls per figure (median)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    if not sizes or sizes[0] < 1 or args.runs < 1:
        ap.error("sizes must be positive and runs >= 1")
    with tempfile.TemporaryDirectory(prefix="bench_list_") as tmp:
        results, rss = run(sizes, args.runs, Path(tmp))
    if args.json:
        doc = {"runs": args.runs, "ratio": ratio(results), "peak_rss_mib": rss}
        doc["sizes"] = [asdict(r) for r in results]
        print(json.dumps(doc, indent=2))
    else:
        print(table(results, args.runs, rss))
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
