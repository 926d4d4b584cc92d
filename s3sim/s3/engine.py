"""Binding of the S3 layer's BlobStore seam to the storage engine (s3sim.storage).

Storage errors that mean "this file is not what the index says" (tampering,
truncation, a swapped file) become S3 InternalError before any byte is sent; during
streaming they end the response with a broken connection (see s3sim.http.s3_objects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from s3sim.s3.blobs import CORRUPT, BlobHeader, BlobReplaced, Written
from s3sim.s3.codec import IdMemo
from s3sim.s3.errors import S3Error
from s3sim.storage.inline import is_inline


def _storage() -> tuple[Any, Any, Any]:
    from s3sim.storage import blobstore, errors, objectfile

    return blobstore, objectfile, errors


class EngineReader:
    def __init__(self, reader: Any, corrupt: type[Exception]) -> None:
        self._reader = reader
        self._corrupt = corrupt

    async def iter_range(self, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._reader.iter_range(start, end):
                yield chunk
        except self._corrupt:
            raise S3Error("InternalError", CORRUPT) from None

    def close(self) -> None:
        self._reader.close()


SHARED_GRACE = 300.0  # seconds a deleted blob stays readable by other processes


def spare_files(root: Path, clear: bool) -> Any:
    """The pool of deleted blob files that new blobs reuse (s3sim/storage/spares.py),
    one per process, shared by every store on the data dir's file system."""
    from s3sim.storage.spares import Spares

    return Spares(root, clear=clear)


class EngineStore:
    def __init__(
        self,
        root: Path,
        rng: Callable[[int], bytes],
        fsync: bool = True,
        sweep: bool = True,
        shared: bool = False,
        spares: Any = None,
        give_spares: bool = False,
        fan_out_ahead: bool = False,
    ) -> None:
        """`shared`: other server processes use the same files, so deleted blobs stay
        readable for SHARED_GRACE seconds (storage/blobstore.py). `spares` (spare_files):
        new blobs reuse its files; `give_spares`: deleted blobs go there. `fan_out_ahead`:
        create the fan-out directories in the background at the first write."""
        blobstore, objectfile, errors = _storage()
        self._objectfile = objectfile
        self._corrupt = errors.CorruptObject
        self._missing = errors.MissingBlob
        grace = SHARED_GRACE if shared else 0.0
        self._store = blobstore.BlobStore(
            root,
            fsync=fsync,
            rng=rng,
            sweep=sweep,
            grace_seconds=grace,
            spares=spares,
            give_spares=give_spares,
            fan_out_ahead=fan_out_ahead,
        )
        self._leads = objectfile.VerifiedLeads()
        self._expected = IdMemo[BlobHeader, Any](self._convert)
        self._buffers = objectfile.BufferPool()
        self._fsync = fsync
        self._rng = rng

    def _header(self, h: BlobHeader) -> Any:
        return self._expected.get(h)  # a model's header object comes back on every GET

    def _convert(self, h: BlobHeader) -> Any:
        return self._objectfile.ObjectHeader(
            kind=h.kind,
            object_id=h.object_id,
            key_arn=h.key_arn,
            wrapped_key=h.wrapped_key,
            context=dict(h.context),
        )

    async def write(
        self,
        chunks: AsyncIterator[bytes],
        data_key: bytes,
        header: BlobHeader,
        checksum_algorithms: tuple[str, ...],
        md5: bool = True,
        inline_max: int = 0,
    ) -> Written:
        """`inline_max`: a body this small comes back sealed (`Written.inline`), no file."""
        w = await self._objectfile.write_object(
            self._store,
            chunks,
            data_key,
            self._convert(header),  # a new blob's header: nothing to remember
            checksum_algorithms,
            self._fsync,
            buffers=self._buffers,
            md5=md5,
            inline_max=inline_max,
        )
        return Written(w.blob_id, w.size, w.md5_hex, dict(w.checksums), w.inline)

    async def open(
        self,
        blob_id: str,
        data_key: bytes,
        header: BlobHeader,
        size: int | None = None,
        span: tuple[int, int] | None = None,
    ) -> EngineReader:
        try:
            reader = await self._objectfile.open_object(
                self._store,
                blob_id,
                data_key,
                self._header(header),
                size,
                leads=self._leads,
                span=span,
            )
        except self._missing:
            raise BlobReplaced from None  # deleted since its row was read: read the row again
        except self._corrupt:
            raise S3Error("InternalError", CORRUPT) from None
        return EngineReader(reader, self._corrupt)

    def read_small(self, blob_id: str, data_key: bytes, header: BlobHeader, size: int) -> bytes:
        """A small blob's whole plaintext, verified, at once (no reader, no thread)."""
        try:
            return self._objectfile.read_small(
                self._store, blob_id, data_key, self._header(header), size, leads=self._leads
            )
        except self._missing:
            raise BlobReplaced from None
        except self._corrupt:
            raise S3Error("InternalError", CORRUPT) from None

    def read_sealed(
        self, sealed: bytes, blob_id: str, data_key: bytes, header: BlobHeader, size: int
    ) -> bytes:
        """An inline blob's whole plaintext, verified (its sealed bytes come from the index)."""
        plain = self._sealed_reader(sealed, blob_id, data_key, header, size).plaintext
        assert plain is not None  # a sealed blob is always read whole
        return plain

    def open_sealed(
        self, sealed: bytes, blob_id: str, data_key: bytes, header: BlobHeader, size: int
    ) -> EngineReader:
        reader = self._sealed_reader(sealed, blob_id, data_key, header, size)
        return EngineReader(reader, self._corrupt)

    def _sealed_reader(
        self, sealed: bytes, blob_id: str, data_key: bytes, header: BlobHeader, size: int
    ) -> Any:
        try:
            return self._objectfile.open_sealed(
                sealed, blob_id, data_key, self._header(header), size, leads=self._leads
            )
        except self._corrupt:
            raise S3Error("InternalError", CORRUPT) from None

    def delete(self, blob_id: str, grace: bool = True) -> None:
        if not is_inline(blob_id):  # an inline blob went with its index row
            self._store.delete(blob_id, grace)

    def list_ids(self) -> Iterable[str]:
        return self._store.list_ids()
