"""`s3sim loadtest` (wired by s3sim.cli through `add_parser` and `run`) and
`python -m s3sim.loadtest` (same arguments)."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys

from s3sim.loadtest.client import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    SSE_MODES,
    Credentials,
)
from s3sim.loadtest.report import format_table, to_json
from s3sim.loadtest.runner import RunConfig, make_workload, run_load
from s3sim.loadtest.sizes import SizeDist, parse_size
from s3sim.loadtest.workloads import WORKLOADS, SetupError, WorkloadConfig

DESCRIPTION = "Drive an S3/KMS endpoint (s3sim, moto, MinIO, AWS) with a bounded load."


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--endpoint", default="http://127.0.0.1:4566")
    p.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    p.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument("--bucket", default="s3sim-loadtest", help="created if missing")
    p.add_argument("--size", default="4KiB", help="object size, e.g. 4KiB, 64MiB")
    p.add_argument("--size-dist", help='weighted sizes, e.g. "4KiB:80,1MiB:20"')
    p.add_argument("--concurrency", "-c", type=int, default=16)
    p.add_argument("--duration", "-d", type=float, help="seconds (default 10 if no --count)")
    p.add_argument("--count", "-n", type=int, help="stop after this many ops")
    p.add_argument("--keys", type=int, default=100, help="key space (get/mixed pre-write it)")
    p.add_argument("--prefix", default="loadtest/")
    p.add_argument("--read-ratio", type=float, default=0.5, help="mixed: share of GETs")
    p.add_argument("--part-size", default="8MiB", help="multipart: part size")
    p.add_argument("--sse", choices=SSE_MODES, default="none")
    p.add_argument("--kms-key-id", help="SSE-KMS / kms / ingest key (default: created)")
    p.add_argument("--instance-id", help="ingest: Connect instance (default: created)")
    p.add_argument("--poll-interval", type=float, default=0.02, help="ingest: seconds")
    p.add_argument("--ingest-timeout", type=float, default=30.0, help="ingest: seconds")
    p.add_argument(
        "--signed-payload", action="store_true", help="SHA-256 bodies instead of UNSIGNED-PAYLOAD"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    p.add_argument("--ca-bundle", help="CA file for https endpoints")
    p.add_argument("--insecure", action="store_true", help="https without verification")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("loadtest", help=DESCRIPTION, description=DESCRIPTION)
    return configure(p)


def workload_config(args: argparse.Namespace) -> WorkloadConfig:
    sizes = (
        SizeDist.parse(args.size_dist) if args.size_dist else SizeDist.single(parse_size(args.size))
    )
    if not 0.0 <= args.read_ratio <= 1.0:
        raise ValueError("--read-ratio must be between 0 and 1")
    if args.keys < 1 or args.concurrency < 1:
        raise ValueError("--keys and --concurrency must be at least 1")
    part_size = parse_size(args.part_size)
    if part_size < 1:
        raise ValueError("--part-size must be positive")
    return WorkloadConfig(
        name=args.workload,
        bucket=args.bucket,
        sizes=sizes,
        keys=args.keys,
        prefix=args.prefix,
        sse=args.sse,
        kms_key_id=args.kms_key_id,
        read_ratio=args.read_ratio,
        part_size=part_size,
        instance_id=args.instance_id,
        poll_interval_s=args.poll_interval,
        ingest_timeout_s=args.ingest_timeout,
    )


def run_config(args: argparse.Namespace) -> RunConfig:
    if (
        args.duration is not None
        and args.duration <= 0
        or args.count is not None
        and args.count < 1
    ):
        raise ValueError("--duration and --count must be positive")
    ctx = None
    if args.endpoint.startswith("https"):
        ctx = ssl.create_default_context(cafile=args.ca_bundle)
        if args.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    return RunConfig(
        endpoint=args.endpoint,
        creds=Credentials(args.access_key, args.secret_key, args.region),
        concurrency=args.concurrency,
        duration_s=args.duration,
        count=args.count,
        timeout_s=args.timeout,
        signed_payload=args.signed_payload,
        seed=args.seed,
        ssl_context=ctx,
    )


def meta(args: argparse.Namespace, wl: WorkloadConfig, rc: RunConfig) -> dict[str, object]:
    duration, count = rc.limits()
    return {
        "workload": wl.name,
        "endpoint": rc.endpoint,
        "size": wl.sizes.describe(),
        "concurrency": rc.concurrency,
        "duration_s": duration,
        "count": count,
        "keys": wl.keys,
        "sse": wl.sse,
    }


def run(args: argparse.Namespace) -> int:
    try:
        wl = workload_config(args)
        rc = run_config(args)
    except ValueError as exc:
        print(f"s3sim loadtest: {exc}", file=sys.stderr)
        return 2
    progress = None if (args.no_progress or args.json) else sys.stderr
    try:
        summary = asyncio.run(run_load(make_workload(wl), rc, progress))
    except SetupError as exc:
        print(f"s3sim loadtest: setup failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    info = meta(args, wl, rc)
    if args.json:
        print(json.dumps(to_json(summary, info), indent=2))
    else:
        print(format_table(summary, info))
    return 3 if summary.errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = configure(argparse.ArgumentParser(prog="s3sim loadtest", description=DESCRIPTION))
    return run(parser.parse_args(argv))
