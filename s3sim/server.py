"""Wiring: build the components from a ServerConfig, build the aiohttp app, run it.

`build_components(config)` -> Components; `build_app(components)` -> web.Application;
`serve(config, on_ready)` runs until SIGTERM/SIGINT (or `stop` is set) and shuts down
gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from aiohttp import web

from kmscore.clock import SimClock
from kmscore.frozen import frozen
from kmscore.shared import SharedCell
from s3sim import workers
from s3sim.config import ServerConfig
from s3sim.http import tls
from s3sim.http.admin import AdminState
from s3sim.http.app import AdminRoute, ServiceHandler, make_app
from s3sim.http.auth import Authenticator
from s3sim.identities import Identities, load_identities

log = logging.getLogger("s3sim.server")
VERSION = "0.1.0"
ADAPTERS = {
    "kms": "s3sim.http.kms_api",
    "cloudtrail": "s3sim.http.cloudtrail_api",
    "s3": "s3sim.http.s3_api",
    "connect": "s3sim.http.connect_api",
}


@frozen
class Components:
    config: ServerConfig
    clock: SimClock
    identities: Identities
    kms: Any
    s3: Any
    connect: Any


def _spares(config: ServerConfig) -> Any:
    """Deleted staged blobs are reused by the next blobs written, but not with fsync
    (s3sim/storage/spares.py says why)."""
    if config.fsync:
        return None
    from s3sim.s3.engine import spare_files

    return spare_files(config.data_dir / "spare", clear=not config.worker)


def _build_s3(config: ServerConfig, clock: SimClock, kms: Any, rng: Any, spares: Any) -> Any:
    from s3sim.s3.service import S3Service

    return S3Service(
        config.data_dir,
        config.region,
        clock,
        kms,
        rng=rng,
        fsync=config.fsync,
        allow_ssec_over_http=config.allow_ssec_over_http,
        sweep=not config.worker,
        shared=config.shared,
        spares=spares,
    )


def _build_connect(
    config: ServerConfig, clock: SimClock, kms: Any, s3: Any, rng: Any, spares: Any
) -> Any:
    from s3sim.connect.service import ConnectService

    settings = config.connect
    return ConnectService(
        config.data_dir,
        config.region,
        clock,
        kms,
        s3,
        rng=rng,
        delivery_delay=settings.delivery_delay,
        retention_seconds=settings.retention_seconds,
        max_parallel=settings.max_parallel,
        retry_base=settings.retry_base,
        fsync=config.fsync,
        sweep=not config.worker,
        shared=config.shared,
        spares=spares,
    )


def _clock(config: ServerConfig) -> SimClock:
    """One simulated clock; with several processes its offset is a shared cell, which the
    main process zeroes (simulated time starts afresh with each server run)."""
    if not config.shared:
        return SimClock()
    cell = SharedCell(config.data_dir / "shared" / "clock.offset")
    if not config.worker:
        cell.set_float(0.0)
    return SimClock(cell=cell)


def build_components(
    config: ServerConfig, clock: SimClock | None = None, rng: Callable[[int], bytes] = os.urandom
) -> Components:
    from kmscore import KMS

    config.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or _clock(config)
    identities = load_identities(config.data_dir)
    kms = KMS(
        config.data_dir, config.region, clock, rng=rng, fsync=config.fsync, shared=config.shared
    )
    spares = _spares(config)
    s3 = _build_s3(config, clock, kms, rng, spares)
    connect = _build_connect(config, clock, kms, s3, rng, spares)
    return Components(config, clock, identities, kms, s3, connect)


def close_components(c: Components) -> None:
    for part in (c.connect, c.s3, c.kms):
        close = getattr(part, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def adapters() -> dict[str, Any]:
    """The adapter module of each service."""
    return {service: importlib.import_module(m) for service, m in ADAPTERS.items()}


def build_app(components: Components, rng: Callable[[int], bytes] = os.urandom) -> web.Application:
    mods = adapters()
    handlers: dict[str, ServiceHandler] = {s: m.handler(components) for s, m in mods.items()}
    extra: list[AdminRoute] = []
    for mod in mods.values():
        if hasattr(mod, "admin_routes"):  # extra /_s3sim/ routes, e.g. Connect's pipeline
            extra.extend(mod.admin_routes(components))
    config = components.config
    authenticator = Authenticator(
        components.identities,
        components.clock,
        rng,
        max_skew=timedelta(seconds=config.max_skew_seconds),
        region=config.region,
    )
    state = AdminState(
        components.clock,
        components.config.region,
        VERSION,
        lambda: sorted(handlers),
        on_clock_advance=components.kms.purge_expired,
    )
    app = make_app(authenticator, handlers, state, extra)
    connect = components.connect

    async def start_connect(_: web.Application) -> None:
        # every process delivers (claims are leased: s3sim/connect/delivery.py); only the
        # main one maintains (retention, data-key destruction, grant retirement)
        await connect.start(maintain=not config.worker)

    async def stop_connect(_: web.Application) -> None:
        await connect.stop()

    app.on_startup.append(start_connect)
    app.on_shutdown.append(stop_connect)
    return app


async def serve(
    config: ServerConfig,
    on_ready: Callable[[ServerConfig, tls.TlsFiles | None], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Run the server until SIGTERM/SIGINT (or `stop`), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    sock = None if config.worker else workers.listen_socket(config.host, config.port)
    if sock is not None:
        config = replace(config, port=sock.getsockname()[1])
    components = build_components(config)
    files = tls.ensure_certificates(config.tls_dir) if config.tls else None
    ssl_ctx = tls.server_context(files) if files else None
    runner = web.AppRunner(build_app(components), access_log=None, handle_signals=False)
    others = workers.Workers(config)
    dispatcher: workers.Dispatcher | None = None
    try:
        await runner.setup()
        if not config.shared:
            await web.SockSite(runner, sock, ssl_context=ssl_ctx).start()
        else:  # several processes (s3sim/workers.py)
            serve_here = workers.connection_server(runner, ssl_ctx)
            if config.worker:
                workers.receive_connections(config.worker_fd, serve_here, stop.set)
            else:
                await others.start()
                dispatcher = workers.Dispatcher(sock, serve_here, others.channels)
                dispatcher.start()
        on_ready(config, files)
        await stop.wait()
        log.info("shutting down")
    finally:
        if dispatcher is not None:
            await dispatcher.stop()
        await others.stop()
        await runner.cleanup()
        if sock is not None:
            sock.close()
        close_components(components)
