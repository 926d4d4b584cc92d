"""s3sim.storage: blob files and streaming encrypted object files; every tamper case."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from kmscore import envelope as env
from s3sim.storage import objectfile as of
from s3sim.storage.blobstore import BlobStore
from s3sim.storage.checksums import checksum
from s3sim.storage.errors import CorruptObject, InvalidBlobId, MissingBlob, StorageError

KEY = bytes(range(32))
HDR = of.ObjectHeader("object", "obj-1", "arn:aws:kms:r:1:key/k", b"wrapped", {"a": "b"})
CS = 4096
VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "format-v1.json").read_text())


def seeded_rng(seed: int = 1):
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


@pytest.fixture
def store(tmp_path):
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


async def test_huge_pieces_are_split_into_bounded_jobs(store, monkeypatch):
    sizes: list[int] = []
    real = of._Sealer.seal

    def spy(self, data, final, fsync, hash_too):
        sizes.append(len(data))
        return real(self, data, final, fsync, hash_too)

    monkeypatch.setattr(of._Sealer, "seal", spy)
    data = os.urandom(5 * of.BATCH_BYTES + 3)

    async def one_piece():
        yield data

    w = await of.write_object(store, one_piece(), KEY, HDR)
    assert sizes == [of.BATCH_BYTES] * 5 + [3]
    assert w.md5_hex == hashlib.md5(data).hexdigest()
    assert await read_all(store, w.blob_id) == data


@pytest.mark.parametrize("batches", [1, 2])
@pytest.mark.parametrize("piece", [4096, 10_000, 1 << 20])
async def test_exact_batch_multiple_ends_in_one_final_job(store, monkeypatch, batches, piece):
    calls: list[tuple[int, bool]] = []
    real = of._Sealer.seal

    def spy(self, data, final, fsync, hash_too):
        calls.append((len(data), final))
        return real(self, data, final, fsync, hash_too)

    monkeypatch.setattr(of._Sealer, "seal", spy)
    data = os.urandom(batches * of.BATCH_BYTES)
    w = await write(store, data, cs=env.DEFAULT_CHUNK_SIZE, piece=piece)
    assert calls == [(of.BATCH_BYTES, False)] * (batches - 1) + [(of.BATCH_BYTES, True)]
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


def mutate(path: Path, fn) -> None:
    path.write_bytes(fn(path.read_bytes()))


def flip_at(pos: int):
    def fn(b: bytes) -> bytes:
        a = bytearray(b)
        a[pos] ^= 0x20
        return bytes(a)

    return fn


@pytest.mark.parametrize(
    "where, failure",
    [
        (lambda w, raw: 0, "header"),  # magic
        (lambda w, raw: 11, "header"),  # length field
        (lambda w, raw: raw.index(b"obj-1") + 4, "header"),  # a field the index binds
        (lambda w, raw: raw.index(b"suite") - 5, "commitment"),  # inside the salt
        (lambda w, raw: 12 + w.header_len + 3, "commitment"),
        (lambda w, raw: 12 + w.header_len + 32, "payload"),  # first chunk
        (lambda w, raw: -1, "payload"),  # last tag
    ],
)
async def test_flipped_byte_anywhere_fails_at_open(store, where, failure):
    data = os.urandom(3 * CS + 10)
    w = await write(store, data)
    pos = where(w, store.path(w.blob_id).read_bytes())
    mutate(store.path(w.blob_id), flip_at(pos))
    if failure == "payload" and pos > 0:
        with pytest.raises(CorruptObject) as e:
            await read_all(store, w.blob_id)
    else:
        with pytest.raises(CorruptObject) as e:
            await of.open_object(store, w.blob_id, KEY, HDR)
    assert e.value.failure == failure and e.value.blob_id == w.blob_id


async def test_tamper_in_the_middle_never_yields_altered_bytes(store):
    data = os.urandom(600 * CS)  # several 1 MiB batches
    w = await write(store, data)
    lay = env.Layout(w.header_len, CS)
    mutate(store.path(w.blob_id), flip_at(lay.chunk_offset(400) + 9))
    reader = await of.open_object(store, w.blob_id, KEY, HDR)  # end is intact
    got = bytearray()
    with pytest.raises(CorruptObject) as e:
        async for c in reader.iter_range():
            got += c
    assert e.value.failure == "payload"
    assert len(got) <= 400 * CS and bytes(got) == data[: len(got)]


@pytest.mark.parametrize(
    "cut",
    [
        lambda lay, n: lay.chunk_offset(3),  # at a chunk boundary
        lambda lay, n: lay.chunk_offset(3) - 100,  # valid size, chunk 2 becomes "final"
        lambda lay, n: lay.file_size(n) - 1,
        lambda lay, n: lay.payload_offset,  # no chunk at all
        lambda lay, n: 20,  # inside the header
    ],
)
async def test_truncation_fails(store, cut):
    n = 3 * CS + 10
    w = await write(store, os.urandom(n))
    lay = env.Layout(w.header_len, CS)
    mutate(store.path(w.blob_id), lambda b: b[: cut(lay, n)])
    with pytest.raises(CorruptObject):
        await read_all(store, w.blob_id)


async def test_appended_and_reordered_chunks_fail(store):
    n = 3 * CS + 10
    w = await write(store, os.urandom(n))
    lay = env.Layout(w.header_len, CS)
    path = store.path(w.blob_id)
    orig = path.read_bytes()
    o = [lay.chunk_offset(i) for i in range(4)]
    c = [orig[o[i] : o[i + 1]] for i in range(3)] + [orig[o[3] :]]
    variants = [
        orig + c[3],  # final chunk duplicated at the end
        orig + c[0],  # a full chunk appended
        orig[: o[0]] + c[1] + c[0] + c[2] + c[3],  # swapped
        orig[: o[0]] + c[0] + c[0] + c[2] + c[3],  # duplicated
        orig[: o[0]] + c[0] + c[1] + c[3],  # a middle chunk dropped
    ]
    for v in variants:
        path.write_bytes(v)
        with pytest.raises(CorruptObject) as e:
            await read_all(store, w.blob_id)
        assert e.value.failure == "payload"


async def test_files_swapped_between_objects_fail(store):
    a = await write(store, b"object A" * 100)
    hdr_b = of.ObjectHeader("object", "obj-2", HDR.key_arn, HDR.wrapped_key, HDR.context)
    b = await write(store, b"object B" * 100, header=hdr_b)
    pa, pb = store.path(a.blob_id), store.path(b.blob_id)
    ra, rb = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(rb)
    pb.write_bytes(ra)
    for blob_id, hdr in ((a.blob_id, HDR), (b.blob_id, hdr_b)):
        with pytest.raises(CorruptObject) as e:
            await read_all(store, blob_id, hdr)
        assert e.value.failure == "header"


async def test_salt_from_the_index_pins_the_exact_file(store):
    old = await write(store, b"old contents")
    new = await write(store, b"new contents")  # same object id, key and wrapped key
    assert old.salt != new.salt and len(new.salt) == 32
    store.path(new.blob_id).write_bytes(store.path(old.blob_id).read_bytes())  # rollback
    assert await read_all(store, new.blob_id) == b"old contents"  # binding alone: allowed
    with pytest.raises(CorruptObject) as e:
        await of.open_object(store, new.blob_id, KEY, HDR, salt=new.salt)
    assert e.value.failure == "header"
    reader = await of.open_object(store, old.blob_id, KEY, HDR, 12, salt=old.salt)
    assert reader.size == 12


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


async def test_payload_spliced_from_another_file_fails(store):
    data = os.urandom(2 * CS + 5)
    a, b = await write(store, data), await write(store, data)  # same key, header, size
    lay = env.Layout(a.header_len, CS)
    pa, pb = store.path(a.blob_id), store.path(b.blob_id)
    pa.write_bytes(pa.read_bytes()[: lay.payload_offset] + pb.read_bytes()[lay.payload_offset :])
    with pytest.raises(CorruptObject) as e:
        await read_all(store, a.blob_id)
    assert e.value.failure == "payload"


@pytest.mark.parametrize(
    "field, value",
    [
        ("kind", "part"),
        ("object_id", "obj-9"),
        ("key_arn", "arn:aws:kms:r:1:key/other"),
        ("wrapped_key", b"other"),
        ("context", {"a": "c"}),
    ],
)
async def test_header_must_match_the_index(store, field, value):
    w = await write(store, b"x" * 100)
    kw = {f: getattr(HDR, f) for f in ("kind", "object_id", "key_arn", "wrapped_key", "context")}
    with pytest.raises(CorruptObject) as e:
        await read_all(store, w.blob_id, of.ObjectHeader(**{**kw, field: value}))
    assert e.value.failure == "header"


async def test_wrong_key_and_wrong_size(store):
    w = await write(store, b"x" * 100)
    with pytest.raises(CorruptObject) as e:
        await read_all(store, w.blob_id, key=b"\x07" * 32)
    assert e.value.failure == "commitment"
    with pytest.raises(CorruptObject) as e:
        await of.open_object(store, w.blob_id, KEY, HDR, size=99)
    assert e.value.failure == "payload"


async def test_remembered_verification_still_catches_every_change(store):
    leads = of.VerifiedLeads(max_entries=2)
    data = os.urandom(3 * CS + 10)
    w = await write(store, data)
    path, orig = store.path(w.blob_id), store.path(w.blob_id).read_bytes()
    for _ in range(2):  # the second open recalls the first one's header and keys
        reader = await of.open_object(store, w.blob_id, KEY, HDR, len(data), leads=leads)
        assert b"".join([c async for c in reader.iter_range()]) == data
    hdr_b = of.ObjectHeader("object", "obj-2", HDR.key_arn, HDR.wrapped_key, HDR.context)
    cases = [
        (orig, KEY, hdr_b, "header"),  # same bytes, another object's binding
        (orig, b"\x07" * 32, HDR, "commitment"),  # same bytes, another key
        (flip_at(orig.index(b"obj-1") + 4)(orig), KEY, HDR, "header"),
        (flip_at(12 + w.header_len + 3)(orig), KEY, HDR, "commitment"),
        (flip_at(12 + w.header_len + 40)(orig), KEY, HDR, "payload"),
    ]
    for raw, key, hdr, failure in cases:
        path.write_bytes(raw)
        with pytest.raises(CorruptObject) as e:
            await of.open_object(store, w.blob_id, key, hdr, len(data), leads=leads)
        assert e.value.failure == failure


async def test_file_changed_after_open_fails_the_read(store):
    w = await write(store, b"x" * (of.INLINE_FILE_MAX + 1))  # streamed, not held
    reader = await of.open_object(store, w.blob_id, KEY, HDR)
    mutate(store.path(w.blob_id), lambda b: b + b"\0")
    with pytest.raises(CorruptObject):
        async for _ in reader.iter_range():
            pass


@pytest.mark.parametrize("size", [None, 100])
async def test_small_file_is_authenticated_whole_at_open(store, size):
    data = os.urandom(3 * CS + 10)
    w = await write(store, data)
    mutate(store.path(w.blob_id), flip_at(env.Layout(w.header_len, CS).chunk_offset(1)))
    with pytest.raises(CorruptObject) as e:  # a middle chunk: caught before any byte
        await of.open_object(store, w.blob_id, KEY, HDR, size and len(data))
    assert e.value.failure == "payload"
    w = await write(store, b"y" * 100)
    reader = await of.open_object(store, w.blob_id, KEY, HDR, size)
    assert reader.chunks_opened == 1
    store.delete(w.blob_id)  # served from the verified plaintext it read
    assert b"".join([c async for c in reader.iter_range(1, 4)]) == b"yyy"


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


def test_orphan_temp_files_are_swept_at_startup(tmp_path):
    store = BlobStore(tmp_path, fsync=True)
    done = store.create()
    done.write(b"committed")
    blob_id = done.commit()
    crashed = store.create()  # a write in flight when the process died
    crashed.write(b"partial")
    assert os.path.exists(crashed.temp)
    assert list(store.list_ids()) == [blob_id]
    BlobStore(tmp_path)  # restart
    assert not os.path.exists(crashed.temp)
    assert store.path(blob_id).read_bytes() == b"committed"
    assert files(store) == [blob_id]


def test_blob_ids_never_collide_with_existing_blobs(tmp_path):
    store = BlobStore(tmp_path, fsync=False, rng=lambda n: bytes(n))  # always the same id
    with store.create() as w:
        w.commit()
    with pytest.raises(StorageError, match="colliding"):
        store.create()
    assert store.path(w.blob_id).exists()


def test_writer_context_manager_aborts_on_error(tmp_path):
    store = BlobStore(tmp_path, fsync=False)
    with pytest.raises(RuntimeError), store.create() as w:
        w.writev([b"a", memoryview(b"bc"), b""])
        assert w.size == 3
        raise RuntimeError
    assert files(store) == []


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
