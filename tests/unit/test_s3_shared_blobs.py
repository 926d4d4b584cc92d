"""Two S3Services over one data dir, as two server processes: a replaced single-blob
object's file goes at once (its readers hold it open), a multipart object's blobs keep
the grace period, and a GET that finds its blob gone reads the key again."""

from __future__ import annotations

import os

import pytest

from kmscore import KMS
from kmscore.clock import FixedClock
from s3sim.s3.errors import S3Error
from s3sim.s3.models import SseRequest
from s3sim.s3.service import S3Service
from tests.unit.s3_env import ADMIN, body, read

BIG = 3 << 20  # streamed in batches: not read whole at open


@pytest.fixture
def pair(tmp_path):
    kms = KMS(tmp_path, "us-east-1", FixedClock(), root_key=b"\x03" * 32, fsync=False)

    def service(sweep: bool) -> S3Service:
        clock = FixedClock()
        return S3Service(tmp_path, "us-east-1", clock, kms, fsync=False, sweep=sweep, shared=True)

    one, two = service(True), service(False)
    one.buckets.create(ADMIN, "bkt")
    yield one, two
    for s in (one, two):
        s.close()


def blob_files(tmp_path) -> tuple[set[str], set[str]]:
    """(live blob files, trashed ones) of the S3 store."""
    root = tmp_path / "s3" / "blobs"
    live = {p.name for p in root.glob("??/*") if not p.name.startswith(".")}
    return live, {p.name for p in (root / "trash").iterdir()}


async def put(s3: S3Service, key: str, data: bytes):
    return await s3.put_object(ADMIN, "bkt", key, body(data), sse=SseRequest("aws:kms"))


async def test_a_replaced_object_file_goes_at_once_and_an_open_reader_keeps_it(pair, tmp_path):
    one, two = pair
    v1, v2 = os.urandom(BIG), os.urandom(BIG)
    await put(one, "k", v1)
    res = await one.objects.get(ADMIN, "bkt", "k")  # opened: holds the file it verified
    (old,) = blob_files(tmp_path)[0]
    await put(two, "k", v2)  # the other process replaces it
    live, trashed = blob_files(tmp_path)
    assert old not in live and old not in trashed  # unlinked, no grace period
    assert await read(res) == v1  # the reader still reads what it verified
    assert await read(await one.objects.get(ADMIN, "bkt", "k")) == v2


async def test_a_get_that_finds_its_blob_gone_reads_the_key_again(pair, monkeypatch):
    one, two = pair
    await put(one, "k", os.urandom(BIG))
    stale = one.objects.lookup(ADMIN, "bkt", "k", "s3:GetObject")
    v2 = os.urandom(BIG)
    await put(two, "k", v2)
    real = one.objects.lookup
    calls: list[bool] = []

    def lookup(caller, bucket, key, action, fresh=False):
        calls.append(fresh)
        return stale if not fresh else real(caller, bucket, key, action, fresh)

    monkeypatch.setattr(one.objects, "lookup", lookup)  # its row read before the overwrite
    assert await read(await one.objects.get(ADMIN, "bkt", "k")) == v2
    assert calls == [False, True]


async def test_a_blob_lost_from_the_same_version_is_corrupt(pair, tmp_path):
    one, _ = pair
    await put(one, "k", os.urandom(BIG))
    for name in blob_files(tmp_path)[0]:
        os.remove(next((tmp_path / "s3" / "blobs").glob(f"??/{name}")))
    with pytest.raises(S3Error) as e:
        await one.objects.get(ADMIN, "bkt", "k")
    assert (e.value.code, e.value.status) == ("InternalError", 500)


async def test_a_multipart_object_blobs_keep_the_grace_period(pair, tmp_path):
    one, two = pair
    up = (await one.multipart.create(ADMIN, "bkt", "m", sse=SseRequest("aws:kms"))).upload_id
    etags = []
    for n in (1, 2):
        part = await one.multipart.upload_part(ADMIN, "bkt", "m", up, n, body(os.urandom(5 << 20)))
        etags.append((n, part.etag))
    await one.multipart.complete(ADMIN, "bkt", "m", up, etags)
    part_blobs = blob_files(tmp_path)[0]
    assert len(part_blobs) == 2
    await put(two, "m", b"small now")
    assert part_blobs <= blob_files(tmp_path)[1]  # a GET opens each part when it gets there


def test_garbage_keeps_the_grace_period_for_several_blobs_only():
    from s3sim.s3.blobs import Garbage

    calls: list[tuple[str, bool]] = []

    class Store:
        def delete(self, blob_id: str, grace: bool = True) -> None:
            calls.append((blob_id, grace))

    g = Garbage(Store())  # type: ignore[arg-type]
    g.delete(["lone"])
    g.delete(["p1", "p2"])
    release = g.pin(["pinned"])
    g.delete(["pinned"])
    assert calls == [("lone", False), ("p1", True), ("p2", True)]
    release()  # deleted when its reader is done, still at once
    assert calls[-1] == ("pinned", False)


async def test_a_copy_whose_source_file_is_gone_answers_slowdown(pair, monkeypatch):
    one, two = pair
    await put(one, "src", os.urandom(BIG))
    stale = one.objects.lookup(ADMIN, "bkt", "src", "s3:GetObject")
    await put(two, "src", os.urandom(BIG))  # the other process replaces it: file unlinked
    monkeypatch.setattr(one.objects, "lookup", lambda *a, **kw: stale)
    with pytest.raises(S3Error) as e:  # no retry in a copy: SDKs retry SlowDown
        await one.objects.copy(ADMIN, "bkt", "src", "bkt", "dst", sse=SseRequest())
    assert (e.value.code, e.value.status) == ("SlowDown", 503)
