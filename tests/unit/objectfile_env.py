"""Shared pieces of the object-file tests (test_objectfile*.py)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from s3sim.storage import objectfile as of
from s3sim.storage.blobstore import BlobStore

KEY = bytes(range(32))
HDR = of.ObjectHeader("object", "obj-1", "arn:aws:kms:r:1:key/k", b"wrapped", {"a": "b"})
CS = 4096
VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "format-v1.json").read_text())


def seeded_rng(seed: int = 1):
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


def make_store(tmp_path: Path) -> BlobStore:
    """The `store` fixture of the object-file tests: a seeded, no-fsync BlobStore."""
    return BlobStore(tmp_path / "blobs", fsync=False, rng=seeded_rng())


async def pieces(data: bytes, size: int = 10_000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def write(store, data: bytes, header=HDR, cs: int = CS, piece: int = 10_000, **kw):
    return await of.write_object(store, pieces(data, piece), KEY, header, chunk_size=cs, **kw)


async def read_all(store, blob_id, header=HDR, key=KEY, start=0, end=None) -> bytes:
    reader = await of.open_object(store, blob_id, key, header)
    return b"".join([c async for c in reader.iter_range(start, end)])


def files(store) -> list[str]:
    return sorted(p.name for p in store.root.rglob("*") if p.is_file())


def executor_jobs(monkeypatch) -> list[str]:
    """The names of the functions the event loop hands to its executor, in order."""
    names: list[str] = []
    real = asyncio.BaseEventLoop.run_in_executor

    def counting(self, executor, fn, *args):
        names.append(fn.__name__)
        return real(self, executor, fn, *args)

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", counting)
    return names
