"""s3sim.storage.objectfile: streaming encrypted object files (writes, reads, ranges,
failures); the tamper cases are in test_objectfile_tamper.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import tracemalloc

import pytest

from kmscore import envelope as env
from s3sim.storage import objectfile as of
from s3sim.storage.blobstore import BlobStore
from s3sim.storage.checksums import checksum
from s3sim.storage.errors import CorruptObject, InvalidBlobId, MissingBlob
from tests.unit.objectfile_env import (
    CS,
    HDR,
    KEY,
    VECTORS,
    files,
    make_store,
    pieces,
    read_all,
    write,
)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


@pytest.mark.parametrize("cs", [CS, env.DEFAULT_CHUNK_SIZE])
@pytest.mark.parametrize("n", [0, 1, -1, 0.0, 1.0, 1.5, 3 * 2**20 + 7])
async def test_round_trip(store, cs, n):
    n = {-1: cs - 1, 0.0: cs, 1.0: cs + 1, 1.5: cs + cs // 2}.get(n, n)
    data = os.urandom(n)
    w = await write(store, data, cs=cs, checksum_algorithms=("CRC32", "SHA256"))
    assert (w.size, w.chunk_size) == (n, cs)
    assert w.md5_hex == hashlib.md5(data).hexdigest()
    assert w.checksums == {"CRC32": checksum("CRC32", data), "SHA256": checksum("SHA256", data)}
    assert store.path(w.blob_id).stat().st_size == w.file_size
    assert store.path(w.blob_id).stat().st_mode & 0o777 == 0o600
    assert env.Layout(w.header_len, cs).file_size(n) == w.file_size
    assert await read_all(store, w.blob_id) == data
    reader = await of.open_object(store, w.blob_id, KEY, HDR, n)
    assert reader.size == n


@pytest.mark.parametrize("fsync", [True, False])
async def test_huge_pieces_are_split_into_bounded_jobs(store, monkeypatch, fsync):
    """With fsync a job per batch (on a thread); without, each job runs on the loop one
    step (SLICE) at a time."""
    sizes: list[int] = []
    real = of._Sealer.seal

    def spy(self, data, final, fsync, hash_too):
        sizes.append(len(data))
        return real(self, data, final, fsync, hash_too)

    monkeypatch.setattr(of._Sealer, "seal", spy)
    data = os.urandom(5 * of.BATCH_BYTES + 3)

    async def one_piece():
        yield data

    w = await of.write_object(store, one_piece(), KEY, HDR, fsync=fsync)
    per_batch = [of.BATCH_BYTES] if fsync else [of.SLICE] * (of.BATCH_BYTES // of.SLICE)
    assert sizes == per_batch * 5 + [3]
    assert w.md5_hex == hashlib.md5(data).hexdigest()
    assert await read_all(store, w.blob_id) == data


@pytest.mark.parametrize("fsync", [True, False])
@pytest.mark.parametrize("batches", [1, 2])
@pytest.mark.parametrize("piece", [4096, 10_000, 1 << 20])
async def test_exact_batch_multiple_ends_in_one_final_job(
    store, monkeypatch, batches, piece, fsync
):
    calls: list[tuple[int, bool]] = []
    real = of._Sealer.seal

    def spy(self, data, final, fsync, hash_too):
        calls.append((len(data), final))
        return real(self, data, final, fsync, hash_too)

    monkeypatch.setattr(of._Sealer, "seal", spy)
    data = os.urandom(batches * of.BATCH_BYTES)
    w = await write(store, data, cs=env.DEFAULT_CHUNK_SIZE, piece=piece, fsync=fsync)
    job = of.BATCH_BYTES if fsync else of.SLICE  # without fsync, seal calls are loop steps
    n = batches * of.BATCH_BYTES // job
    assert calls == [(job, False)] * (n - 1) + [(job, True)]
    assert w.md5_hex == hashlib.md5(data).hexdigest()
    assert store.path(w.blob_id).stat().st_size == w.file_size
    assert env.Layout(w.header_len, w.chunk_size).file_size(len(data)) == w.file_size
    assert await read_all(store, w.blob_id) == data


async def test_no_plaintext_on_disk(store):
    data = b"SECRET-MARKER-" * 5000
    w = await write(store, data)
    raw = store.path(w.blob_id).read_bytes()
    assert b"SECRET-MARKER" not in raw and KEY not in raw


async def test_each_file_gets_a_fresh_salt(store):
    a = await write(store, b"same")
    b = await write(store, b"same")
    assert store.path(a.blob_id).read_bytes() != store.path(b.blob_id).read_bytes()


async def test_default_algorithms_and_lowercase_names(store):
    w = await of.write_object(store, pieces(b"abc"), KEY, HDR, ("crc32c",))
    assert w.checksums == {"CRC32C": checksum("CRC32C", b"abc")}
    w = await of.write_object(store, pieces(b"abc"), KEY, HDR)
    assert w.checksums == {} and w.chunk_size == env.DEFAULT_CHUNK_SIZE


async def test_ranges_match_slices(store):
    data = os.urandom(5 * CS + 123)
    w = await write(store, data)
    reader = await of.open_object(store, w.blob_id, KEY, HDR)
    r = random.Random(7)
    cases = [(0, len(data)), (0, 1), (CS - 1, CS + 1), (len(data) - 1, len(data)), (5, 5)]
    cases += [tuple(sorted(r.sample(range(len(data) + 1), 2))) for _ in range(30)]
    for start, end in cases:
        assert b"".join([c async for c in reader.iter_range(start, end)]) == data[start:end]
    with pytest.raises(ValueError):
        async for _ in reader.iter_range(0, len(data) + 1):
            pass


async def test_range_read_decrypts_only_the_chunks_it_needs(store, monkeypatch):
    data = os.urandom(256 * CS)
    w = await write(store, data)
    calls: list[int] = []
    real, real_into = env.PayloadCipher.open_chunk, env.PayloadCipher.open_chunk_into

    def counting(self, index, chunk, final):
        calls.append(index)
        return real(self, index, chunk, final)

    def counting_into(self, index, chunk, final, out):
        calls.append(index)
        return real_into(self, index, chunk, final, out)

    monkeypatch.setattr(env.PayloadCipher, "open_chunk", counting)
    monkeypatch.setattr(env.PayloadCipher, "open_chunk_into", counting_into)
    reader = await of.open_object(store, w.blob_id, KEY, HDR)
    assert calls == [256]  # only the (empty) final chunk, checked before any byte
    calls.clear()
    got = b"".join([c async for c in reader.iter_range(100 * CS + 5, 101 * CS + 6)])
    assert got == data[100 * CS + 5 : 101 * CS + 6]
    assert calls == [100, 101]
    assert reader.chunks_opened == 2


async def test_vectors_through_the_storage_reader(store):
    exp = VECTORS["expected_header"]
    header = of.ObjectHeader(
        exp["kind"],
        exp["object_id"],
        exp["key_arn"],
        bytes.fromhex(exp["wrapped_key"]),
        exp["context"],
    )
    for i, v in enumerate(VECTORS["vectors"]):
        blob_id = f"{i:032x}"
        store.path(blob_id).parent.mkdir(exist_ok=True)
        store.path(blob_id).write_bytes(bytes.fromhex(v["file"]))
        key = bytes.fromhex(v["data_key"])
        if v["outcome"] == "ok":
            got = await read_all(store, blob_id, header, key)
            assert hashlib.sha256(got).hexdigest() == v["plaintext_sha256"], v["name"]
        else:
            with pytest.raises(CorruptObject) as e:
                await read_all(store, blob_id, header, key)
            assert e.value.failure == v["outcome"], v["name"]


async def test_concurrent_writes_stay_separate(store):
    datas = [os.urandom(random.Random(i).randrange(1, 3 * CS)) for i in range(40)]
    ws = await asyncio.gather(*(write(store, d) for d in datas))
    assert len({w.blob_id for w in ws}) == 40
    for w, d in zip(ws, datas, strict=True):
        assert await read_all(store, w.blob_id) == d


async def test_writes_sharing_a_buffer_pool_stay_separate(store):
    pool = of.BufferPool(keep=3)
    datas = [os.urandom(random.Random(i).randrange(1, 3 * of.BATCH_BYTES)) for i in range(8)]
    for _ in range(2):  # the second round writes through recycled buffers
        ws = await asyncio.gather(*(write(store, d, buffers=pool) for d in datas))
        for w, d in zip(ws, datas, strict=True):
            assert await read_all(store, w.blob_id) == d
            assert w.md5_hex == hashlib.md5(d).hexdigest()
    assert 0 < len(pool._free) <= 3


async def test_missing_and_invalid_blob_ids(store):
    with pytest.raises(MissingBlob) as e:
        await of.open_object(store, "ab" * 16, KEY, HDR)
    assert isinstance(e.value, CorruptObject) and e.value.failure == "missing"
    for bad in ("../etc/passwd", "AB" * 16, "ab" * 15, ""):
        with pytest.raises(InvalidBlobId):
            store.path(bad)


async def test_delete_and_list(store):
    a = await write(store, b"a")
    b = await write(store, b"b")
    assert sorted(store.list_ids()) == sorted([a.blob_id, b.blob_id])
    assert store.delete(a.blob_id) is True
    assert store.delete(a.blob_id) is False
    assert list(store.list_ids()) == [b.blob_id]


async def test_failed_stream_leaves_nothing(store):
    async def broken():
        yield os.urandom(3 << 20)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await of.write_object(store, broken(), KEY, HDR, chunk_size=CS)
    assert files(store) == []


async def test_cancelled_write_leaves_nothing(store):
    started = asyncio.Event()

    async def slow():
        yield os.urandom(2 << 20)
        started.set()
        await asyncio.sleep(30)
        yield b"never"

    task = asyncio.create_task(of.write_object(store, slow(), KEY, HDR, chunk_size=CS))
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files(store) == []


async def test_abandoned_range_read_closes_its_file(store):
    w = await write(store, os.urandom(3 << 20))
    reader = await of.open_object(store, w.blob_id, KEY, HDR)
    before = len(os.listdir("/proc/self/fd"))
    gen = reader.iter_range()
    await gen.__anext__()
    await gen.aclose()
    await asyncio.sleep(0.1)  # a prefetch job may still finish in its thread
    assert len(os.listdir("/proc/self/fd")) == before


async def test_read_object_helper(store):
    w = await write(store, b"hello world")
    got = b"".join([c async for c in of.read_object(store, w.blob_id, KEY, HDR, 6, 11)])
    assert got == b"world"


async def test_works_through_the_s3_engine_seam(tmp_path):
    from s3sim.s3.blobs import BlobHeader
    from s3sim.s3.engine import EngineStore

    eng = EngineStore(tmp_path / "blobs", rng=os.urandom, fsync=False)
    h = BlobHeader("part", "oid#1", "AES256", b"wk", {"x": "y"})
    w = await eng.write(pieces(b"z" * 70_000), KEY, h, ("CRC32",))
    assert w.size == 70_000 and set(w.checksums) == {"CRC32"}
    reader = await eng.open(w.blob_id, KEY, h)
    assert b"".join([c async for c in reader.iter_range(69_999, 70_000)]) == b"z"
    assert list(eng.list_ids()) == [w.blob_id]


async def test_memory_stays_flat_for_a_256_mib_stream(tmp_path):
    store = BlobStore(tmp_path, fsync=False)
    piece = os.urandom(64 << 10)

    async def stream():
        for _ in range(4096):  # 256 MiB
            yield piece

    tracemalloc.start()
    try:
        w = await of.write_object(store, stream(), KEY, HDR, ("CRC32",))
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        reader = await of.open_object(store, w.blob_id, KEY, HDR)
        n = 0
        async for c in reader.iter_range():
            n += len(c)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (w.size, n) == (256 << 20, 256 << 20)
    assert write_peak < 8 << 20, write_peak
    assert read_peak < 8 << 20, read_peak


@pytest.mark.parametrize("n", [10, 2 * of.BATCH_BYTES + 5])
async def test_no_md5_when_not_wanted(store, monkeypatch, n):
    data = os.urandom(n)
    md5s: list[int] = []
    real = of.MultiHasher.__init__

    def spy(self, algorithms=()):
        md5s.append(1)
        real(self, algorithms)

    monkeypatch.setattr(of.MultiHasher, "__init__", spy)
    w = await write(store, data, md5=False)
    assert (w.md5_hex, w.checksums, md5s) == (None, {}, [])
    w = await write(store, data, md5=False, checksum_algorithms=("CRC32",))
    assert (w.md5_hex, w.checksums) == (None, {"CRC32": checksum("CRC32", data)})
    assert await read_all(store, w.blob_id) == data
    assert (await write(store, data)).md5_hex == hashlib.md5(data).hexdigest()
