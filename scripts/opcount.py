"""Python opcodes one server process runs per request: a deterministic measure of work.

On this project's VM timing A/B runs of the same code swing by ±15%, while a 4 KiB PUT
is bound by the interpreter (perf: ~70% of a server process's CPU samples in libpython).
This counts the opcodes the server executes (a `sys.settrace` opcode tracer; C code such
as SQLite, AES or the kernel is not counted), stable to ~0.2% from run to run, so a
change that removes Python work shows even when timing cannot. The tracer makes the
server ~20x slower: a count, not a speed.

    python scripts/opcount.py [--count 2000] [--warmup 500] [--top 25] [-- LOADTEST ARGS]

Starts `s3sim serve --workers 1 --no-fsync` with the tracer installed, runs `s3sim
loadtest` (default: 4 KiB PUTs with SSE-KMS and a bucket key, 4 clients) for the
warm-up untraced, then for `--count` requests traced; prints opcodes per request and
the functions that ran most of them.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DEFAULT_LOAD = ["put", "--size", "4KiB", "--sse", "aws:kms+bucket-key", "-c", "4"]


def serve(port: int, data_dir: str, out: str) -> None:
    """The traced server: SIGUSR2 starts counting, SIGUSR1 writes the counts and exits."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def local(frame, event, arg):  # noqa: ANN001, ANN202 - the settrace protocol
        if event == "opcode":
            code = frame.f_code
            counts[(code.co_filename, code.co_qualname)] += 1
        return local

    def new_frame(frame, event, arg):  # noqa: ANN001, ANN202
        frame.f_trace_opcodes = True
        return local

    def start(*_: object) -> None:
        counts.clear()
        sys.settrace(new_frame)
        frame = sys._getframe()  # the frames running now resume into the count too
        while frame is not None:
            frame.f_trace, frame.f_trace_opcodes = local, True
            frame = frame.f_back

    def stop(*_: object) -> None:
        sys.settrace(None)
        with open(out, "w") as f:
            for (filename, name), n in counts.items():
                f.write(f"{n}\t{filename}\t{name}\n")
        os._exit(0)

    signal.signal(signal.SIGUSR2, start)
    signal.signal(signal.SIGUSR1, stop)
    sys.argv = ["s3sim", "serve", "--port", str(port), "--data-dir", data_dir, "--no-fsync"]
    from s3sim.cli import main

    main()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("the server exited before it was ready")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_s3sim/health", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def load(port: int, count: int, args: list[str]) -> None:
    cmd = [sys.executable, "-m", "s3sim", "loadtest", "--endpoint", f"http://127.0.0.1:{port}"]
    cmd += ["--no-progress", "--json", "--keys", "1000", "-n", str(count), *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def report(path: Path, count: int, top: int) -> None:
    by_function: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        n, filename, name = line.split("\t")
        total += int(n)
        by_function[f"{Path(filename).name}:{name}"] += int(n)
    print(f"opcodes per request: {total / count:,.0f} ({count} requests)")
    for name, n in by_function.most_common(top):
        print(f"{n / count:8.0f}  {name}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--serve", nargs=3, metavar=("PORT", "DIR", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("load", nargs="*", help="s3sim loadtest arguments (after --)")
    args = p.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return 0
    with tempfile.TemporaryDirectory(prefix="opcount-") as tmp:
        port, out = free_port(), Path(tmp) / "counts.tsv"
        cmd = [sys.executable, __file__, "--serve", str(port), f"{tmp}/data", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, proc)
            load(port, args.warmup, args.load or DEFAULT_LOAD)
            proc.send_signal(signal.SIGUSR2)
            time.sleep(0.5)
            load(port, args.count, args.load or DEFAULT_LOAD)
            proc.send_signal(signal.SIGUSR1)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        report(out, args.count, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
