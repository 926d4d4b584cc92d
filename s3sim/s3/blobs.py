"""The S3 layer's view of encrypted blob storage, and deferred deletion of garbage blobs.

`BlobStore` is the seam to s3sim.storage (see engine.py for the binding to the
storage engine); unit tests may pass an in-memory implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import field
from typing import Protocol

from kmscore.frozen import frozen
from s3sim.s3.errors import S3Error


@frozen
class BlobHeader:
    """What a blob's header binds; rebuilt from the index when the blob is read."""

    kind: str  # "object" | "part"
    object_id: str  # unique per blob: "<object id>" or "<object id>#<part number>"
    key_arn: str
    wrapped_key: bytes
    context: Mapping[str, str] = field(default_factory=dict)


@frozen
class Written:
    blob_id: str
    size: int
    md5_hex: str | None  # None when the writer asked for no MD5
    checksums: Mapping[str, str]  # algorithm -> base64
    inline: bytes | None = None  # an inline blob's sealed bytes: the index stores them


CORRUPT = "The stored object failed its integrity check and cannot be served."


class BlobReplaced(S3Error):
    """The version a reader looked up lost its blob before the reader opened it (replaced
    or deleted meanwhile, maybe by another process): a GET reads the key again; anything
    else answers SlowDown (503), which SDKs retry."""

    def __init__(self) -> None:
        super().__init__("SlowDown")


class BlobReader(Protocol):
    def iter_range(self, start: int, end: int) -> AsyncIterator[bytes]: ...

    def close(self) -> None:
        """Done reading: release what the reader holds (an open file)."""


class BlobStore(Protocol):
    async def write(
        self,
        chunks: AsyncIterator[bytes],
        data_key: bytes,
        header: BlobHeader,
        checksum_algorithms: tuple[str, ...],
        md5: bool = True,
        inline_max: int = 0,
    ) -> Written: ...

    async def open(
        self,
        blob_id: str,
        data_key: bytes,
        header: BlobHeader,
        size: int | None = None,
        span: tuple[int, int] | None = None,
    ) -> BlobReader:
        """`span`: the [start, end) to be read next (its first batch may be read now)."""
        ...

    def read_small(self, blob_id: str, data_key: bytes, header: BlobHeader, size: int) -> bytes: ...

    def read_sealed(
        self, sealed: bytes, blob_id: str, data_key: bytes, header: BlobHeader, size: int
    ) -> bytes: ...

    def open_sealed(
        self, sealed: bytes, blob_id: str, data_key: bytes, header: BlobHeader, size: int
    ) -> BlobReader: ...

    def delete(self, blob_id: str, grace: bool = True) -> None:
        """`grace=False`: gone at once even when other processes share the store."""

    def list_ids(self) -> Iterable[str]: ...


class Garbage:
    """Deletes replaced blobs, but only once no reader of this process has them pinned.

    A lone blob (a single-blob object's, or one nobody reads) goes at once, even when
    other processes share the store: a reader keeps such a file open from the moment it
    verified it, and one that finds it gone looks the key up again. The blobs of a
    multipart object keep the store's grace period (storage/blobstore.py): a GET opens
    each part's file when it gets there. Kept there, every replaced file was written back
    to disk and held its pages for 300 s: 64 MiB overwrites cost ~3x the server CPU
    (docs/PERFORMANCE.md, session 6)."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._pins: dict[str, int] = {}
        self._doomed: dict[str, bool] = {}  # pinned blob -> whether it keeps the grace

    def pin(self, blob_ids: Iterable[str]) -> Callable[[], None]:
        """Keep these blobs until the returned release function is called (once)."""
        ids = list(blob_ids)
        for b in ids:
            self._pins[b] = self._pins.get(b, 0) + 1

        def release() -> None:
            for b in ids:
                self._pins[b] -= 1
                if not self._pins[b]:
                    del self._pins[b]
                    if b in self._doomed:
                        self._delete(b, self._doomed.pop(b))

        return release

    def delete(self, blob_ids: Iterable[str]) -> None:
        ids = list(blob_ids)
        grace = len(ids) > 1
        for b in ids:
            if b in self._pins:
                self._doomed[b] = grace
            else:
                self._delete(b, grace)

    def _delete(self, blob_id: str, grace: bool) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._store.delete(blob_id, grace)

    def sweep(self, referenced: set[str]) -> int:
        """Remove blobs no committed row references (crash leftovers); returns the count."""
        orphans = [b for b in self._store.list_ids() if b not in referenced]
        self.delete(orphans)
        return len(orphans)
