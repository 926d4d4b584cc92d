"""s3sim.s3.commits: PUTs that reach their commit together share one transaction."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from s3sim.s3.blobs import Garbage
from s3sim.s3.commits import Commits
from s3sim.s3.errors import S3Error
from s3sim.storage.index import BucketRow, Index, ObjectPut, ObjectRow
from tests.unit.s3_env import MemStore


def obj(key: str, blob: str) -> ObjectRow:
    return ObjectRow("b", key, "oid-" + blob, 3, "etag", 1.0, "111", json.dumps([[blob, 3]]), "{}")


def counting(idx: Index) -> list[int]:
    """Record the size of every group written."""
    sizes: list[int] = []
    write = idx.put_objects

    def put_objects(puts):
        sizes.append(len(puts))
        return write(puts)

    idx.put_objects = put_objects  # type: ignore[method-assign]
    return sizes


@pytest.mark.parametrize("fsync", [False, True])
async def test_puts_asked_together_are_one_group_each_with_its_outcome(tmp_path, fsync):
    idx = Index(tmp_path / "i.db", fsync=fsync)
    sizes = counting(idx)
    commits = Commits(idx, Garbage(MemStore()))
    idx.put_object(obj("k", "blob0"))

    def refuse(current: ObjectRow | None) -> None:
        raise ValueError("precondition")

    outcomes = [
        commits.put(ObjectPut(obj("k", "blob1"))),
        commits.put(ObjectPut(obj("j", "blob2"), refuse)),
        commits.put(ObjectPut(obj("k", "blob3"))),
    ]
    first = await outcomes[0]
    assert first is not None and first.blob_ids() == ["blob0"]
    with pytest.raises(ValueError):
        await outcomes[1]
    third = await outcomes[2]
    assert third is not None and third.blob_ids() == ["blob1"]
    assert sizes == [1, 3]  # the direct put_object, then one group
    assert idx.get_object("b", "k").blob_ids() == ["blob3"] and idx.get_object("b", "j") is None
    idx.close()


async def test_with_fsync_puts_gather_while_a_group_is_written_and_reads_go_on(tmp_path):
    """The group's transaction waits on a worker thread (here: for another writer holding
    the lock, as a COMMIT's fsync would); the loop keeps serving reads and collecting the
    next group meanwhile."""
    idx = Index(tmp_path / "i.db", fsync=True)
    idx.create_bucket(BucketRow("b", "111", "x", "r", 1.0))
    idx.put_object(obj("k", "blob1"))
    sizes = counting(idx)
    commits = Commits(idx, Garbage(MemStore()))
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with idx.tx():
            held.set()
            release.wait(5)

    t = threading.Thread(target=writer)
    t.start()
    assert held.wait(5)
    try:
        first = commits.put(ObjectPut(obj("a", "blob2")))
        await asyncio.sleep(0.05)  # the first group is waiting for the lock, off the loop
        later = [commits.put(ObjectPut(obj(k, "blob-" + k))) for k in ("b", "c", "d")]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(o.done() for o in later)
        assert idx.get_object("b", "k").blob_ids() == ["blob1"]  # reads are not blocked
        assert idx.get_bucket("b") is not None
    finally:
        release.set()
        t.join()
    assert await first is None and [await o for o in later] == [None, None, None]
    assert sizes == [1, 3]
    assert idx.get_object("b", "d").blob_ids() == ["blob-d"]
    idx.close()


async def test_a_failed_transaction_fails_every_put_of_its_group(tmp_path):
    idx = Index(tmp_path / "i.db", fsync=False)
    commits = Commits(idx, Garbage(MemStore()))

    def broken(puts):
        raise OSError("disk full")

    idx.put_objects = broken  # type: ignore[method-assign]
    outcomes = [commits.put(ObjectPut(obj(k, "x"))) for k in ("a", "b")]
    for o in outcomes:
        with pytest.raises(OSError):
            await o
    idx.close()


def replacing(tmp_path, fsync: bool) -> tuple[Index, MemStore, Commits]:
    """Key k committed as blob0; blob1, its would-be replacement, written (both stored)."""
    idx = Index(tmp_path / "i.db", fsync=fsync)
    store = MemStore()
    for b in ("blob0", "blob1"):
        store.blobs[b] = (b"abc", b"", None)  # type: ignore[assignment]
    idx.put_object(obj("k", "blob0"))
    return idx, store, Commits(idx, Garbage(store))


def refuse(current: ObjectRow | None) -> None:
    raise S3Error("PreconditionFailed")


@pytest.mark.parametrize("fsync", [False, True])
async def test_a_commit_frees_the_replaced_version_blobs(tmp_path, fsync):
    idx, store, commits = replacing(tmp_path, fsync)
    await commits.commit(obj("k", "blob1"), None, "blob1", None)
    assert idx.get_object("b", "k").blob_ids() == ["blob1"]
    assert list(store.blobs) == ["blob1"]
    idx.close()


@pytest.mark.parametrize("fsync", [False, True])
async def test_a_refused_commit_frees_its_own_blob_and_raises(tmp_path, fsync):
    idx, store, commits = replacing(tmp_path, fsync)
    with pytest.raises(S3Error) as e:
        await commits.commit(obj("k", "blob1"), refuse, "blob1", None)
    assert e.value.code == "PreconditionFailed"
    assert idx.get_object("b", "k").blob_ids() == ["blob0"]
    assert list(store.blobs) == ["blob0"]
    idx.close()


@pytest.mark.parametrize("fsync", [False, True])
@pytest.mark.parametrize("refused", [False, True])
async def test_a_cancelled_request_still_commits_and_frees_the_right_blob(tmp_path, fsync, refused):
    """The request goes away while its commit waits for its group: the group still
    commits it (or refuses it) and frees the losing blob; only the answer is dropped."""
    idx, store, commits = replacing(tmp_path, fsync)
    task = asyncio.create_task(
        commits.commit(obj("k", "blob1"), refuse if refused else None, "blob1", None)
    )
    await asyncio.sleep(0)  # queued, its group not written yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the group is written after the cancellation
        if len(store.blobs) == 1:
            break
        await asyncio.sleep(0.01)
    winner = "blob0" if refused else "blob1"
    assert list(store.blobs) == [winner]
    assert idx.get_object("b", "k", fresh=True).blob_ids() == [winner]
    idx.close()
