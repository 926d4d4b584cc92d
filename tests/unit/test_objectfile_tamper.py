"""s3sim.storage.objectfile: every tamper case is detected before a byte is returned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kmscore import envelope as env
from s3sim.storage import objectfile as of
from s3sim.storage.errors import CorruptObject
from s3sim.storage.objectread import INLINE_PLAIN_MAX
from tests.unit.objectfile_env import (
    CS,
    HDR,
    KEY,
    files,
    make_store,
    read_all,
    write,
)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


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


@pytest.mark.parametrize("pos", [0, 11, 40, -20, -1])  # magic, length, header, payload, tag
async def test_read_small_returns_the_plaintext_or_fails_whole(store, pos):
    data = os.urandom(3 * CS + 10)
    w = await write(store, data)
    assert of.read_small(store, w.blob_id, KEY, HDR, len(data)) == data
    with pytest.raises(CorruptObject):  # the index's size pins the file
        of.read_small(store, w.blob_id, KEY, HDR, len(data) - 1)
    with pytest.raises(CorruptObject):
        of.read_small(store, w.blob_id, bytes(32), HDR, len(data))  # another key
    raw = store.path(w.blob_id).read_bytes()
    mutate(store.path(w.blob_id), flip_at(pos % len(raw)))
    with pytest.raises(CorruptObject) as e:
        of.read_small(store, w.blob_id, KEY, HDR, len(data))
    assert e.value.blob_id == w.blob_id


def test_read_small_refuses_what_is_not_small(store):
    with pytest.raises(ValueError):
        of.read_small(store, "0" * 32, KEY, HDR, INLINE_PLAIN_MAX + 1)


@pytest.mark.parametrize("n", [0, 1, CS - 1, CS, CS + 1, 3 * CS + 10])  # one chunk, several
async def test_inline_write_is_the_file_it_would_have_written(store, n):
    data = os.urandom(n)
    as_file = await write(store, data)
    same_salt = store.rng  # the seeded rng: rewind it so the inline write draws the same salt
    store.rng = make_store(store.root.parent / "again").rng
    before = files(store)
    w = await write(store, data, inline_max=len(data) or 1)  # 0 would mean never
    assert files(store) == before  # no file, not even a temporary one left behind
    store.rng = same_salt
    assert w.blob_id.startswith("i") and len(w.blob_id) == 33
    assert w.inline == store.path(as_file.blob_id).read_bytes()  # byte for byte
    assert (w.size, w.file_size, w.header_len) == (len(data), len(w.inline), as_file.header_len)
    assert w.md5_hex == as_file.md5_hex


async def test_inline_max_is_a_bound(store):
    data = os.urandom(100)
    w = await write(store, data, inline_max=99)
    assert w.inline is None and store.path(w.blob_id).exists()


async def test_no_inline_max_means_a_file_even_for_an_empty_body(store):
    """Multipart parts and staged recordings ask for no inline blob: their callers have
    nowhere to keep one (an empty part once came back inline and its object failed)."""
    w = await write(store, b"")
    assert w.inline is None and store.path(w.blob_id).exists()
    assert await read_all(store, w.blob_id) == b""


@pytest.mark.parametrize("pos", [0, 11, 40, -20, -1])  # magic, length, header, payload, tag
async def test_sealed_inline_blob_opens_or_fails_whole(store, pos):
    data = os.urandom(3 * CS + 10)
    w = await write(store, data, inline_max=1 << 20)
    sealed = w.inline
    assert of.open_sealed(sealed, w.blob_id, KEY, HDR, len(data)).plaintext == data
    reader = of.open_sealed(sealed, w.blob_id, KEY, HDR, len(data))
    assert b"".join([c async for c in reader.iter_range(5, 9000)]) == data[5:9000]
    with pytest.raises(CorruptObject):  # the index's size pins the blob
        of.open_sealed(sealed, w.blob_id, KEY, HDR, len(data) - 1)
    with pytest.raises(CorruptObject) as e:
        of.open_sealed(sealed, w.blob_id, bytes(32), HDR, len(data))  # another key
    assert e.value.failure == "commitment"
    other = of.ObjectHeader("object", "obj-2", HDR.key_arn, HDR.wrapped_key, HDR.context)
    with pytest.raises(CorruptObject) as e:  # another object's blob under the same key
        of.open_sealed(sealed, w.blob_id, KEY, other, len(data))
    assert e.value.failure == "header"
    with pytest.raises(CorruptObject) as e:
        of.open_sealed(flip_at(pos % len(sealed))(sealed), w.blob_id, KEY, HDR, len(data))
    assert e.value.blob_id == w.blob_id
