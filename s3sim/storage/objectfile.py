"""Encrypted object files (docs/FORMAT.md) streamed to and from a BlobStore.

Writes re-chunk the incoming stream, hash, seal and write it in 1 MiB batches in a
thread executor (one batch in flight while the next one fills), so memory stays flat
and the event loop never waits on disk, hashing or AES. Reads verify the header
against what the trusted index says and the file's last chunk before returning any
byte, then decrypt only the chunks a range needs. Every integrity failure is
CorruptObject; no unauthenticated byte is ever returned.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from kmscore import envelope as env
from s3sim.storage.blobstore import BlobStore, BlobWriter
from s3sim.storage.checksums import MultiHasher
from s3sim.storage.errors import CorruptObject, StorageError

BATCH_BYTES = 1 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class ObjectHeader:
    """What a file's header binds, as the index knows it (salt and chunk size are added
    by the writer). Also the expected header given to open_object."""

    kind: str  # "object" | "part" | "staging"
    object_id: str
    key_arn: str
    wrapped_key: bytes
    context: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # written, not compared

    def __post_init__(self) -> None:
        object.__setattr__(self, "context", MappingProxyType(dict(self.context)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))


ExpectedHeader = ObjectHeader


@dataclass(frozen=True)
class WrittenObject:
    blob_id: str
    size: int  # plaintext bytes
    md5_hex: str
    checksums: Mapping[str, str]  # "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256" -> b64
    header_len: int
    chunk_size: int
    file_size: int
    salt: bytes  # unique per file; an index that keeps it can pin this exact file


def _batch_bytes(chunk_size: int) -> int:
    return max(chunk_size, BATCH_BYTES // chunk_size * chunk_size)


async def _run(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


class _Sealer:
    """The blocking half of a write, run in executor threads: seal jobs one at a time,
    each beside the hash job of the same batch (they share no state but `data`)."""

    def __init__(self, store: BlobStore, data_key: bytes, header: env.Header, algs: Iterable[str]):
        self.store = store
        self.header_bytes = env.encode_header(header)
        prefix = env.encode_prefix(self.header_bytes)
        self.cipher = env.PayloadCipher(data_key, prefix + self.header_bytes, header.salt)
        self.lead = prefix + self.header_bytes + self.cipher.commitment
        self.cs = header.chunk_size
        self.hasher = MultiHasher(algs)
        self.index = 0
        self.size = 0
        self.writer: BlobWriter | None = None
        self.lock = threading.Lock()
        self.closed = False

    def hash(self, data: bytes) -> None:
        """Runs beside `seal` of the same batch: hashlib releases the GIL, AES does not."""
        self.hasher.update(data)

    def seal(self, data: bytes, final: bool, fsync: bool, hash_too: bool) -> str | None:
        """Seal full chunks of `data` (and, if final, the short last one); write them."""
        with self.lock:
            if self.closed:
                raise StorageError("write aborted")
            if self.writer is None:
                self.writer = self.store.create()
                out: list[bytes | memoryview] = [self.lead]
            else:
                out = []
            view = memoryview(data)
            if hash_too:
                self.hasher.update(view)
            self.size += len(data)
            for off in range(0, len(data) - (len(data) % self.cs if final else 0), self.cs):
                out.append(self.cipher.seal_chunk(self.index, view[off : off + self.cs], False))
                self.index += 1
            if final:
                tail = view[len(data) - len(data) % self.cs :]
                out.append(self.cipher.seal_chunk(self.index, tail, True))
            self.writer.writev(out)
            if not final:
                return None
            self.closed = True
            return self.writer.commit(fsync)

    def abort(self) -> None:
        with self.lock:
            self.closed = True
            if self.writer is not None:
                self.writer.abort()


async def write_object(
    store: BlobStore,
    chunks: AsyncIterator[bytes],
    data_key: bytes,
    header: ObjectHeader,
    checksum_algorithms: Iterable[str] = (),
    fsync: bool | None = None,
    *,
    chunk_size: int = env.DEFAULT_CHUNK_SIZE,
    executor: Executor | None = None,
) -> WrittenObject:
    """Encrypt a plaintext stream into a new committed blob; nothing is left on failure."""
    full = env.Header(
        header.kind,
        header.object_id,
        header.key_arn,
        header.wrapped_key,
        header.context,
        store.rng(env.SALT_LEN),
        chunk_size,
        extra=header.extra,
    )
    sealer = _Sealer(store, data_key, full, checksum_algorithms)
    do_fsync = store.fsync if fsync is None else fsync
    batch, buf = _batch_bytes(chunk_size), bytearray()
    pending: asyncio.Future[Any] | None = None
    loop = asyncio.get_running_loop()
    try:
        async for piece in chunks:
            buf += piece
            off = 0
            while len(buf) - off >= batch:  # a huge piece becomes several bounded jobs
                data = bytes(buf[off : off + batch])
                off += batch
                if pending is not None:
                    await pending
                pending = asyncio.gather(
                    loop.run_in_executor(executor, sealer.hash, data),
                    loop.run_in_executor(executor, sealer.seal, data, False, do_fsync, False),
                )
            if off:
                del buf[:off]
        if pending is not None:
            await pending
        blob_id = await _run(executor, sealer.seal, bytes(buf), True, do_fsync, True)
    except BaseException:
        await _abort(executor, sealer, pending)
        raise
    assert blob_id is not None
    hlen = len(sealer.header_bytes)
    return WrittenObject(
        blob_id,
        sealer.size,
        sealer.hasher.md5_hex(),
        sealer.hasher.checksums(),
        hlen,
        chunk_size,
        env.Layout(hlen, chunk_size).file_size(sealer.size),
        full.salt,
    )


def _close_after(job: asyncio.Future | None, fd: int) -> None:
    """Close fd now, or once an abandoned job that reads it is done (no await needed)."""
    if job is None or job.done():
        _settle_sync(job)
        os.close(fd)
        return

    def done(f: asyncio.Future) -> None:
        _settle_sync(f)
        os.close(fd)

    job.add_done_callback(done)


def _settle_sync(f: asyncio.Future | None) -> None:
    if f is not None and f.done() and not f.cancelled():
        f.exception()


async def _abort(
    executor: Executor | None, sealer: _Sealer, pending: asyncio.Future | None
) -> None:
    """Remove the temp file once no job uses it, even if we are being cancelled."""
    await _settle(pending)
    await _settle(asyncio.get_running_loop().run_in_executor(executor, sealer.abort))


async def _settle(fut: asyncio.Future | None) -> None:
    """Wait for a job nobody will consume (it may still use a file descriptor)."""
    if fut is None:
        return
    try:
        await asyncio.shield(fut)
    except BaseException:  # noqa: S110 - an abandoned job's outcome does not matter
        if fut.done() and not fut.cancelled():
            fut.exception()


def _pread(fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset)
    if len(data) != n:
        raise env.PayloadError("short read (file changed under the reader?)")
    return data


def _compare(found: env.Header, expected: ObjectHeader) -> None:
    env.check_binding(
        found,
        expected.kind,
        expected.object_id,
        expected.key_arn,
        expected.wrapped_key,
        expected.context,
    )


class ObjectReader:
    """A verified object file; iter_range decrypts only the chunks a range covers."""

    def __init__(
        self,
        store: BlobStore,
        blob_id: str,
        cipher: env.PayloadCipher,
        header: env.Header,
        layout: env.Layout,
        size: int,
        file_size: int,
        executor: Executor | None,
    ) -> None:
        self.store, self.blob_id, self.header = store, blob_id, header
        self.size, self.file_size = size, file_size
        self._cipher, self._layout, self._executor = cipher, layout, executor
        self._last = layout.chunk_count(size) - 1
        self.chunks_opened = 0

    def _open_chunks(self, fd: int, first: int, last: int, start: int, end: int) -> bytes:
        """Decrypt chunks first..last and keep plaintext bytes [start, end) of the object."""
        lay, cs = self._layout, self._layout.chunk_size
        lo = lay.chunk_offset(first)
        hi = min(lay.chunk_offset(last + 1), self.file_size)
        raw = memoryview(_pread(fd, hi - lo, lo))
        out = []
        for i in range(first, last + 1):
            off = lay.chunk_offset(i) - lo
            plain = self._cipher.open_chunk(i, raw[off : off + lay.stride], i == self._last)
            self.chunks_opened += 1
            base = i * cs
            out.append(plain[max(start - base, 0) : max(min(end - base, len(plain)), 0)])
        return b"".join(out)

    def _open_fd(self) -> int:
        f = self.store.open_read(self.blob_id)
        fd = os.dup(f.fileno())
        f.close()
        if os.fstat(fd).st_size != self.file_size:
            os.close(fd)
            raise env.PayloadError("file size changed since it was verified")
        return fd

    async def iter_range(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Plaintext bytes [start, end) (end exclusive, default: to the end of the object)."""
        end = self.size if end is None else end
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside object of {self.size} bytes")
        if start == end:
            return
        span = self._layout.chunk_range_for(start, end, self.size)
        step = max(1, BATCH_BYTES // self._layout.chunk_size)
        fd = await self._guard(self._open_fd)
        job: asyncio.Future[bytes] | None = None
        try:
            firsts = list(range(span.first, span.last + 1, step))
            job = self._batch(fd, firsts[0], span.last, step, start, end)
            for k in range(len(firsts)):
                data = await job
                job = None
                if k + 1 < len(firsts):
                    job = self._batch(fd, firsts[k + 1], span.last, step, start, end)
                yield data
        finally:
            _close_after(job, fd)

    def _batch(
        self, fd: int, first: int, last: int, step: int, start: int, end: int
    ) -> asyncio.Future[bytes]:
        hi = min(first + step - 1, last)
        return asyncio.ensure_future(self._guard(self._open_chunks, fd, first, hi, start, end))

    async def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await _run(self._executor, fn, *args)
        except env.EnvelopeError as e:
            raise CorruptObject(str(e), e.failure, self.blob_id) from None
        except OSError as e:
            raise CorruptObject(f"read failed: {e}", "payload", self.blob_id) from None


def _open_sync(
    store: BlobStore,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    size: int | None,
    salt: bytes | None,
) -> tuple[env.PayloadCipher, env.Header, env.Layout, int, int]:
    with store.open_read(blob_id) as f:
        fd = f.fileno()
        file_size = os.fstat(fd).st_size
        prefix = os.pread(fd, env.PREFIX_LEN, 0)
        n = env.parse_prefix(prefix, file_size)
        header_bytes = _pread(fd, n, env.PREFIX_LEN)
        header = env.decode_header(header_bytes)
        _compare(header, expected)
        if salt is not None and header.salt != salt:
            raise env.HeaderError("header salt does not match the index (another file)")
        cipher = env.PayloadCipher(data_key, prefix + header_bytes, header.salt)
        cipher.check_commitment(_pread(fd, env.COMMIT_LEN, env.PREFIX_LEN + n))
        layout = env.Layout(n, header.chunk_size)
        plain = layout.plaintext_size(file_size)
        if size is not None and plain != size:
            raise env.PayloadError(f"object holds {plain} bytes, the index says {size}")
        last = layout.chunk_count(plain) - 1
        off = layout.chunk_offset(last)
        cipher.open_chunk(last, _pread(fd, file_size - off, off), True)
    return cipher, header, layout, plain, file_size


async def open_object(
    store: BlobStore,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    size: int | None = None,
    *,
    salt: bytes | None = None,
    executor: Executor | None = None,
) -> ObjectReader:
    """Verify header (against `expected`, from the index), commitment, size and last chunk.

    `size` and `salt`, when the index keeps them, pin this exact file: with them even a
    file of the same object written earlier under the same data key is refused."""
    try:
        parts = await _run(executor, _open_sync, store, blob_id, data_key, expected, size, salt)
    except env.EnvelopeError as e:
        raise CorruptObject(str(e), e.failure, blob_id) from None
    except CorruptObject:
        raise
    except OSError as e:
        raise CorruptObject(f"read failed: {e}", "payload", blob_id) from None
    return ObjectReader(store, blob_id, *parts, executor)


async def read_object(
    store: BlobStore,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    start: int = 0,
    end: int | None = None,
) -> AsyncIterator[bytes]:
    """open_object + iter_range in one call."""
    reader = await open_object(store, blob_id, data_key, expected)
    async for piece in reader.iter_range(start, end):
        yield piece
