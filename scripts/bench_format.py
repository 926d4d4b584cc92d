"""Throughput of the object file format and the storage engine (docs/FORMAT.md section 8).

    python scripts/bench_format.py [--size-mib 64] [--repeat 3] [--dir /tmp]

Prints, as medians: raw AES-256-GCM per chunk size; write_object and a full read
(open_object + iter_range) in MB/s, with and without fsync, with and without
checksums; a baseline plain file write/read of the same bytes for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from kmscore import envelope as env  # noqa: E402
from s3sim.storage import objectfile as of  # noqa: E402
from s3sim.storage.blobstore import BlobStore  # noqa: E402

KEY = os.urandom(32)
HDR = of.ObjectHeader("object", "bench", "AES256", b"wk", {"aws:s3:arn": "arn:aws:s3:::b/k"})
PIECE = 64 << 10


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def aes_rates(repeat: int) -> list[tuple[str, float]]:
    out = []
    aead = AESGCM(KEY)
    for cs in (4 << 10, 64 << 10, 256 << 10, 1 << 20):
        data = os.urandom(cs)
        n = (32 << 20) // cs

        def seal(d: bytes = data, n: int = n) -> None:
            for _ in range(n):
                aead.encrypt(bytes(12), d, None)

        t = median_time(seal, repeat)
        out.append((f"AES-256-GCM seal, {cs >> 10} KiB calls", mbps(32 << 20, t)))
    return out


async def stream(data: bytes):
    for i in range(0, len(data), PIECE):
        yield data[i : i + PIECE]


async def engine_rates(root: Path, data: bytes, repeat: int) -> list[tuple[str, float]]:
    out = []
    for fsync in (False, True):
        for algs in ((), ("CRC32",), ("CRC32", "SHA256")):
            store = BlobStore(root / f"s{fsync}{len(algs)}", fsync=fsync)
            times, ids = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                w = await of.write_object(store, stream(data), KEY, HDR, algs)
                times.append(time.perf_counter() - t0)
                ids.append(w.blob_id)
            label = f"write_object, MD5{''.join('+' + a for a in algs)}, fsync={fsync}"
            out.append((label, mbps(len(data), statistics.median(times))))
            for b in ids[1:]:
                store.delete(b)
        if not fsync:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                reader = await of.open_object(store, ids[0], KEY, HDR)
                async for _ in reader.iter_range():
                    pass
                times.append(time.perf_counter() - t0)
            out.append(
                ("open_object + full read (page cache)", mbps(len(data), statistics.median(times)))
            )
    return out


def baseline_rates(root: Path, data: bytes, repeat: int) -> list[tuple[str, float]]:
    path = root / "plain"

    def write() -> None:
        with open(path, "wb") as f:
            for i in range(0, len(data), PIECE):
                f.write(data[i : i + PIECE])

    def read() -> None:
        with open(path, "rb", buffering=0) as f:
            while f.read(1 << 20):
                pass

    return [
        ("baseline plain file write (no fsync)", mbps(len(data), median_time(write, repeat))),
        ("baseline plain file read (page cache)", mbps(len(data), median_time(read, repeat))),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    data = os.urandom(args.size_mib << 20)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        rows = aes_rates(args.repeat)
        rows += baseline_rates(Path(d), data, args.repeat)
        rows += asyncio.run(engine_rates(Path(d), data, args.repeat))
    cs = env.DEFAULT_CHUNK_SIZE >> 10
    print(f"| what ({args.size_mib} MiB, median of {args.repeat}, chunk {cs} KiB) | MB/s |")
    print("|---|---|")
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
