"""s3sim.storage.objectfile: where a write's jobs run, and what it copies. Without fsync
the seal jobs (sealing, writing) run on the event loop, none of them waiting for the disk;
with fsync on executor threads; a full batch's hashing on a thread beside its seal job
(the last batch is hashed in its seal job). A job seals and writes one step (SLICE) at a
time, and on the loop lets other tasks run between steps once it held the loop for
LOOP_TURN_S. A whole batch inside one piece
is sealed from the piece, not copied into a batch buffer."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from kmscore import envelope as env
from s3sim.storage import objectfile as of
from s3sim.storage.blobstore import BlobStore
from tests.unit.objectfile_env import (
    CS,
    HDR,
    KEY,
    executor_jobs,
    make_store,
    read_all,
    seeded_rng,
    write,
)

BATCH = of.BATCH_BYTES


@pytest.mark.parametrize("size", [5, BATCH, 3 * BATCH + 5])
async def test_without_fsync_and_md5_a_write_takes_no_thread(tmp_path, monkeypatch, size):
    store = make_store(tmp_path)
    data = os.urandom(size)
    names = executor_jobs(monkeypatch)
    w = await write(store, data, md5=False)
    assert names == []
    assert await read_all(store, w.blob_id) == data


async def test_without_fsync_only_the_hashing_runs_on_threads(tmp_path, monkeypatch):
    store = make_store(tmp_path)
    data = os.urandom(3 * BATCH + 5)
    names = executor_jobs(monkeypatch)
    w = await write(store, data)
    assert names == ["hash"] * 3  # the last, short batch is hashed with its seal
    assert w.md5_hex == hashlib.md5(data).hexdigest()
    assert await read_all(store, w.blob_id) == data


async def test_with_fsync_every_seal_job_runs_on_a_thread(tmp_path, monkeypatch):
    store = BlobStore(tmp_path / "blobs", fsync=True, rng=seeded_rng())
    data = os.urandom(2 * BATCH + 5)
    names = executor_jobs(monkeypatch)
    w = await write(store, data, md5=False)
    assert names == ["seal"] * 3
    assert await read_all(store, w.blob_id) == data


async def test_a_seal_that_fails_on_the_loop_leaves_nothing(tmp_path, monkeypatch):
    store = make_store(tmp_path)
    data = os.urandom(2 * BATCH + 5)

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(of.BlobWriter, "writev", full)
    with pytest.raises(OSError):
        await write(store, data, md5=False)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


class CountingPool(of.BufferPool):
    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def take(self, n: int) -> bytearray:
        self.taken += 1
        return super().take(n)


async def pieced(data: bytes, sizes: list[int]):
    pos = 0
    for n in sizes:
        yield data[pos : pos + n]
        pos += n


@pytest.mark.parametrize("fsync", [False, True])
@pytest.mark.parametrize(
    "sizes",
    [
        [BATCH],
        [BATCH, BATCH, 5],
        [3 * BATCH + 7],
        [5, BATCH, BATCH],
        [BATCH, 5, BATCH - 5, BATCH],
        [BATCH - 1, 1, BATCH],
    ],
)
async def test_whole_batches_in_a_piece_are_sealed_where_they_are(tmp_path, fsync, sizes):
    store = BlobStore(tmp_path / "blobs", fsync=fsync, rng=seeded_rng())
    data = os.urandom(sum(sizes))
    pool = CountingPool()
    w = await of.write_object(
        store, pieced(data, sizes), KEY, HDR, chunk_size=CS, buffers=pool, md5=True
    )
    assert w.md5_hex == hashlib.md5(data).hexdigest()
    assert await read_all(store, w.blob_id) == data
    if sizes == [BATCH]:
        assert pool.taken == 1  # the sealed output's buffer only: nothing was copied
    elif sizes == [3 * BATCH + 7]:
        assert pool.taken == 2  # and one batch buffer, for the 7 bytes after three batches
    else:
        assert pool.taken >= 2


@pytest.mark.parametrize("turn_s", [0.0, 3600.0])
async def test_a_write_on_the_loop_lets_other_tasks_run_between_its_steps(
    tmp_path, monkeypatch, turn_s
):
    """After each step that ends LOOP_TURN_S or more after the loop was last let go."""
    monkeypatch.setattr(of, "LOOP_TURN_S", turn_s)
    store = make_store(tmp_path)
    data = os.urandom(BATCH)  # one job of BATCH // SLICE steps
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def one_piece():
        yield data

    task = asyncio.get_running_loop().create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    w = await of.write_object(store, one_piece(), KEY, HDR, md5=False)
    task.cancel()
    if turn_s:
        assert ticks == before  # the whole job in one turn
    else:
        assert ticks - before >= BATCH // of.SLICE - 1
    assert await read_all(store, w.blob_id) == data


@pytest.mark.parametrize("fsync", [True, False])
async def test_each_write_call_carries_at_most_one_step(tmp_path, monkeypatch, fsync):
    """Sealed and written a step at a time: no write(2) of a whole 1 MiB batch."""
    store = make_store(tmp_path)
    sizes: list[int] = []
    real = of.BlobWriter.writev

    def spy(self, buffers):
        sizes.append(sum(len(b) for b in buffers))
        return real(self, buffers)

    monkeypatch.setattr(of.BlobWriter, "writev", spy)
    data = os.urandom(2 * BATCH + 5)
    w = await write(store, data, cs=env.DEFAULT_CHUNK_SIZE, piece=BATCH, fsync=fsync)
    sealed_step = of.SLICE + of.SLICE // env.DEFAULT_CHUNK_SIZE * env.TAG_LEN
    assert len(sizes) == 2 * BATCH // of.SLICE + 1
    assert max(sizes[1:]) == sealed_step and sizes[0] > sealed_step  # the first has the lead
    assert await read_all(store, w.blob_id) == data
