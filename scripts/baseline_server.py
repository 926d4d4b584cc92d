#!/usr/bin/env python3
"""The benchmark baseline: a bare aiohttp object server on the same HTTP stack and disk as
s3sim, without S3 semantics, auth or crypto.

PUT /<bucket>/<key> streams the body to a temp file and renames it over the key's file;
GET streams the file back (HEAD answers its size); PUT/HEAD /<bucket> create/check the
bucket directory. Large writes and reads go through a worker thread in 1 MiB blocks, so
the event loop is never blocked by disk I/O on big buffers (as s3sim must do).

    python scripts/baseline_server.py --port 9100 --data-dir /tmp/base [--fsync]
    python scripts/baseline_server.py --port 9101 --trivial   # answers at once, no disk
    python scripts/baseline_server.py --port 9100 --data-dir /tmp/base --workers 2

--workers N runs N processes on the port, dealt connections in turn by the first one, as
`s3sim serve --workers N` does (it uses s3sim.workers for that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from s3sim.workers import (  # noqa: E402
    Dispatcher,
    connection_server,
    listen_socket,
    receive_connections,
)

BLOCK = 1 << 20
NO_SUCH_KEY = (
    b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
)
NO_SUCH_BUCKET = (
    b"<Error><Code>NoSuchBucket</Code><Message>The bucket does not exist.</Message></Error>"
)


class Store:
    def __init__(self, root: Path, fsync: bool) -> None:
        self.root = root
        self.fsync = fsync

    def bucket(self, name: str) -> Path:
        return self.root / quote(name, safe="")

    def object(self, bucket: str, key: str) -> Path:
        return self.bucket(bucket) / quote(key, safe="")


def _write_file(f, data: bytes | bytearray) -> None:
    f.write(data)


async def put_object(store: Store, request: web.Request, path: Path) -> web.Response:
    tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    buf = bytearray()
    with open(tmp, "wb") as f:
        async for chunk in request.content.iter_chunked(BLOCK):
            buf += chunk
            if len(buf) >= BLOCK:
                await asyncio.to_thread(_write_file, f, bytes(buf))
                buf.clear()
        f.write(buf)
        if store.fsync:
            await asyncio.to_thread(os.fsync, f.fileno())
    os.replace(tmp, path)
    return web.Response(headers={"ETag": '"baseline"'})


async def get_object(request: web.Request, path: Path) -> web.StreamResponse:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return web.Response(status=404, body=NO_SUCH_KEY, content_type="application/xml")
    with f:
        size = os.fstat(f.fileno()).st_size
        resp = web.StreamResponse(headers={"ETag": '"baseline"'})
        resp.content_length = size
        resp.content_type = "application/octet-stream"
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        while True:
            block = f.read(BLOCK) if size <= BLOCK else await asyncio.to_thread(f.read, BLOCK)
            if not block:
                break
            await resp.write(block)
        await resp.write_eof()
        return resp


def make_trivial_app() -> web.Application:
    """A server that answers at once (PUT: body drained; GET: 4 KiB from memory), to
    measure the load generator itself."""
    body = bytes(4096)

    async def handle(request: web.Request) -> web.Response:
        async for _ in request.content.iter_any():
            pass
        if request.method == "GET":
            return web.Response(body=body)
        return web.Response(headers={"ETag": '"trivial"'})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def make_app(store: Store) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        bucket, _, key = request.path.lstrip("/").partition("/")
        if not bucket:
            return web.Response(body=b"<ListAllMyBucketsResult/>", content_type="application/xml")
        if not key:
            bdir = store.bucket(bucket)
            if request.method == "PUT":
                bdir.mkdir(exist_ok=True)
                return web.Response()
            if bdir.is_dir():
                return web.Response()
            return web.Response(status=404, body=NO_SUCH_BUCKET, content_type="application/xml")
        path = store.object(bucket, key)
        if request.method == "PUT":
            try:
                return await put_object(store, request, path)
            except FileNotFoundError:  # no bucket directory
                return web.Response(status=404, body=NO_SUCH_BUCKET, content_type="application/xml")
        if request.method in ("GET", "HEAD"):
            return await get_object(request, path)
        if request.method == "DELETE":
            path.unlink(missing_ok=True)
            return web.Response(status=204)
        return web.Response(status=405)

    app = web.Application(client_max_size=1 << 40)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--trivial", action="store_true", help="answer at once, store nothing")
    p.add_argument("--fsync", action="store_true", help="fsync each object before the rename")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    args = p.parse_args()
    if args.trivial:
        app = make_trivial_app()
    elif args.data_dir is None:
        p.error("--data-dir is required (or --trivial)")
    else:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        app = make_app(Store(args.data_dir, args.fsync))
    if args.workers <= 1:
        web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)
        return
    sock = listen_socket(args.host, args.port)
    channels, children = [], []
    for _ in range(args.workers - 1):  # fork before any event loop exists
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            sock.close()
            mine.close()
            asyncio.run(_serve(app, None, [], theirs.detach()))
            os._exit(0)
        theirs.close()
        mine.setblocking(False)
        channels.append(mine)
        children.append(pid)
    try:
        asyncio.run(_serve(app, sock, channels, -1))
    finally:
        for ch in channels:
            ch.close()  # the workers see EOF and stop
        for pid in children:
            os.waitpid(pid, 0)


async def _serve(app: web.Application, sock, channels: list, fd: int) -> None:
    """One process of a --workers pool, as `s3sim serve --workers N` runs them: the main
    process deals connections out in turn (s3sim.workers.Dispatcher), workers serve what
    they are handed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    serve_here = connection_server(runner)
    dispatcher = None
    if sock is None:
        receive_connections(fd, serve_here, stop.set)
    else:
        dispatcher = Dispatcher(sock, serve_here, channels)
        dispatcher.start()
    await stop.wait()
    if dispatcher is not None:
        await dispatcher.stop()
    await runner.cleanup()


if __name__ == "__main__":
    main()
