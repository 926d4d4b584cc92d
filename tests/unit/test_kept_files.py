"""Kept files (storage/blobstore.py): with fsync, a deleted staged blob's file stays where
it is and the process's next blob is written into it in place, under the same id:
no inode allocated, nothing renamed, no directory synced."""

from __future__ import annotations

import os

import pytest

from s3sim.storage import blobstore as bs
from s3sim.storage.blobstore import BlobStore
from tests.unit.blob_env import blob, content


def files(store: BlobStore) -> list[str]:
    return sorted(f.name for d in store.root.iterdir() if d.is_dir() for f in d.iterdir())


@pytest.fixture
def staged(tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "staged", fsync=True, give_spares=True)


def test_a_deleted_blob_is_written_over_in_place_by_the_next(staged):
    old = blob(staged, b"x" * 10_000)
    inode = os.stat(staged.path_str(old)).st_ino
    assert staged.delete(old) and os.path.exists(staged.path_str(old))  # kept where it is
    new = blob(staged, b"shorter")
    assert new == old and os.stat(staged.path_str(new)).st_ino == inode
    assert content(staged, new) == b"shorter"  # the old tail is cut off
    assert files(staged) == [new]
    other = blob(staged, b"another")  # nothing kept any more: a new file
    assert other != new and files(staged) == sorted([new, other])


def test_a_longer_blob_in_a_kept_file_keeps_all_its_bytes(staged):
    staged.delete(blob(staged, b"short"))
    data = os.urandom(300_000)
    assert content(staged, blob(staged, data)) == data


def test_writing_in_place_renames_nothing_and_syncs_no_directory(staged, monkeypatch):
    old = blob(staged, b"old")
    staged.delete(old)
    calls: list[str] = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(
        bs.os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b)
    )
    monkeypatch.setattr(bs, "_fsync_dir", lambda p: calls.append("fsync_dir"))
    monkeypatch.setattr(bs.os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    assert blob(staged, b"new") == old
    assert calls == ["fsync"]  # the file's data only
    calls.clear()
    blob(staged, b"fresh")  # a new file: renamed into place, its directory synced
    assert calls[:3] == ["fsync", "replace", "fsync_dir"]  # (then the root's, if new)


def test_only_a_giving_store_with_fsync_and_no_grace_keeps(tmp_path):
    for store in (
        BlobStore(tmp_path / "a", fsync=True),  # not a giving store (S3 objects)
        BlobStore(tmp_path / "b", fsync=False, give_spares=True),  # no fsync: spares' job
        BlobStore(tmp_path / "c", fsync=True, give_spares=True, grace_seconds=300),
    ):
        b = blob(store, b"object")
        assert store.delete(b) and not os.path.exists(store.path_str(b))


def test_at_most_keep_cap_files_are_kept(staged, monkeypatch):
    monkeypatch.setattr(bs, "KEEP_CAP", 2)
    ids = [blob(staged, b"%d" % i) for i in range(3)]
    for b in ids:
        assert staged.delete(b)
    assert files(staged) == sorted(ids[:2])  # the third is unlinked


def test_deleting_a_missing_blob_keeps_nothing(staged):
    b = blob(staged, b"x")
    os.unlink(staged.path_str(b))
    assert not staged.delete(b)
    assert blob(staged, b"y") != b


def test_a_kept_file_gone_since_means_a_new_file(staged):
    old = blob(staged, b"old")
    staged.delete(old)
    os.unlink(staged.path_str(old))  # e.g. removed by hand or by a sweep
    new = blob(staged, b"new")
    assert new != old and content(staged, new) == b"new"


def test_an_aborted_write_into_a_kept_file_removes_it(staged):
    old = blob(staged, b"old")
    staged.delete(old)
    with staged.create() as w:
        assert w.blob_id == old
        w.write(b"half")  # no commit: aborted
    assert files(staged) == []  # unreferenced: removed, not left half-written
    assert blob(staged, b"next") != old
