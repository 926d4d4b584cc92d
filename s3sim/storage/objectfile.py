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
import itertools
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from kmscore import envelope as env
from s3sim.storage.blobstore import BlobStore, BlobWriter
from s3sim.storage.checksums import MultiHasher
from s3sim.storage.errors import CorruptObject, StorageError

Buffer = bytes | bytearray | memoryview
BATCH_BYTES = 1 << 20  # plaintext per write job
READ_BATCH = 1 << 20  # plaintext per read job
READ_AHEAD = 2  # read jobs in flight
RAW_READ = 256 << 10  # file bytes per read syscall of a read job
INLINE_PLAIN_MAX = 128 << 10  # objects this small are opened on the event loop ...
INLINE_FILE_MAX = 256 << 10  # ... and files this small are decrypted whole when opened
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
        self.out = bytearray(0)  # sealed bytes of one job (jobs never overlap: lock)

    def hash(self, data: Buffer) -> None:
        """Runs beside `seal` of the same batch: hashlib releases the GIL, AES does not."""
        self.hasher.update(data)

    def seal(self, data: Buffer, final: bool, fsync: bool, hash_too: bool) -> str | None:
        """Seal full chunks of `data` (and, if final, the short last one); write them."""
        with self.lock:
            if self.closed:
                raise StorageError("write aborted")
            if self.writer is None:
                self.writer = self.store.create()
                self.writer.write(self.lead)
            view = memoryview(data)
            if hash_too:
                self.hasher.update(view)
            self.size += len(view)
            self.writer.write(self._seal_into(view, final))
            if not final:
                return None
            self.closed = True
            return self.writer.commit(fsync)

    def _seal_into(self, view: memoryview, final: bool) -> memoryview:
        """Encrypt `view` (whole chunks, or anything if final) into the reused out buffer."""
        cs, tag = self.cs, env.TAG_LEN
        count = len(view) // cs + (1 if final else 0)
        need = len(view) + count * tag
        if len(self.out) < need:
            self.out = bytearray(need)
        dst = memoryview(self.out)
        for k in range(count):
            pt = view[k * cs : (k + 1) * cs]
            o = k * (cs + tag)
            last = final and k == count - 1
            self.cipher.seal_chunk_into(self.index, pt, last, dst[o : o + len(pt) + tag])
            self.index += 1
        return dst[:need]

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
    batch = _batch_bytes(chunk_size)
    fill, pos = bytearray(batch), 0
    pending: asyncio.Future[Any] | None = None
    loop = asyncio.get_running_loop()
    try:
        async for piece in chunks:
            view, i = memoryview(piece), 0
            while i < len(view):  # a huge piece becomes several bounded jobs
                k = min(batch - pos, len(view) - i)
                fill[pos : pos + k] = view[i : i + k]
                pos, i = pos + k, i + k
                if pos < batch:
                    break
                if pending is not None:
                    await pending
                pending = asyncio.gather(
                    loop.run_in_executor(executor, sealer.hash, fill),
                    loop.run_in_executor(executor, sealer.seal, fill, False, do_fsync, False),
                )
                fill, pos = bytearray(batch), 0
        if pending is not None:
            await pending
        tail = memoryview(fill)[:pos]
        if not do_fsync and pos <= INLINE_PLAIN_MAX:  # no disk wait: cheaper than a hop
            blob_id = sealer.seal(tail, True, False, True)
        else:
            blob_id = await _run(executor, sealer.seal, tail, True, do_fsync, True)
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


def _close_after(jobs: list[asyncio.Future], fd: int) -> None:
    """Close fd now, or once the abandoned jobs that read it are done (no await needed)."""
    left = [j for j in jobs if not j.done()]
    for j in jobs:
        _settle_sync(j)
    if not left:
        os.close(fd)
        return
    count = [len(left)]

    def done(f: asyncio.Future) -> None:
        _settle_sync(f)
        count[0] -= 1
        if not count[0]:
            os.close(fd)

    for j in left:
        j.add_done_callback(done)


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


def _preadv(fd: int, buf: memoryview, offset: int) -> None:
    if os.preadv(fd, [buf], offset) != len(buf):
        raise env.PayloadError("short read (file changed under the reader?)")


def _compare(found: env.Header, expected: ObjectHeader) -> None:
    env.check_binding(
        found,
        expected.kind,
        expected.object_id,
        expected.key_arn,
        expected.wrapped_key,
        expected.context,
    )


@dataclass(frozen=True)
class _Verified:
    """A file whose header, commitment and size were checked against the index."""

    cipher: env.PayloadCipher
    header: env.Header
    layout: env.Layout
    size: int
    file_size: int


def _verify_lead(
    prefix: bytes,
    header_bytes: bytes,
    commitment: bytes,
    file_size: int,
    data_key: bytes,
    expected: ObjectHeader,
    size: int | None,
    salt: bytes | None,
) -> _Verified:
    header = env.decode_header(header_bytes)
    _compare(header, expected)
    if salt is not None and header.salt != salt:
        raise env.HeaderError("header salt does not match the index (another file)")
    cipher = env.PayloadCipher(data_key, prefix + header_bytes, header.salt)
    cipher.check_commitment(commitment)
    layout = env.Layout(len(header_bytes), header.chunk_size)
    plain = layout.plaintext_size(file_size)
    if size is not None and plain != size:
        raise env.PayloadError(f"object holds {plain} bytes, the index says {size}")
    return _Verified(cipher, header, layout, plain, file_size)


def _open_sync(
    store: BlobStore,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    size: int | None,
    salt: bytes | None,
) -> tuple[_Verified, bytes | None]:
    """Verify a file; a small one (<= INLINE_FILE_MAX) is read whole and decrypted at
    once (its plaintext returned), a big one has only its last chunk checked."""
    fd = store.open_fd(blob_id)
    try:
        file_size = os.fstat(fd).st_size
        if file_size <= INLINE_FILE_MAX:
            return _verify_whole(_pread(fd, file_size, 0), data_key, expected, size, salt)
        prefix = _pread(fd, env.PREFIX_LEN, 0)
        n = env.parse_prefix(prefix, file_size)
        lead = _pread(fd, n + env.COMMIT_LEN, env.PREFIX_LEN)
        v = _verify_lead(prefix, lead[:n], lead[n:], file_size, data_key, expected, size, salt)
        last = v.layout.chunk_count(v.size) - 1
        off = v.layout.chunk_offset(last)
        v.cipher.open_chunk(last, _pread(fd, file_size - off, off), True)
    finally:
        os.close(fd)
    return v, None


def _verify_whole(
    raw: bytes, data_key: bytes, expected: ObjectHeader, size: int | None, salt: bytes | None
) -> tuple[_Verified, bytes]:
    """Verify a whole file held in memory and decrypt every chunk of it."""
    p = env.PREFIX_LEN
    n = env.parse_prefix(raw[:p], len(raw))
    head, commit = raw[p : p + n], raw[p + n : p + n + env.COMMIT_LEN]
    v = _verify_lead(raw[:p], head, commit, len(raw), data_key, expected, size, salt)
    lay, count = v.layout, v.layout.chunk_count(v.size)
    view = memoryview(raw)
    parts = [
        v.cipher.open_chunk(i, view[lay.chunk_offset(i) : lay.chunk_offset(i + 1)], i == count - 1)
        for i in range(count)
    ]
    return v, parts[0] if count == 1 else b"".join(parts)


class ObjectReader:
    """A verified object file; iter_range decrypts only the chunks a range covers.

    A small file was decrypted whole when it was opened (every chunk authenticated);
    a big one is read in READ_BATCH jobs, READ_AHEAD of them in flight."""

    def __init__(
        self,
        store: BlobStore,
        blob_id: str,
        verified: _Verified,
        plain: bytes | None,
        executor: Executor | None,
    ) -> None:
        self.store, self.blob_id, self.header = store, blob_id, verified.header
        self.size, self.file_size = verified.size, verified.file_size
        self._cipher, self._layout, self._executor = verified.cipher, verified.layout, executor
        self._last = self._layout.chunk_count(self.size) - 1
        self._plain = plain
        self._raw_pool: list[bytearray] = []
        self.chunks_opened = self._last + 1 if plain is not None else 0

    def _open_chunks(self, fd: int, first: int, last: int, start: int, end: int) -> bytes:
        """Decrypt chunks first..last and keep plaintext bytes [start, end) of the object.

        Reads RAW_READ-sized runs of chunks into a pooled buffer and decrypts them into a
        fresh one (the consumer keeps it); nothing is returned unless every chunk of the
        batch authenticated."""
        lay, cs = self._layout, self._layout.chunk_size
        per_read = max(1, RAW_READ // lay.stride)
        pool = self._raw_pool
        buf = pool.pop() if pool else bytearray(per_read * lay.stride)
        if len(buf) < per_read * lay.stride:
            buf = bytearray(per_read * lay.stride)
        base = first * cs
        out = bytearray(min((last + 1) * cs, self.size) - base)
        dst = memoryview(out)
        try:
            for run in range(first, last + 1, per_read):
                lo = lay.chunk_offset(run)
                hi = min(lay.chunk_offset(min(run + per_read, last + 1)), self.file_size)
                raw = memoryview(buf)[: hi - lo]
                _preadv(fd, raw, lo)
                for i in range(run, min(run + per_read, last + 1)):
                    ct = raw[(i - run) * lay.stride : (i - run + 1) * lay.stride]
                    p = i * cs - base
                    self._cipher.open_chunk_into(
                        i, ct, i == self._last, dst[p : p + len(ct) - env.TAG_LEN]
                    )
                raw.release()
            self.chunks_opened += last + 1 - first
        finally:
            pool.append(buf)
        lo_keep, hi_keep = max(start - base, 0), min(end - base, len(out))
        if lo_keep == 0 and hi_keep == len(out):
            return out  # type: ignore[return-value]  # bytes-like, never written again
        return bytes(dst[lo_keep:hi_keep])

    def _open_fd(self) -> int:
        fd = self.store.open_fd(self.blob_id)
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
        if self._plain is not None:
            yield self._plain[start:end]
            return
        span = self._layout.chunk_range_for(start, end, self.size)
        step = max(1, READ_BATCH // self._layout.chunk_size)
        firsts = iter(range(span.first, span.last + 1, step))
        fd = await self._guard(_run(self._executor, self._open_fd))
        jobs: deque[asyncio.Future[bytes]] = deque()
        try:
            for first in itertools.islice(firsts, READ_AHEAD):
                jobs.append(self._batch(fd, first, span.last, step, start, end))
            while jobs:
                data = await self._guard(jobs[0])
                jobs.popleft()
                nxt = next(firsts, None)
                if nxt is not None:
                    jobs.append(self._batch(fd, nxt, span.last, step, start, end))
                yield data
        finally:
            _close_after(list(jobs), fd)

    def _batch(
        self, fd: int, first: int, last: int, step: int, start: int, end: int
    ) -> asyncio.Future[bytes]:
        hi = min(first + step - 1, last)
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._open_chunks, fd, first, hi, start, end)

    async def _guard(self, job: Awaitable[T]) -> T:
        try:  # shielded: a cancelled reader must not close the fd under a running job
            return await asyncio.shield(job)
        except env.EnvelopeError as e:
            raise CorruptObject(str(e), e.failure, self.blob_id) from None
        except OSError as e:
            raise CorruptObject(f"read failed: {e}", "payload", self.blob_id) from None


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
    file of the same object written earlier under the same data key is refused. An
    object the index says is small is verified on the event loop (microseconds: far less
    than a thread hand-off); others, and files bigger than the index says, in a thread."""
    args = (store, blob_id, data_key, expected, size, salt)
    try:
        if size is not None and size <= INLINE_PLAIN_MAX:
            parts = _open_sync(*args)
        else:
            parts = await _run(executor, _open_sync, *args)
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
