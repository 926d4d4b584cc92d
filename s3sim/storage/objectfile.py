"""Encrypted object files (docs/FORMAT.md) streamed to and from a BlobStore.

Writes re-chunk the incoming stream (each byte copied at most once, into a 1 MiB batch;
a whole batch inside one piece is sealed where it is), then hash and seal each batch in
two jobs side by side (hashlib releases the GIL, AES does not), one batch in flight
while the next one fills, so memory stays flat. With fsync the seal job (sealing,
writing, the final fsync) runs on an executor thread, so the event loop never waits on
the disk; without, nothing in it waits for the disk and it runs on the loop itself: a
thread hand-off costs more CPU here than sealing and writing 1 MiB into pages the kernel
already holds (docs/PERFORMANCE.md, session 7). Either way a seal job seals and writes
SLICE bytes of plaintext per step, and on the loop lets other tasks run between steps
every LOOP_TURN_S (session 8). A full batch's hash job always runs on a
thread (the last batch is hashed in its seal job). Reads (objectread.py, re-exported
here) verify the header against what the trusted index says and the file's last chunk
before returning any byte, then decrypt only the chunks a range needs. Every integrity
failure is CorruptObject; no unauthenticated byte is ever returned.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import field
from types import MappingProxyType
from typing import Any, TypeVar

from kmscore import envelope as env
from kmscore.frozen import frozen
from s3sim.storage import inline
from s3sim.storage.blobstore import BlobStore, BlobWriter
from s3sim.storage.checksums import MultiHasher
from s3sim.storage.errors import StorageError
from s3sim.storage.objectread import (  # noqa: F401 - the read side's public names
    INLINE_FILE_MAX,
    ObjectReader,
    VerifiedLeads,
    open_object,
    open_sealed,
    read_object,
    read_small,
)

Buffer = bytes | bytearray | memoryview
BATCH_BYTES = 1 << 20  # plaintext per write job
# A seal job seals and writes this much plaintext per step, in both modes. Sealed and
# written 1 MiB at a time, the copy into page-cache memory was the largest cost of an
# ingest (23% of all samples; 3-5% in 256 KiB steps: docs/PERFORMANCE.md, session 8).
SLICE = 256 << 10
# On the event loop a job lets other tasks run between steps once it held the loop this
# long, so a request behind it waits for a step or two, not a whole job.
LOOP_TURN_S = 0.0005
SMALL_OUT = 256 << 10  # sealed output up to this size gets its own exact-size buffer
T = TypeVar("T")


@frozen
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


@frozen
class WrittenObject:
    blob_id: str
    size: int  # plaintext bytes
    md5_hex: str | None  # None when the writer asked for no MD5
    checksums: Mapping[str, str]  # "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256" -> b64
    header_len: int
    chunk_size: int
    file_size: int
    salt: bytes  # unique per file; an index that keeps it can pin this exact file
    inline: bytes | None = None  # the sealed file of an inline blob (no file was written)


def _batch_bytes(chunk_size: int) -> int:
    return max(chunk_size, BATCH_BYTES // chunk_size * chunk_size)


def _job(executor: Executor | None, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` on an executor thread."""
    return asyncio.get_running_loop().run_in_executor(executor, fn, *args)


class BufferPool:
    """Write buffers kept for reuse (thread-safe): a fresh 1 MiB bytearray costs a zeroed
    allocation, and page faults, per batch or object. A buffer is given back only when
    no job uses it any more."""

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._free: list[bytearray] = []
        self._size = BATCH_BYTES + (BATCH_BYTES // env.MIN_CHUNK + 1) * env.TAG_LEN

    def take(self, n: int) -> bytearray:
        try:
            buf = self._free.pop()
        except IndexError:
            return bytearray(max(n, self._size))
        return buf if len(buf) >= n else bytearray(max(n, self._size))

    def give(self, buf: bytearray) -> None:
        if len(self._free) < self._keep:
            self._free.append(buf)


class _NoMd5:
    """MultiHasher's interface when no MD5 is wanted: only the checksums are computed."""

    def __init__(self, algs: tuple[str, ...]) -> None:
        self._rest = MultiHasher(algs) if algs else None

    def update(self, data: Buffer) -> None:
        if self._rest is not None:
            self._rest.update(data)

    def md5_hex(self) -> None:
        return None

    def checksums(self) -> dict[str, str]:
        return self._rest.checksums() if self._rest is not None else {}


class _Sealer:
    """The blocking half of a write, run in executor threads: seal jobs one at a time,
    each beside the hash job of the same batch (they share no state but `data`)."""

    def __init__(
        self,
        store: BlobStore,
        data_key: bytes,
        header: env.Header,
        algs: Iterable[str],
        pool: BufferPool,
        md5: bool = True,
    ):
        self.store = store
        self.header_bytes = env.encode_header(header)
        prefix = env.encode_prefix(self.header_bytes)
        self.cipher = env.PayloadCipher(data_key, prefix + self.header_bytes, header.salt)
        self.lead = prefix + self.header_bytes + self.cipher.commitment
        self.cs = header.chunk_size
        self.step = max(self.cs, SLICE // self.cs * self.cs)  # whole chunks per step
        algs = tuple(algs)
        self.hasher = MultiHasher(algs) if md5 else _NoMd5(algs)
        self.hashes = md5 or bool(algs)  # anything to compute at all
        self.index = 0
        self.size = 0
        self.writer: BlobWriter | None = None
        self.lock = threading.Lock()
        self.closed = False
        self.pool = pool
        self.out: bytearray | None = None  # sealed bytes of one job (they never overlap)

    def hash(self, data: Buffer) -> None:
        """Runs beside `seal` of the same batch: hashlib releases the GIL, AES does not."""
        self.hasher.update(data)

    def seal(self, data: Buffer, final: bool, fsync: bool, hash_too: bool) -> str | None:
        """Seal full chunks of `data` (and, if final, the short last one); write them."""
        with self.lock:
            if self.closed:
                raise StorageError("write aborted")
            view = memoryview(data)
            if hash_too:
                self.hasher.update(view)
            self.size += len(view)
            step = self.step
            for start in range(0, max(len(view), 1), step):
                part = view[start : start + step]
                sealed = self._seal_into(part, final and start + step >= len(view))
                if self.writer is None:
                    self.writer = self.store.create()
                    self.writer.writev([self.lead, sealed])
                else:
                    self.writer.write(sealed)
            if not final:
                return None
            self.closed = True
            blob_id = self.writer.commit(fsync)
            if self.out is not None:
                self.pool.give(self.out)
                self.out = None
            return blob_id

    def seal_inline(self, data: Buffer) -> bytes:
        """Seal a whole small body in memory: the bytes a file of it would hold."""
        with self.lock:
            view = memoryview(data)
            self.hasher.update(view)
            self.size += len(view)
            self.closed = True
            if len(view) < self.cs:  # one final chunk (a whole chunk is followed by an empty one)
                return self.lead + self.cipher.seal_chunk(self.index, view, True)
            return b"".join((self.lead, self._seal_into(view, True)))

    def _seal_into(self, view: memoryview, final: bool) -> memoryview:
        """Encrypt `view` (whole chunks, or anything if final) into the reused out buffer."""
        cs, tag = self.cs, env.TAG_LEN
        count = len(view) // cs + (1 if final else 0)
        need = len(view) + count * tag
        if final and self.out is None and need <= SMALL_OUT:
            dst = memoryview(bytearray(need))  # a small object: no 1 MiB pooled buffer
        else:
            if self.out is None or len(self.out) < need:
                self.out = self.pool.take(need)
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
    buffers: BufferPool | None = None,
    md5: bool = True,
    inline_max: int = 0,
) -> WrittenObject:
    """Encrypt a plaintext stream into a new committed blob; nothing is left on failure.

    `chunks` must not change a piece once it yielded it: a whole batch inside one piece
    is sealed from it, maybe on a thread after the next piece came.
    `buffers` lends batch buffers across writes (a fresh pool per call without it).
    `md5=False`: no MD5 at all (md5_hex None), for objects whose ETag is not one.
    `inline_max`: a body of at most this many bytes is sealed in memory, on the loop, and
    returned as `WrittenObject.inline` with an inline blob id; no file is written (the
    caller stores it, docs/FORMAT.md section 8). 0: never, not even an empty body (the
    caller has nowhere to keep the bytes)."""
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
    pool = BufferPool() if buffers is None else buffers
    sealer = _Sealer(store, data_key, full, checksum_algorithms, pool, md5)
    do_fsync = store.fsync if fsync is None else fsync
    here = not do_fsync  # seal jobs on the loop: none of them waits for the disk
    batch = _batch_bytes(chunk_size)
    fill: bytearray | None = None  # taken only once a batch is to be copied together
    small: list[bytes] = []  # until then, the (immutable) pieces themselves
    lent: memoryview | None = None  # a whole batch inside one piece: sealed from there
    pos = 0
    busy: bytearray | None = None  # the batch the pending jobs read
    pending: asyncio.Future[Any] | None = None
    try:
        async for piece in chunks:
            view, i = memoryview(piece), 0
            if fill is None and lent is None and pos + len(view) < batch:
                small.append(piece if type(piece) is bytes else bytes(piece))
                pos += len(view)
                continue
            while i < len(view):  # a huge piece becomes several bounded jobs
                if pos == batch:  # a full batch and more to come: seal it, fill another
                    if pending is not None:
                        await pending
                    data = lent if lent is not None else memoryview(fill)[:batch]
                    pending = _seal_batch(executor, here, sealer, data, do_fsync)
                    if here:  # its seal job: on the loop, a step at a time
                        await _seal_here(sealer, data, False, do_fsync, False)
                    if lent is None:  # the previous batch's jobs are done with their buffer
                        busy, fill = fill, busy if busy is not None else pool.take(batch)
                    lent, pos = None, 0
                if pos == 0 and len(view) - i >= batch:
                    # a whole batch inside one piece is sealed from there, not copied
                    lent, pos, i = view[i : i + batch], batch, i + batch
                    continue
                if fill is None:
                    fill = pool.take(batch)
                    _gather_into(fill, small)
                    small = []
                k = min(batch - pos, len(view) - i)
                fill[pos : pos + k] = view[i : i + k]
                pos, i = pos + k, i + k
        if pending is not None:
            await pending
        if inline_max and fill is None and lent is None and pos <= inline_max:  # no file
            sealed = sealer.seal_inline(_joined(small))
            return _written(sealer, full, inline.new_id(store.rng), sealed)
        # A small body is sealed, written and renamed in this one job; a full last batch
        # is sealed here too (not as its own job followed by an empty final one). Without
        # fsync on the loop too, though creating a file takes 20 us to 0.9 ms on this
        # machine's ext4 depending on churn: measured cheaper overall (session 7).
        last: Buffer = _last_batch(lent, fill, pos, small)
        if here:
            blob_id = await _seal_here(sealer, last, True, do_fsync, True)
        else:
            blob_id = await _job(executor, sealer.seal, last, True, do_fsync, True)
    except BaseException:
        await _abort(executor, sealer, pending)
        raise
    for buf in (fill, busy):  # every job that read them is done
        if buf is not None:
            pool.give(buf)
    assert blob_id is not None
    return _written(sealer, full, blob_id)


def _seal_batch(
    executor: Executor | None, here: bool, sealer: _Sealer, data: memoryview, fsync: bool
) -> asyncio.Future[Any] | None:
    """A full batch that is not the last: its hash job on a thread and, unless `here` (the
    caller then runs it on the loop, beside the hash job: `_seal_here`), its seal job,
    as one future."""
    hashed = _job(executor, sealer.hash, data) if sealer.hashes else None
    if here:
        return hashed
    seal = _job(executor, sealer.seal, data, False, fsync, False)
    return seal if hashed is None else asyncio.gather(hashed, seal)


async def _seal_here(
    sealer: _Sealer, data: Buffer, final: bool, fsync: bool, hash_too: bool
) -> str | None:
    """`sealer.seal` on the event loop one step at a time, letting other requests run
    between steps (every LOOP_TURN_S): a 1 MiB job takes up to ~3 ms here, and requests
    queued behind whole jobs waited that long each (docs/PERFORMANCE.md, session 8)."""
    view = memoryview(data)
    step = sealer.step
    start = 0
    turn = time.perf_counter()
    while len(view) - start > step:
        sealer.seal(view[start : start + step], False, fsync, hash_too)
        start += step
        if time.perf_counter() - turn >= LOOP_TURN_S:
            await asyncio.sleep(0)
            turn = time.perf_counter()
    return sealer.seal(view[start:], final, fsync, hash_too)


def _last_batch(
    lent: memoryview | None, fill: bytearray | None, pos: int, small: list[bytes]
) -> Buffer:
    if lent is not None:
        return lent
    return memoryview(fill)[:pos] if fill is not None else _joined(small)


def _written(
    sealer: _Sealer, header: env.Header, blob_id: str, sealed: bytes | None = None
) -> WrittenObject:
    hlen = len(sealer.header_bytes)
    return WrittenObject(
        blob_id,
        sealer.size,
        sealer.hasher.md5_hex(),
        sealer.hasher.checksums(),
        hlen,
        header.chunk_size,
        env.Layout(hlen, header.chunk_size).file_size(sealer.size),
        header.salt,
        sealed,
    )


def _gather_into(dst: bytearray, pieces: list[bytes]) -> None:
    pos = 0
    for p in pieces:
        dst[pos : pos + len(p)] = p
        pos += len(p)


def _joined(pieces: list[bytes]) -> bytes:
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


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
