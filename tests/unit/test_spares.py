"""Spare files: a deleted blob's file is reused by the next blob, never read as it."""

from __future__ import annotations

import os

from s3sim.storage.blobstore import BlobStore
from s3sim.storage.spares import Spares
from tests.unit.blob_env import blob, content


def stores(tmp_path, **kw) -> tuple[Spares, BlobStore, BlobStore]:
    spares = Spares(tmp_path / "spare", **kw)
    giver = BlobStore(tmp_path / "staged", fsync=False, spares=spares, give_spares=True)
    taker = BlobStore(tmp_path / "objects", fsync=False, spares=spares)
    return spares, giver, taker


def test_a_deleted_blob_becomes_the_next_blob_with_only_the_new_bytes(tmp_path):
    spares, giver, taker = stores(tmp_path)
    old = blob(giver, b"x" * 10_000)
    inode = os.stat(giver.path_str(old)).st_ino
    assert giver.delete(old) and not os.path.exists(giver.path_str(old))
    assert len(spares) == 1
    new = blob(taker, b"shorter")
    assert os.stat(taker.path_str(new)).st_ino == inode  # reused, not allocated
    assert content(taker, new) == b"shorter"  # the old tail is cut off
    assert len(spares) == 0 and os.listdir(spares.root) == []


def test_a_longer_blob_in_a_spare_keeps_all_its_bytes(tmp_path):
    _, giver, taker = stores(tmp_path)
    giver.delete(blob(giver, b"short"))
    data = os.urandom(200_000)
    assert content(taker, blob(taker, data)) == data


def test_a_store_that_does_not_give_deletes(tmp_path):
    spares, _, taker = stores(tmp_path)
    b = blob(taker, b"object")
    assert taker.delete(b) and len(spares) == 0 and os.listdir(spares.root) == []
    assert not taker.delete(b)


def test_a_store_with_a_grace_period_never_gives(tmp_path):
    """Readers in other processes may still open a trashed blob: it is not reused."""
    spares = Spares(tmp_path / "spare")
    store = BlobStore(
        tmp_path / "s", fsync=False, spares=spares, give_spares=True, grace_seconds=300
    )
    b = blob(store, b"object")
    assert store.delete(b) and len(spares) == 0
    assert os.path.exists(f"{store.root}/trash/{b}")


def test_at_most_cap_spares_and_none_too_big(tmp_path):
    spares, giver, _ = stores(tmp_path, cap=2, max_bytes=1000)
    big = blob(giver, b"b" * 1001)
    assert giver.delete(big) and len(spares) == 0  # unlinked
    ids = [blob(giver, b"s") for _ in range(3)]
    for b in ids:
        assert giver.delete(b)
    assert len(spares) == 2 and len(os.listdir(spares.root)) == 2
    assert sum(os.path.exists(giver.path_str(b)) for b in [big, *ids]) == 0


def test_a_spare_taken_by_another_process_means_a_new_file(tmp_path):
    spares, giver, taker = stores(tmp_path)
    giver.delete(blob(giver, b"old"))
    for name in os.listdir(spares.root):  # another process renamed it away
        os.unlink(f"{spares.root}/{name}")
    b = blob(taker, b"new")
    assert content(taker, b) == b"new" and len(spares) == 0


def test_an_aborted_write_into_a_spare_leaves_nothing(tmp_path):
    spares, giver, taker = stores(tmp_path)
    giver.delete(blob(giver, b"old"))
    with taker.create() as w:
        w.write(b"half")
    assert len(spares) == 0 and os.listdir(spares.root) == []
    assert list(taker.list_ids()) == []
    assert [f for d in taker.root.iterdir() for f in d.iterdir()] == []


def test_the_sweeping_process_clears_an_earlier_runs_spares(tmp_path):
    spares, giver, _ = stores(tmp_path)
    giver.delete(blob(giver, b"old"))
    assert len(Spares(tmp_path / "spare", clear=False)) == 0  # knows only its own
    assert os.listdir(spares.root) != []
    Spares(tmp_path / "spare")  # the next run's main process
    assert os.listdir(spares.root) == []


def test_take_fails_softly_across_file_systems(tmp_path):
    spares = Spares(tmp_path / "spare")
    assert not spares.take(str(tmp_path / "nowhere" / "x"))  # nothing to take
    giver = BlobStore(tmp_path / "g", fsync=False, spares=spares, give_spares=True)
    giver.delete(blob(giver, b"old"))
    assert not spares.take("/proc/self/nope")  # rename fails (not FileNotFoundError)


def test_a_store_with_fsync_neither_gives_nor_takes(tmp_path):
    spares, giver, _ = stores(tmp_path)
    synced = BlobStore(tmp_path / "s", fsync=True, spares=spares, give_spares=True)
    assert synced.delete(blob(synced, b"object")) and len(spares) == 0  # kept in place
    giver.delete(blob(giver, b"old"))  # a spare, from a store without fsync
    assert len(spares) == 1
    blob(synced, b"new")
    assert len(spares) == 1  # not taken
