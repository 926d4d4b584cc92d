"""Reading encrypted object files (docs/FORMAT.md): verify, then stream plaintext.

Opening checks the header against what the trusted index says, the key commitment,
the size, and the last chunk, before any byte is returned. A small file is read whole
and every chunk authenticated at open (on the event loop when the index says the
object is small: microseconds, far less than a thread hand-off); a big one is streamed
by executor jobs of READ_BATCH plaintext bytes, READ_AHEAD of them in flight, each
decrypting into a fresh buffer that is returned only once all its chunks authenticated.
Opened for a span, a big file is verified and that span's first batch decrypted in one
job, and the reader keeps the verified file open until closed: later batches read it
(not a file opened again by name), so a blob deleted meanwhile stays readable.
Every integrity failure is CorruptObject.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from kmscore import envelope as env
from kmscore.frozen import frozen
from s3sim.storage.blobstore import BlobStore
from s3sim.storage.errors import CorruptObject
from s3sim.storage.readjobs import job as _job
from s3sim.storage.readjobs import pread as _pread
from s3sim.storage.readjobs import preadv as _preadv

if TYPE_CHECKING:
    from s3sim.storage.objectfile import ObjectHeader

READ_BATCH = 1 << 20  # plaintext per read job
READ_AHEAD = 2  # read jobs in flight
RAW_READ = 256 << 10  # file bytes per read syscall of a read job
INLINE_PLAIN_MAX = 128 << 10  # objects this small are opened on the event loop ...
INLINE_FILE_MAX = 256 << 10  # ... and files this small are decrypted whole when opened
T = TypeVar("T")


# a file's decoded header, payload keys and offsets: all fixed by its lead and data key
_Derived = tuple[env.Header, env.PayloadCipher, env.Layout]


class VerifiedLeads:
    """Memo of header decoding and key derivation, keyed by the exact bytes they depend
    on (prefix + header + commitment, and the data key): a hit is what a fresh
    verification of those same bytes would give. Bounded; safe across threads."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._entries: dict[tuple[bytes, bytes], _Derived] = {}
        self._lock = threading.Lock()

    def get(self, lead: bytes, data_key: bytes) -> _Derived | None:
        return self._entries.get((lead, data_key))

    def put(self, lead: bytes, data_key: bytes, value: _Derived) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
            self._entries[(lead, data_key)] = value


@frozen
class Want:
    """What the caller (the trusted index) expects of a file."""

    data_key: bytes
    expected: ObjectHeader
    size: int | None = None
    salt: bytes | None = None
    leads: VerifiedLeads | None = None


@frozen
class _Verified:
    """A file whose header, commitment and size were checked against the index."""

    cipher: env.PayloadCipher
    header: env.Header
    layout: env.Layout
    size: int
    file_size: int


def _check_binding(header: env.Header, want: Want) -> None:
    e = want.expected
    env.check_binding(header, e.kind, e.object_id, e.key_arn, e.wrapped_key, e.context)
    if want.salt is not None and header.salt != want.salt:
        raise env.HeaderError("header salt does not match the index (another file)")


def _derive(lead: bytes, n: int, want: Want) -> _Derived:
    """Decode and check the header, derive the keys and check the commitment; or recall
    the outcome for these exact bytes and key (the binding is checked again)."""
    leads = want.leads
    hit = leads.get(lead, want.data_key) if leads is not None else None
    if hit is not None:
        _check_binding(hit[0], want)
        return hit
    p = env.PREFIX_LEN
    header = env.decode_header(lead[p : p + n])
    _check_binding(header, want)
    cipher = env.PayloadCipher(want.data_key, lead[: p + n], header.salt)
    cipher.check_commitment(lead[p + n :])
    derived = (header, cipher, env.Layout(n, header.chunk_size))
    if leads is not None:
        leads.put(lead, want.data_key, derived)
    return derived


def _verify_lead(lead: bytes, file_size: int, want: Want) -> _Verified:
    """`lead` is the file's first PREFIX_LEN + header + COMMIT_LEN bytes."""
    n = env.parse_prefix(lead[: env.PREFIX_LEN], file_size)
    header, cipher, layout = _derive(lead, n, want)
    plain = layout.plaintext_size(file_size)
    if want.size is not None and plain != want.size:
        raise env.PayloadError(f"object holds {plain} bytes, the index says {want.size}")
    return _Verified(cipher, header, layout, plain, file_size)


def _open_sync(
    store: BlobStore, blob_id: str, want: Want, nowait: bool = False
) -> tuple[_Verified, bytes | None]:
    """Verify a file; a small one (<= INLINE_FILE_MAX) is read whole and decrypted at
    once (its plaintext returned), a big one has only its last chunk checked."""
    fd = store.open_fd(blob_id)
    try:
        v, plain = _verify_fd(fd, want, nowait)
        if plain is None:
            _check_last(fd, v, nowait)
        return v, plain
    finally:
        os.close(fd)


def _verify_fd(fd: int, want: Want, nowait: bool = False) -> tuple[_Verified, bytes | None]:
    """A small file read whole and authenticated; of a big one, only the lead."""
    file_size = os.fstat(fd).st_size
    if file_size <= INLINE_FILE_MAX:
        return _verify_whole(_pread(fd, file_size, 0, nowait), want)
    n = env.parse_prefix(_pread(fd, env.PREFIX_LEN, 0, nowait), file_size)
    lead = bytes(_pread(fd, env.PREFIX_LEN + n + env.COMMIT_LEN, 0, nowait))
    return _verify_lead(lead, file_size, want), None


def _check_last(fd: int, v: _Verified, nowait: bool = False) -> None:
    last = v.layout.chunk_count(v.size) - 1
    off = v.layout.chunk_offset(last)
    v.cipher.open_chunk(last, _pread(fd, v.file_size - off, off, nowait), True)


def _open_ahead(
    store: BlobStore,
    blob_id: str,
    want: Want,
    executor: Executor | None,
    span: tuple[int, int],
    nowait: bool = False,
) -> ObjectReader:
    """Verify a file and decrypt the first batch of plaintext bytes [span) through the
    same descriptor, in one job: reading up to READ_BATCH bytes then takes one thread
    hand-off instead of three (verify, open, batch: ~95 us of CPU each on this project's
    VM, docs/PERFORMANCE.md, session 6)."""
    fd = store.open_fd(blob_id)
    try:
        v, plain = _verify_fd(fd, want, nowait)
        reader = ObjectReader(store, blob_id, v, plain, executor)
        if plain is None:
            reader.read_ahead(fd, *span, nowait)
            reader.hold(fd)
            fd = -1
        return reader
    finally:
        if fd >= 0:
            os.close(fd)


def _verify_whole(raw: bytes | bytearray, want: Want) -> tuple[_Verified, bytes]:
    """Verify a whole file held in memory and decrypt every chunk of it."""
    n = env.parse_prefix(raw[: env.PREFIX_LEN], len(raw))
    v = _verify_lead(bytes(raw[: env.PREFIX_LEN + n + env.COMMIT_LEN]), len(raw), want)
    lay, count = v.layout, v.layout.chunk_count(v.size)
    view = memoryview(raw)
    if count == 1:  # every inline blob, most small files
        return v, v.cipher.open_chunk(0, view[lay.chunk_offset(0) : lay.chunk_offset(1)], True)
    parts = [
        v.cipher.open_chunk(i, view[lay.chunk_offset(i) : lay.chunk_offset(i + 1)], i == count - 1)
        for i in range(count)
    ]
    return v, parts[0] if count == 1 else b"".join(parts)


class ObjectReader:
    """A verified object file; iter_range decrypts only the chunks a range covers
    (a small file's plaintext was authenticated whole when it was opened)."""

    def __init__(
        self,
        store: BlobStore | None,  # None: `plain` holds the whole object
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
        self._step = max(1, READ_BATCH // self._layout.chunk_size)  # chunks per read job
        # (start, end, next chunk, plaintext): iter_range(start, end)'s first batch
        self._ahead: tuple[int, int, int, bytes] | None = None
        self._held: weakref.finalize | None = None  # closes the verified file's descriptor
        self._fd = -1
        self.chunks_opened = self._last + 1 if plain is not None else 0

    def hold(self, fd: int) -> None:
        """Keep `fd`, the file this reader verified, open for its reads until close() (or
        until the reader is collected): a blob deleted meanwhile, even by another process,
        stays readable, and reads need no thread hand-off to open it again."""
        self._fd = fd
        self._held = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        """Release the held descriptor (reads in flight keep their own)."""
        if self._held is not None:
            self._held()
            self._held, self._fd = None, -1

    @property
    def plaintext(self) -> bytes | None:
        """The whole object, when it was authenticated whole at open (a small file)."""
        return self._plain

    def _open_chunks(
        self, fd: int, first: int, last: int, start: int, end: int, nowait: bool = False
    ) -> bytes:
        """Decrypt chunks first..last and keep plaintext bytes [start, end) of the object.

        Reads RAW_READ-sized runs of chunks into a pooled buffer and decrypts them into a
        fresh one (the consumer keeps it); nothing is returned unless every chunk of the
        batch authenticated."""
        lay, cs = self._layout, self._layout.chunk_size
        per_read = max(1, RAW_READ // lay.stride)
        pool = self._raw_pool
        buf = pool.pop() if pool else bytearray(per_read * lay.stride)
        base = first * cs
        out = bytearray(min((last + 1) * cs, self.size) - base)
        dst = memoryview(out)
        try:
            for run in range(first, last + 1, per_read):
                stop = min(run + per_read, last + 1)
                lo = lay.chunk_offset(run)
                raw = memoryview(buf)[: min(lay.chunk_offset(stop), self.file_size) - lo]
                _preadv(fd, raw, lo, nowait)
                for i in range(run, stop):
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

    def read_ahead(self, fd: int, start: int, end: int, nowait: bool = False) -> None:
        """Decrypt now, through `fd` (the verified file), the first batch of what
        iter_range(start, end) will read; the last chunk is authenticated first (or
        with the batch, when it holds it). An empty or invalid span reads nothing."""
        if not 0 <= start < end <= self.size:
            _check_last(fd, self._verified(), nowait)
            return
        span = self._layout.chunk_range_for(start, end, self.size)
        hi = min(span.first + self._step - 1, span.last)
        if hi != self._last:
            _check_last(fd, self._verified(), nowait)
        batch = self._open_chunks(fd, span.first, hi, start, end, nowait)
        self._ahead = (start, end, hi + 1, batch)

    def _verified(self) -> _Verified:
        return _Verified(self._cipher, self.header, self._layout, self.size, self.file_size)

    def _open_fd(self) -> int:
        assert self.store is not None  # a reader without a store has its plaintext
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
        step, after = self._step, span.first
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[:2] == (start, end):
            yield ahead[3]
            after = ahead[2]
            if after > span.last:
                return
        firsts = iter(range(after, span.last + 1, step))
        loop = asyncio.get_running_loop()
        if self._fd >= 0:
            fd = os.dup(self._fd)
        else:
            fd = await self._guard(loop.run_in_executor(self._executor, self._open_fd))
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
        return _job(self._executor, self._open_chunks, fd, first, hi, start, end)

    async def _guard(self, job: Awaitable[T]) -> T:
        try:  # shielded: a cancelled reader must not close the fd under a running job
            return await asyncio.shield(job)
        except env.EnvelopeError as e:
            raise CorruptObject(str(e), e.failure, self.blob_id) from None
        except OSError as e:
            raise CorruptObject(f"read failed: {e}", "payload", self.blob_id) from None


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


def _settle_sync(f: asyncio.Future) -> None:
    if f.done() and not f.cancelled():
        f.exception()


async def open_object(
    store: BlobStore,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    size: int | None = None,
    *,
    salt: bytes | None = None,
    executor: Executor | None = None,
    leads: VerifiedLeads | None = None,
    span: tuple[int, int] | None = None,
) -> ObjectReader:
    """Verify header (against `expected`, from the index), commitment, size and last chunk.

    `size` and `salt`, when the index keeps them, pin this exact file: with them even a
    file of the same object written earlier under the same data key is refused. An
    object the index says is small is verified on the event loop; others, and files
    bigger than the index says, in a thread. `leads` memoizes header decoding and key
    derivation across opens of the same file. `span`: the [start, end) the caller reads
    next; its first batch is read by the same job as the verification."""
    want = Want(data_key, expected, size, salt, leads)
    with _as_corrupt(blob_id):
        if size is not None and size <= INLINE_PLAIN_MAX:
            parts = _open_sync(store, blob_id, want)
        elif span is not None:
            return await _job(executor, _open_ahead, store, blob_id, want, executor, span)
        else:
            parts = await _job(executor, _open_sync, store, blob_id, want)
    return ObjectReader(store, blob_id, *parts, executor)


def read_small(
    store: BlobStore,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    size: int,
    *,
    leads: VerifiedLeads | None = None,
) -> bytes:
    """The whole plaintext of an object the index says is small (<= INLINE_PLAIN_MAX),
    read, verified and decrypted at once on the caller's thread: what open_object then
    iter_range would return, without the reader. Every failure is CorruptObject."""
    if size > INLINE_PLAIN_MAX:
        raise ValueError(f"{size} bytes is not a small object")
    with _as_corrupt(blob_id):
        _, plain = _open_sync(store, blob_id, Want(data_key, expected, size, None, leads))
    if plain is None:  # cannot happen for a file whose size matched the index
        raise CorruptObject("file too big for its plaintext size", "payload", blob_id)
    return plain


def open_sealed(
    sealed: bytes,
    blob_id: str,
    data_key: bytes,
    expected: ObjectHeader,
    size: int,
    *,
    leads: VerifiedLeads | None = None,
) -> ObjectReader:
    """A reader over an inline blob (a small object's sealed file, kept in the index),
    verified and decrypted whole now: every check `read_small` makes on a file, on these
    bytes (CorruptObject); `reader.plaintext` is the whole object."""
    with _as_corrupt(blob_id):
        verified, plain = _verify_whole(sealed, Want(data_key, expected, size, None, leads))
    return ObjectReader(None, blob_id, verified, plain, None)


@contextmanager
def _as_corrupt(blob_id: str) -> Iterator[None]:
    """Envelope and I/O errors of verifying a file, as CorruptObject."""
    try:
        yield
    except env.EnvelopeError as e:
        raise CorruptObject(str(e), e.failure, blob_id) from None
    except CorruptObject:
        raise
    except OSError as e:
        raise CorruptObject(f"read failed: {e}", "payload", blob_id) from None


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
