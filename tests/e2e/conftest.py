"""The real server as a subprocess, for end-to-end tests driven by boto3.

Fixtures:
- `server` (per test) and `module_server` (per module): a running
  `python -m s3sim serve --port <free> --data-dir <tmp>/data --no-fsync`.
- `server_factory(args=("--no-fsync",), start=True)`: more servers in a test (e.g.
  ["--tls"]); start=False returns an unstarted handle (write into .data_dir, then .start()).

The handle: .endpoint, .port, .data_dir, .log_path, .log (server output so far),
.boto(service, identity="admin"|"alice"|"other", **client_kwargs), .restart(),
.kill9() (SIGKILL, then start again on the same port and data dir), .stop(),
.advance_clock(seconds) -> dict, .clock() -> dict, .health() -> dict.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
IDENTITIES = {
    "admin": ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    "alice": ("AKIAALICE00EXAMPLE01", "alice/Secret/Key/EXAMPLE/0000000000000001"),
    "other": ("AKIAOTHER00EXAMPLE01", "other/Secret/Key/EXAMPLE/000000000000001"),
}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerHandle:
    """One s3sim server process on a fixed port and data dir (restartable)."""

    identities = IDENTITIES  # name -> (access key, secret key)

    def __init__(self, root: Path, args: Sequence[str] = ("--no-fsync",)) -> None:
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = free_port()
        self.args = list(args)
        self.tls = "--tls" in self.args
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_once = False
        self._session = boto3.session.Session()  # shared: clients load models once

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "s3sim",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]

    def start(self) -> None:
        """Start and wait until ready. A port taken meanwhile by another process (tests run
        in parallel on this machine) makes a first start move to another free port."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        for attempt in range(5):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
                )
            if self._wait_ready(offset):
                self.started_once = True
                return
            if not self.started_once:
                self.port = free_port()
            time.sleep(0.2 * attempt)
        raise RuntimeError(f"s3sim could not bind a port:\n{self.log[-4000:]}")

    def _wait_ready(self, offset: int) -> bool:
        """True when this process printed its ready line and answers /_s3sim/health;
        False when it could not bind its port; raises on any other failure."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            out = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if self.proc.poll() is not None:
                if "address already in use" in out:
                    return False
                raise RuntimeError(f"s3sim exited with {self.proc.returncode}:\n{out[-4000:]}")
            if "s3sim ready:" in out:
                with contextlib.suppress(OSError):
                    if self.health().get("status") == "ok":
                        return True
            time.sleep(0.03)
        raise RuntimeError(f"s3sim did not become ready:\n{self.log[-4000:]}")

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.endpoint}{path}", data=data, method="POST" if data is not None else "GET"
        )
        ctx = None
        if self.tls:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            return json.loads(resp.read())

    def health(self) -> dict[str, Any]:
        return self._admin("/_s3sim/health")

    def clock(self) -> dict[str, Any]:
        return self._admin("/_s3sim/clock")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._admin("/_s3sim/clock/advance", {"seconds": seconds})

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; the exit code."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill9(self) -> None:
        """SIGKILL (no shutdown at all), then start again on the same port and data dir."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.start()

    def boto(self, service: str, identity: str = "admin", **kw: Any) -> Any:
        key, secret = IDENTITIES[identity]
        config = Config(
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=60,
        )
        if "config" in kw:
            config = config.merge(kw.pop("config"))
        params: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "config": config,
        }
        if self.tls:
            params["verify"] = str(self.ca_cert)
        params.update(kw)
        return self._session.client(service, **params)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerHandle] = []

    def start(args: Sequence[str] = ("--no-fsync",), start: bool = True) -> ServerHandle:
        """A new server in its own dir; start=False to prepare its data dir first."""
        root = tmp_path / f"srv{len(started)}"
        root.mkdir()
        handle = ServerHandle(root, args)
        handle.data_dir.mkdir()
        started.append(handle)
        if start:
            handle.start()
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def server(server_factory: Any) -> ServerHandle:
    return server_factory()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = ServerHandle(tmp_path_factory.mktemp("s3sim"))
    handle.start()
    yield handle
    handle.stop()
