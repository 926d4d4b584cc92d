"""Shared pieces of the blob-file tests (test_spares.py, test_kept_files.py)."""

from __future__ import annotations

from s3sim.storage.blobstore import BlobStore


def blob(store: BlobStore, data: bytes) -> str:
    """A committed blob of `data`; its id."""
    with store.create() as w:
        w.write(data)
        return w.commit()


def content(store: BlobStore, blob_id: str) -> bytes:
    with open(store.path_str(blob_id), "rb") as f:
        return f.read()
