"""Several server processes over one data dir (`s3sim serve --workers N`).

The first process (the main one) sweeps crash leftovers, listens on the port and starts
N-1 worker processes (`s3sim serve --worker --worker-fd FD ...`), each connected to it
by a Unix socket pair. The main process accepts every connection and hands them out in
turn: one to itself, then one to each worker (the descriptor travels with SCM_RIGHTS), so
even two connections use two processes (the kernel's SO_REUSEPORT hash would put both on
one process half of the time). Every process serves every API. What they share lives on
disk and is coherent across processes (docs/ARCHITECTURE.md "Several processes"): SQLite
indexes, the KMS state (flock + save counter), the audit trail (O_APPEND), the simulated
clock (a shared cell), cached bucket and object rows (change counters). Every process
runs Connect's delivery loop (a claim is a compare-and-set with a lease, so one item is
delivered by one process); Connect's maintenance runs in the main process only.

A worker exits when its socket pair reaches EOF (the main process exited, even by
kill -9) or on SIGTERM/SIGINT; the main process stops its workers when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from s3sim.config import ServerConfig

log = logging.getLogger("s3sim.workers")
WORKER_READY = "s3sim worker ready"
START_TIMEOUT = 60.0


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def worker_argv(config: ServerConfig, fd: int) -> list[str]:
    """The command line of one worker process of this (main) server; `fd` is its end of
    the socket pair."""
    c, cs = config, config.connect
    argv = [sys.executable, "-m", "s3sim", "serve", "--worker", "--worker-fd", str(fd)]
    argv += ["--data-dir", str(c.data_dir)]  # no host/port: a worker is handed connections
    argv += ["--region", c.region, "--workers", str(c.workers)]
    argv += ["--fsync" if c.fsync else "--no-fsync"]
    argv += ["--tls"] if c.tls else []
    argv += ["--allow-ssec-over-http"] if c.allow_ssec_over_http else []
    argv += ["--log-level", logging.getLevelName(logging.getLogger().level)]
    argv += ["--connect-delivery-delay", repr(cs.delivery_delay)]
    argv += ["--connect-retention", repr(cs.retention_seconds)]
    argv += ["--connect-retry-base", repr(cs.retry_base)]
    argv += ["--connect-max-parallel", str(cs.max_parallel)]
    return argv


class Workers:
    """The main process's handle on its worker processes and their socket pairs."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._procs: list[subprocess.Popen[bytes]] = []
        self.channels: list[socket.socket] = []  # the main process's ends, one per worker

    async def start(self) -> None:
        """Start workers 2..N and wait until each one serves (or fail)."""
        for _ in range(self._config.workers - 1):
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with theirs:
                self._procs.append(
                    subprocess.Popen(
                        worker_argv(self._config, theirs.fileno()),
                        stdout=subprocess.PIPE,
                        pass_fds=(theirs.fileno(),),
                    )
                )
            mine.setblocking(False)
            self.channels.append(mine)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(asyncio.to_thread(_await_ready, p) for p in self._procs)),
                START_TIMEOUT,
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        procs, self._procs = self._procs, []
        for channel in self.channels:
            channel.close()
        self.channels = []
        for p in procs:
            with contextlib.suppress(OSError):
                p.terminate()
        await asyncio.gather(*(asyncio.to_thread(_reap, p) for p in procs))


class Dispatcher:
    """The main process's accept loop: each new connection goes to the next process in
    turn (itself included); a worker that cannot take one leaves it to the main process."""

    def __init__(
        self,
        sock: socket.socket,
        serve_here: Callable[[socket.socket], None],
        channels: list[socket.socket],
    ) -> None:
        self._sock = sock
        self._serve_here = serve_here
        self._channels = channels
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="s3sim-accept")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        turn = 0
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as err:  # e.g. EMFILE: keep serving what is connected
                log.warning("accept failed: %s", err)
                await asyncio.sleep(0.05)
                continue
            turn = (turn + 1) % (len(self._channels) + 1)
            if turn and self._hand_over(conn, self._channels[turn - 1]):
                continue
            self._serve_here(conn)

    @staticmethod
    def _hand_over(conn: socket.socket, channel: socket.socket) -> bool:
        try:
            socket.send_fds(channel, [b"c"], [conn.fileno()])
        except OSError:  # the worker is gone or not keeping up
            return False
        conn.close()  # the worker holds its own descriptor now
        return True


def receive_connections(
    fd: int, serve_here: Callable[[socket.socket], None], on_gone: Callable[[], None]
) -> socket.socket:
    """In a worker: serve each connection the main process hands over on `fd`; call
    `on_gone` when the main process closed its end (it stopped, or died)."""
    channel = socket.socket(fileno=fd)
    channel.setblocking(False)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        while True:  # one message (one byte, one descriptor) per connection
            try:
                msg, fds, _, _ = socket.recv_fds(channel, 1, 1)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            for received in fds:
                serve_here(socket.socket(fileno=received))
            if not msg:
                loop.remove_reader(channel)
                on_gone()
                return

    loop.add_reader(channel, readable)
    return channel


def connection_server(runner: Any, ssl_ctx: Any = None) -> Callable[[socket.socket], None]:
    """serve_here(conn): serve one accepted connection with the aiohttp app of a set-up
    `web.AppRunner` (as its own site would), over TLS when `ssl_ctx` is given."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()

    async def attach(conn: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(runner.server, conn, ssl=ssl_ctx)
        except (OSError, ConnectionError) as err:  # e.g. a failed TLS handshake
            log.debug("connection dropped before serving: %s", err)
            conn.close()

    def serve_here(conn: socket.socket) -> None:
        task = loop.create_task(attach(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return serve_here


def _await_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode(errors="replace")
    if not line.startswith(WORKER_READY):
        raise OSError(f"worker process {proc.pid} did not start (exit {proc.poll()})")


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
