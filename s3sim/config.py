"""The server's configuration (what `s3sim serve` was started with)."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from kmscore.frozen import frozen


@frozen
class ConnectSettings:
    """The two-phase pipeline's knobs (seconds on the simulated clock)."""

    delivery_delay: float = 0.0
    retention_seconds: float = 24 * 3600.0
    retry_base: float = 1.0
    max_parallel: int = 8


@frozen
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    region: str = "us-east-1"
    tls: bool = False
    allow_ssec_over_http: bool = False
    fsync: bool = True
    max_skew_seconds: int = 15 * 60
    connect: ConnectSettings = field(default_factory=lambda: ConnectSettings())
    # server processes on the port (s3sim/workers.py); `worker` marks processes 2..N
    workers: int = 1
    worker: bool = False
    worker_fd: int = -1  # a worker's end of its socket pair with the main process

    @property
    def shared(self) -> bool:
        """Several processes share the data dir: keep cross-process state coherent."""
        return self.workers > 1

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoint(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"
