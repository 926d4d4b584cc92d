"""Errors of s3sim.storage: one root, StorageError."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error s3sim.storage raises on purpose."""


class InvalidBlobId(StorageError, ValueError):
    """A blob id that this store could never have produced (also stops path tricks)."""


class CorruptObject(StorageError):
    """A stored file is not what the index says: tampered, truncated, swapped or missing.

    `failure` names the class of FORMAT.md: header, commitment, payload or missing.
    No byte of a file that raises this is ever returned as plaintext.
    """

    def __init__(self, message: str, failure: str = "payload", blob_id: str = "") -> None:
        super().__init__(message)
        self.failure = failure
        self.blob_id = blob_id


class MissingBlob(CorruptObject):
    """The index names a blob whose file does not exist."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"blob {blob_id} is missing", "missing", blob_id)
