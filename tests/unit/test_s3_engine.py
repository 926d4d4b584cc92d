"""S3Service over the real storage engine (encrypted files on disk), fake KMS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kmscore.clock import FixedClock
from s3sim.s3.errors import S3Error
from s3sim.s3.models import SseRequest
from s3sim.s3.service import S3Service
from tests.unit.test_s3_service import ADMIN, FakeKMS, body, read

MiB = 1024 * 1024


@pytest.fixture
def env(tmp_path):
    kms = FakeKMS()
    kms.states[kms.arn("k1")] = "Enabled"
    s3 = S3Service(tmp_path, "us-east-1", FixedClock(), kms, fsync=False)
    s3.buckets.create(ADMIN, "bkt")
    return s3, tmp_path


def blob_files(root: Path) -> list[Path]:
    return [p for p in (root / "s3" / "blobs").rglob("*") if p.is_file()]


async def test_roundtrip_ranges_and_no_plaintext(env):
    s3, root = env
    data = os.urandom(300_000)
    await s3.put_object(ADMIN, "bkt", "a", body(data), sse=SseRequest())
    await s3.put_object(ADMIN, "bkt", "b", body(data[::-1]), sse=SseRequest("aws:kms", "k1"))
    assert await read(await s3.objects.get(ADMIN, "bkt", "a")) == data
    got = await s3.objects.get(ADMIN, "bkt", "b", range_header="bytes=70000-140000")
    assert await read(got) == data[::-1][70000:140001]
    needles = [data[i : i + 32] for i in (0, 150_000, len(data) - 32)]
    for path in root.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert not any(n in raw or n[::-1] in raw for n in needles), path


async def test_multipart_segments_and_overwrite_cleanup(env):
    s3, root = env
    up = await s3.multipart.create(ADMIN, "bkt", "mp", sse=SseRequest())
    p1, p2 = os.urandom(5 * MiB), os.urandom(1000)
    e1 = await s3.multipart.upload_part(ADMIN, "bkt", "mp", up.upload_id, 1, body(p1))
    e2 = await s3.multipart.upload_part(ADMIN, "bkt", "mp", up.upload_id, 2, body(p2))
    await s3.multipart.complete(ADMIN, "bkt", "mp", up.upload_id, [(1, e1.etag), (2, e2.etag)])
    got = await s3.objects.get(ADMIN, "bkt", "mp", range_header=f"bytes={5 * MiB - 10}-")
    assert await read(got) == p1[-10:] + p2
    assert len(blob_files(root)) == 2
    await s3.put_object(ADMIN, "bkt", "mp", body(b"small"), sse=SseRequest())
    assert blob_files(root) == []  # both parts deleted; the small object is inline
    blob_id = s3.head_object(ADMIN, "bkt", "mp").segments[0].blob_id
    assert s3.core.index.inline_blob("bkt", "mp", blob_id) is not None
    await s3.put_object(ADMIN, "bkt", "mp", body(os.urandom(100_000)), sse=SseRequest())
    assert s3.core.index.inline_blob("bkt", "mp", blob_id) is None and len(blob_files(root)) == 1


async def test_tampered_or_swapped_blob_fails(env):
    s3, root = env
    await s3.put_object(ADMIN, "bkt", "a", body(os.urandom(200_000)), sse=SseRequest())
    (path,) = blob_files(root)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(S3Error) as e:
        await read(await s3.objects.get(ADMIN, "bkt", "a"))
    assert (e.value.code, e.value.status) == ("InternalError", 500)
    await s3.put_object(ADMIN, "bkt", "x", body(b"one" * 70_000), sse=SseRequest())
    await s3.put_object(ADMIN, "bkt", "y", body(b"two" * 70_000), sse=SseRequest())
    bx = s3.head_object(ADMIN, "bkt", "x").segments[0].blob_id
    by = s3.head_object(ADMIN, "bkt", "y").segments[0].blob_id
    px = next(p for p in blob_files(root) if p.name == bx)
    py = next(p for p in blob_files(root) if p.name == by)
    px.write_bytes(py.read_bytes())
    with pytest.raises(S3Error) as e:
        await read(await s3.objects.get(ADMIN, "bkt", "x"))
    assert e.value.code == "InternalError"


def swap_inline(s3: S3Service, src: str, dst: str) -> None:
    """Write the inline blob of key `src` over the one of key `dst`, in the index."""
    a = s3.head_object(ADMIN, "bkt", src).segments[0].blob_id
    sealed = s3.core.index.inline_blob("bkt", src, a)
    with s3.core.index.tx() as db:
        db.execute("UPDATE inline_files SET data=? WHERE bucket='bkt' AND key=?", (sealed, dst))


@pytest.mark.parametrize(
    "sse", [SseRequest(), SseRequest("aws:kms", "k1", bucket_key_enabled=True)]
)
async def test_swapped_inline_blob_fails(env, sse):
    """Two small objects under one data key (a bucket key) or the SSE-S3 master key: the
    header binds each sealed blob to its own object."""
    s3, _ = env
    await s3.put_object(ADMIN, "bkt", "x", body(b"one"), sse=sse)
    await s3.put_object(ADMIN, "bkt", "y", body(b"two"), sse=sse)
    swap_inline(s3, "y", "x")
    for whole in (0, 1 << 16):  # the short path and a reader
        with pytest.raises(S3Error) as e:
            await read(await s3.objects.get(ADMIN, "bkt", "x", whole_max=whole))
        assert (e.value.code, e.value.status) == ("InternalError", 500)
    assert await read(await s3.objects.get(ADMIN, "bkt", "y")) == b"two"


async def test_a_reader_behind_another_writer_reads_the_new_version(env):
    """Another process (here: a second service without the shared counter, so this one's
    row cache goes stale) replaced a small object between this process's read of its row
    and of its inline blob: the blob is gone with the old row, and the GET reads the key
    again instead of failing. (A GET caches both; a HEAD caches the row alone.)"""
    s3, root = env
    await s3.put_object(ADMIN, "bkt", "k", body(b"old"), sse=SseRequest())
    assert s3.objects.head(ADMIN, "bkt", "k").size == 3  # row cached, blob not read
    other = S3Service(root, "us-east-1", FixedClock(), s3.core.keys._kms, fsync=False, sweep=False)
    await other.put_object(ADMIN, "bkt", "k", body(b"new"), sse=SseRequest())
    for whole in (0, 1 << 16):
        assert await read(await s3.objects.get(ADMIN, "bkt", "k", whole_max=whole)) == b"new"
    await other.put_object(ADMIN, "bkt", "k", body(b"newer"), sse=SseRequest())
    with pytest.raises(S3Error) as e:  # a copy does not retry: SlowDown, which SDKs retry
        await s3.objects.copy(ADMIN, "bkt", "k", "bkt", "c", sse=SseRequest())
    assert (e.value.code, e.value.status) == ("SlowDown", 503)
    other.close()


async def test_orphan_blob_removed_at_restart(env, tmp_path):
    s3, root = env
    await s3.put_object(ADMIN, "bkt", "a", body(b"keep"), sse=SseRequest())
    orphan = root / "s3" / "blobs" / "ab" / ("ab" + "0" * 30)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"junk")
    s3.close()
    s3 = S3Service(root, "us-east-1", FixedClock(), FakeKMS(), fsync=False)
    assert s3.orphans_removed == 1 and not orphan.exists()
    assert await read(await s3.objects.get(ADMIN, "bkt", "a")) == b"keep"


async def test_multipart_with_gaps_in_part_numbers(env):
    s3, _ = env
    up = await s3.multipart.create(ADMIN, "bkt", "gap", sse=SseRequest())
    p1, p3 = os.urandom(5 * MiB), b"three"
    e1 = await s3.multipart.upload_part(ADMIN, "bkt", "gap", up.upload_id, 1, body(p1))
    e3 = await s3.multipart.upload_part(ADMIN, "bkt", "gap", up.upload_id, 3, body(p3))
    await s3.multipart.complete(ADMIN, "bkt", "gap", up.upload_id, [(1, e1.etag), (3, e3.etag)])
    assert await read(await s3.objects.get(ADMIN, "bkt", "gap")) == p1 + p3
    got = await s3.objects.get(ADMIN, "bkt", "gap", part_number=2)
    assert await read(got) == p3


async def test_overwrite_during_a_slow_kms_decrypt_does_not_break_the_reader(env):
    import asyncio
    import time

    s3, _ = env
    kms = s3.core.keys._kms
    await s3.put_object(ADMIN, "bkt", "k", body(b"old"), sse=SseRequest("aws:kms", "k1"))
    decrypt = kms.decrypt

    def slow_decrypt(*args, **kw):
        time.sleep(0.3)
        return decrypt(*args, **kw)

    kms.decrypt = slow_decrypt
    reader = asyncio.ensure_future(s3.objects.get(ADMIN, "bkt", "k"))
    await asyncio.sleep(0.05)
    await s3.put_object(ADMIN, "bkt", "k", body(b"new"), sse=SseRequest())
    assert await read(await reader) == b"old"
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"new"


async def test_inline_objects_with_fsync_commits_on_a_thread(tmp_path):
    """--fsync: the commit that stores the inline blob runs on a worker thread, and reads
    use a second connection; both must see the same version."""
    kms = FakeKMS()
    s3 = S3Service(tmp_path, "us-east-1", FixedClock(), kms, fsync=True)
    s3.buckets.create(ADMIN, "bkt")
    for data in (b"one", os.urandom(4096), b""):
        await s3.put_object(ADMIN, "bkt", "k", body(data), sse=SseRequest())
        seg = s3.head_object(ADMIN, "bkt", "k").segments[0]
        assert s3.core.index.inline_blob("bkt", "k", seg.blob_id) is not None
        for whole in (0, 1 << 16):
            assert await read(await s3.objects.get(ADMIN, "bkt", "k", whole_max=whole)) == data
    assert blob_files(tmp_path) == []
    s3.objects.delete(ADMIN, "bkt", "k")
    assert s3.core.index.inline_blob("bkt", "k", seg.blob_id) is None
    s3.close()
