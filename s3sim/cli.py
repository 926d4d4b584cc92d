"""The `s3sim` command: `serve` (the server), `status` (Connect pipeline), `loadtest`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from pathlib import Path

from s3sim.config import ConnectSettings, ServerConfig
from s3sim.http.tls import TlsFiles
from s3sim.identities import IdentitiesError, load_identities


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the simulator (S3, KMS, Connect, CloudTrail)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4566)
    p.add_argument("--data-dir", type=Path, default=Path("./data"))
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--tls", action="store_true", help="HTTPS with a generated local CA")
    p.add_argument(
        "--allow-ssec-over-http",
        action="store_true",
        help="accept SSE-C (customer-provided keys) over plain HTTP (local tests only)",
    )
    p.add_argument(
        "--fsync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fsync every commit (survives an OS crash); --no-fsync survives only kill -9",
    )
    p.add_argument("--log-level", default="WARNING")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="server processes sharing the port and the data dir (default 1; see README)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-fd", type=int, default=-1, help=argparse.SUPPRESS)
    g = p.add_argument_group("Connect two-phase pipeline")
    g.add_argument(
        "--connect-delivery-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long after ingest before delivering (default 0)",
    )
    g.add_argument(
        "--connect-retention",
        type=float,
        default=86400.0,
        metavar="SECONDS",
        help="staged items never delivered expire after this (default 86400)",
    )
    g.add_argument(
        "--connect-retry-base",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="first retry delay of a failed delivery; doubles per attempt (default 1)",
    )
    g.add_argument(
        "--connect-max-parallel",
        type=int,
        default=8,
        metavar="N",
        help="deliveries in flight at once (default 8)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _status_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="print the Connect pipeline state of a data dir")
    p.add_argument("--data-dir", type=Path, default=Path("./data"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s3sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _status_parser(sub)
    try:
        from s3sim.loadtest.cli import add_parser

        add_parser(sub)
    except ImportError:
        pass
    return parser


def ready_message(config: ServerConfig, files: TlsFiles | None) -> str:
    lines = [f"s3sim ready: {config.endpoint}  (region {config.region}, data {config.data_dir})"]
    if files is not None:
        lines.append(f"TLS CA certificate: {files.ca_cert}  (boto3 verify=..., aws --ca-bundle)")
    if config.workers > 1:
        lines.append(f"{config.workers} server processes share the port and the data dir")
    lines.append("credentials (access key / secret key / principal):")
    for ident in load_identities(config.data_dir).values():
        lines.append(f"  {ident.access_key_id}  {ident.secret_access_key}  {ident.arn}")
    return "\n".join(lines)


def _print_ready(config: ServerConfig, files: TlsFiles | None) -> None:
    if config.worker:  # read by the main process (s3sim/workers.py)
        from s3sim.workers import WORKER_READY

        print(f"{WORKER_READY} pid={os.getpid()}", flush=True)
        return
    print(ready_message(config, files), flush=True)


def serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from s3sim import malloc
    from s3sim.server import serve as run

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    malloc.tune()  # keep freed body buffers instead of faulting them in again (glibc)
    # The adapters share request["auth"], request["body"] etc. by string key (the contract).
    warnings.filterwarnings("ignore", category=web.NotAppKeyWarning)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir.resolve(),
        region=args.region,
        tls=args.tls,
        allow_ssec_over_http=args.allow_ssec_over_http,
        fsync=args.fsync,
        connect=ConnectSettings(
            delivery_delay=args.connect_delivery_delay,
            retention_seconds=args.connect_retention,
            retry_base=args.connect_retry_base,
            max_parallel=args.connect_max_parallel,
        ),
        workers=args.workers,
        worker=args.worker,
        worker_fd=args.worker_fd,
    )
    try:
        load_identities(config.data_dir)
        asyncio.run(run(config, _print_ready))
    except IdentitiesError as e:
        print(f"s3sim: {e}", file=sys.stderr, flush=True)
        return 2
    except OSError as e:
        print(f"s3sim: cannot start: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    if not config.worker:
        print("s3sim stopped", flush=True)
    return 0


def status(args: argparse.Namespace) -> int:
    from s3sim.connect.report import status_lines

    print("\n".join(status_lines(args.data_dir)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "status":
        return status(args)
    from s3sim.loadtest.cli import run as run_loadtest

    return run_loadtest(args)


if __name__ == "__main__":
    sys.exit(main())
