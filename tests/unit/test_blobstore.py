"""BlobStore's grace period: what several server processes sharing one store rely on."""

from __future__ import annotations

import os

import pytest

from s3sim.storage.blobstore import BlobStore
from s3sim.storage.errors import MissingBlob, StorageError
from tests.unit.objectfile_env import files


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def blob(store: BlobStore, data: bytes = b"sealed bytes") -> str:
    with store.create() as w:
        w.write(data)
        return w.commit()


def read(store: BlobStore, blob_id: str) -> bytes:
    fd = store.open_fd(blob_id)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_without_grace_a_deleted_blob_is_gone(tmp_path):
    store = BlobStore(tmp_path, fsync=False)
    b = blob(store)
    assert store.delete(b) and not store.delete(b)
    with pytest.raises(MissingBlob):
        store.open_fd(b)


def test_with_grace_a_deleted_blob_stays_readable_then_goes(tmp_path):
    clock = Clock()
    store = BlobStore(tmp_path, fsync=False, grace_seconds=60, now=clock)
    b, other = blob(store), blob(store)
    assert store.delete(b)
    assert not store.exists(b) and b not in set(store.list_ids())
    assert read(store, b) == b"sealed bytes"  # a reader that looked it up a moment ago
    deleted_at = os.stat(tmp_path / "trash" / b).st_ctime
    clock.t = deleted_at + 30
    assert store.purge_trash() == 0  # still inside the grace period
    clock.t = deleted_at + 61
    store.delete(other)  # a later delete purges what outlived the grace period
    with pytest.raises(MissingBlob):
        store.open_fd(b)


def test_the_first_process_empties_the_trash_at_startup(tmp_path):
    store = BlobStore(tmp_path, fsync=False, grace_seconds=60)
    b = blob(store)
    store.delete(b)
    BlobStore(tmp_path, fsync=False, grace_seconds=60, sweep=False)  # a worker: keeps it
    assert read(store, b) == b"sealed bytes"
    BlobStore(tmp_path, fsync=False, grace_seconds=60)  # the main process, restarted
    with pytest.raises(MissingBlob):
        store.open_fd(b)


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


def test_fan_out_ahead_makes_every_directory_after_the_first_write(tmp_path):
    import time

    store = BlobStore(tmp_path / "s", fsync=False, fan_out_ahead=True)
    assert list(store.root.iterdir()) == []
    blob(store, b"first")
    for _ in range(200):
        if len(list(store.root.iterdir())) == 256:
            break
        time.sleep(0.01)
    assert sorted(d.name for d in store.root.iterdir()) == [f"{i:02x}" for i in range(256)]
    assert store.make_fan_out() == 0  # nothing left to make
    synced = BlobStore(tmp_path / "f", fsync=True, fan_out_ahead=True)
    blob(synced, b"x")
    time.sleep(0.05)
    assert len(list(synced.root.iterdir())) == 1  # not with fsync
