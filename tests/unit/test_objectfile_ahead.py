"""s3sim.storage.objectread: a reader opened for a span reads that span's first batch in
the job that verifies the file: for a read of up to READ_BATCH, one job, run on the event
loop when the page cache holds the file (s3sim/storage/readjobs.py), else one thread
hand-off."""

from __future__ import annotations

import errno
import os
import random

import pytest

from kmscore import envelope as env
from s3sim.storage import objectfile as of
from s3sim.storage import objectread, readjobs
from s3sim.storage.errors import CorruptObject
from tests.unit.objectfile_env import CS, HDR, KEY, executor_jobs, make_store, write

BATCH = objectread.READ_BATCH


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def evict(path) -> None:
    """Drop a file's pages from the page cache (written back first), or skip the test
    where this file system keeps them (tmpfs)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        try:
            os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
        except BlockingIOError:
            return
    finally:
        os.close(fd)
    pytest.skip("this file system keeps the file in memory")


@pytest.mark.parametrize("cached", [True, False])
async def test_a_read_of_one_batch_takes_one_job(store, monkeypatch, cached):
    data = os.urandom(BATCH)  # a 1 MiB recording: the delivery's read
    w = await write(store, data)
    if not cached:
        evict(store.path(w.blob_id))
    names = executor_jobs(monkeypatch)
    reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=(0, len(data)))
    store.delete(w.blob_id)  # read already: the open job decrypted every chunk
    assert b"".join([c async for c in reader.iter_range(0, len(data))]) == data
    assert names == ([] if cached else ["_open_ahead"])  # on the loop, or on a thread
    assert reader.chunks_opened == BATCH // CS


@pytest.mark.parametrize("cached", [True, False])
async def test_without_a_span_the_file_is_read_when_iterated(store, monkeypatch, cached):
    data = os.urandom(BATCH)
    w = await write(store, data)
    if not cached:
        evict(store.path(w.blob_id))
    names = executor_jobs(monkeypatch)
    reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data))
    assert reader.chunks_opened == 0
    assert b"".join([c async for c in reader.iter_range(0, len(data))]) == data
    # verifying reads the lead and the last chunk, which brings their pages in
    assert names == (["_open_fd"] if cached else ["_open_sync", "_open_fd", "_open_chunks"])


async def test_a_batch_partly_cached_is_read_on_a_thread(store, monkeypatch):
    data = os.urandom(3 * BATCH)
    w = await write(store, data)
    reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=(0, len(data)))
    evict(store.path(w.blob_id))  # the batches after the first one: on the disk only
    names = executor_jobs(monkeypatch)
    assert b"".join([c async for c in reader.iter_range(0, len(data))]) == data
    assert names == ["_open_chunks", "_open_chunks"]
    assert reader.chunks_opened == 3 * BATCH // CS


async def test_a_longer_read_goes_on_from_the_batch_read_ahead(store, monkeypatch):
    data = os.urandom(2 * BATCH + 3 * CS + 5)
    w = await write(store, data)
    r = random.Random(3)
    spans = [(0, len(data)), (7, BATCH + 9), (BATCH - 1, BATCH + 1), (len(data) - 1, len(data))]
    spans += [tuple(sorted(r.sample(range(len(data) + 1), 2))) for _ in range(10)]
    for start, end in spans:
        if start == end:
            continue
        reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=(start, end))
        assert b"".join([c async for c in reader.iter_range(start, end)]) == data[start:end]
        # another range than the one announced: read as usual, still right
        assert b"".join([c async for c in reader.iter_range(0, 10)]) == data[:10]


async def test_a_read_of_another_span_ignores_the_batch_read_ahead(store):
    data = os.urandom(BATCH + 2 * CS)
    w = await write(store, data)
    reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=(0, len(data)))
    assert b"".join([c async for c in reader.iter_range(CS, 3 * CS)]) == data[CS : 3 * CS]
    assert b"".join([c async for c in reader.iter_range(0, len(data))]) == data


@pytest.mark.parametrize("where", ["first", "middle", "last"])
async def test_tampering_fails_the_open_before_any_byte(store, where):
    data = os.urandom(3 * BATCH)
    w = await write(store, data)
    path = store.path(w.blob_id)
    raw = bytearray(path.read_bytes())
    lay = env.Layout(w.header_len, CS)
    pos = {"first": lay.chunk_offset(0) + 3, "middle": lay.chunk_offset(2 * BATCH // CS) + 3}
    raw[pos.get(where, len(raw) - 1)] ^= 1
    path.write_bytes(raw)
    span = (0, 10)  # the first batch holds neither the middle nor the last chunk
    if where == "middle":
        reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=span)
        with pytest.raises(CorruptObject):  # caught by the batch that reads it
            async for _ in reader.iter_range(0, len(data)):
                pass
        return
    with pytest.raises(CorruptObject):
        await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=span)


async def test_the_reader_keeps_its_verified_file_open_until_closed(store, monkeypatch):
    data = os.urandom(3 * BATCH)
    w = await write(store, data)
    before = len(os.listdir("/proc/self/fd"))
    reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=(0, len(data)))
    store.delete(w.blob_id, grace=False)  # unlinked: the reader reads the file it verified
    names = executor_jobs(monkeypatch)
    for _ in range(2):  # each read takes its own descriptor; the reader keeps its own
        assert b"".join([c async for c in reader.iter_range(0, len(data))]) == data
    assert "_open_fd" not in names  # no hand-off to open the file again
    assert len(os.listdir("/proc/self/fd")) == before + 1
    reader.close()
    reader.close()  # twice is harmless
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("refusal", ["EOPNOTSUPP", "EINVAL", "no RWF_NOWAIT"])
async def test_without_nowait_reads_every_read_runs_on_a_thread(store, monkeypatch, refusal):
    data = os.urandom(2 * BATCH + 5)
    w = await write(store, data)
    real = os.preadv

    def refusing(fd, buffers, offset, flags=0):
        if flags:  # a file system (or kernel) that cannot serve reads without waiting
            raise OSError(getattr(errno, refusal), refusal)
        return real(fd, buffers, offset)

    if refusal == "no RWF_NOWAIT":
        monkeypatch.setattr(readjobs, "_NOWAIT", 0)
    else:
        monkeypatch.setattr(os, "preadv", refusing)
    names = executor_jobs(monkeypatch)
    reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), span=(0, len(data)))
    assert b"".join([c async for c in reader.iter_range(0, len(data))]) == data
    assert names == ["_open_ahead", "_open_chunks", "_open_chunks"]
