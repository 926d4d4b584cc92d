"""Helpers shared by the benchmark scripts: start a server process on a free port, wait
until it answers HTTP, read its peak RSS, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status_kib(pid: int, field_name: str) -> int | None:
    """A `VmHWM`/`VmRSS` line of /proc/<pid>/status, in KiB (None if unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """pid and every descendant (a server with worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def tree_kib(pid: int, field_name: str) -> int | None:
    """A /proc status field summed over a process tree (None if unavailable)."""
    values = [proc_status_kib(p, field_name) for p in process_tree(pid)]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


@dataclass
class ServerProcess:
    name: str
    cmd: list[str]
    port: int
    ready_path: str = "/"
    log_path: Path | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until any HTTP answer comes back; raises RuntimeError otherwise."""
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}{self._tail()}")
            try:
                urllib.request.urlopen(self.endpoint + self.ready_path, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # it answers HTTP: ready
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout_s:.0f} s{self._tail()}")

    def _tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        return (": " + " | ".join(lines)) if lines else ""

    def peak_rss_mib(self) -> float | None:
        """Peak RSS, summed over the server's processes (each one's own peak)."""
        kib = tree_kib(self.proc.pid, "VmHWM") if self.proc else None
        return None if kib is None else kib / 1024

    def reset_peak(self) -> None:
        """Start VmHWM afresh at the current RSS in every process (Linux clear_refs 5)."""
        for pid in process_tree(self.proc.pid) if self.proc else []:
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def rss_mib(self) -> float | None:
        kib = tree_kib(self.proc.pid, "VmRSS") if self.proc else None
        return None if kib is None else kib / 1024

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]
