"""Several server processes on one port over one data dir (`s3sim serve --workers N`).

The first process (the main one) sweeps crash leftovers, binds the port with
SO_REUSEPORT and starts N-1 worker processes (`s3sim serve --worker ...`) that bind the
same port; the kernel spreads connections over all of them. Every process serves every
API. What they share lives on disk and is coherent across processes (docs/ARCHITECTURE.md
"Several processes"): SQLite indexes, the KMS state (flock + save counter), the audit
trail (O_APPEND), the simulated clock (a shared cell). Only the main process runs
Connect's delivery loop; it picks up items staged by workers on its poll.

A worker exits when the main process closes its stdin (the main process exited, even by
kill -9) or on SIGTERM/SIGINT; the main process stops its workers when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

from s3sim.config import ServerConfig

log = logging.getLogger("s3sim.workers")
WORKER_READY = "s3sim worker ready"
START_TIMEOUT = 60.0


def listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A bound listening TCP socket (SO_REUSEPORT when several processes share the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def worker_argv(config: ServerConfig) -> list[str]:
    """The command line of one worker process of this (main) server."""
    c, cs = config, config.connect
    argv = [sys.executable, "-m", "s3sim", "serve", "--worker"]
    argv += ["--host", c.host, "--port", str(c.port), "--data-dir", str(c.data_dir)]
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
    """The main process's handle on its worker processes."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._procs: list[subprocess.Popen[bytes]] = []

    async def start(self) -> None:
        """Start workers 2..N and wait until each one serves (or fail)."""
        for _ in range(self._config.workers - 1):
            self._procs.append(
                subprocess.Popen(
                    worker_argv(self._config), stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            )
        try:
            await asyncio.wait_for(
                asyncio.gather(*(asyncio.to_thread(_await_ready, p) for p in self._procs)),
                START_TIMEOUT,
            )
        except BaseException:
            await self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def stop(self) -> None:
        procs, self._procs = self._procs, []
        for p in procs:
            with contextlib.suppress(OSError):
                p.terminate()
        await asyncio.gather(*(asyncio.to_thread(_reap, p) for p in procs))


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


def watch_parent(on_gone: Callable[[], None]) -> None:
    """In a worker: call `on_gone` (from a daemon thread) once stdin reaches EOF, i.e. when
    the main process closed it or died."""

    def wait() -> None:
        with contextlib.suppress(OSError, ValueError):
            while sys.stdin.buffer.read(4096):
                pass
        on_gone()

    threading.Thread(target=wait, name="s3sim-parent-watch", daemon=True).start()
