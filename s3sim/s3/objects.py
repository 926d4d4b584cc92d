"""Object operations: put, get, head, delete, delete many, copy."""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace

from kmscore.caller import Caller
from s3sim.s3 import codec
from s3sim.s3.blobs import CORRUPT, BlobHeader, BlobReader, BlobReplaced, Written
from s3sim.s3.core import Core, check_key
from s3sim.s3.errors import S3Error
from s3sim.s3.models import (
    BucketInfo,
    ChecksumRequest,
    Conditions,
    CustomerKey,
    DeleteResult,
    GetResult,
    ObjectInfo,
    PutResult,
    Segment,
    SseRecord,
    SseRequest,
)
from s3sim.s3.reading import (
    Body,
    check_conditions,
    plan_segments,
    segment_header,
    select_span,
)
from s3sim.s3.sse import KMS, SSEC
from s3sim.storage import inline
from s3sim.storage.index import ObjectRow

OPAQUE_ETAG = (KMS, SSEC)  # algorithms whose objects' ETag is not the data's MD5

MAX_PUT = 5 * 1024**3
MAX_METADATA = 2048
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")
READ_TRIES = 3  # a GET that keeps finding its blob replaced gives up (SlowDown)


def blob_header(kind: str, object_id: str, sse: SseRecord) -> BlobHeader:
    return BlobHeader(kind, object_id, sse.key_arn or sse.algorithm, sse.wrapped_key, sse.context)


def check_metadata(metadata: Mapping[str, str]) -> None:
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA:
        raise S3Error("MetadataTooLarge")


def check_checksum_request(ck: ChecksumRequest | None) -> tuple[str, ...]:
    """Validate what can be validated before the body is read; the algorithms to compute."""
    if ck is None:
        return ()
    if ck.content_md5 is not None:
        try:
            if len(b64decode(ck.content_md5, validate=True)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            raise S3Error("InvalidDigest") from None
    if ck.algorithm is None:
        return ()
    if ck.algorithm not in CHECKSUM_ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {ck.algorithm} is not supported")
    return (ck.algorithm,)


def verify_written(w: Written, ck: ChecksumRequest | None) -> dict[str, str]:
    """Compare the body's digests with what the client sent; the checksums to store."""
    if ck is None:
        return {}
    if ck.content_md5 is not None:
        if b64decode(ck.content_md5) != bytes.fromhex(w.md5_hex):
            raise S3Error("BadDigest", ExpectedDigest=ck.content_md5)
    if ck.algorithm is None:
        return {}
    expected = ck.value if ck.value is not None else (ck.trailer() if ck.trailer else None)
    actual = w.checksums[ck.algorithm]
    if expected is not None and expected != actual:
        raise S3Error(
            "BadDigest", f"The {ck.algorithm} you specified did not match the calculated checksum."
        )
    return {ck.algorithm: actual}


class Objects:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._decoder = codec.RowMemo(codec.object_from_row)
        # a one-blob object's header, rebuilt from its (shared, cached) model once
        self._first_header = codec.IdMemo[ObjectInfo, BlobHeader](lambda i: segment_header(i, 0))

    @property
    def core(self) -> Core:
        return self._core

    # -- write ---------------------------------------------------------------------

    async def put(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        body: AsyncIterator[bytes],
        *,
        sse: SseRequest,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        checksum: ChecksumRequest | None = None,
        size_hint: int | None = None,
        write_conditions: Conditions | None = None,
    ) -> PutResult:
        check_key(key)
        if size_hint is not None and size_hint > MAX_PUT:
            raise S3Error(
                "EntityTooLarge", MaxSizeAllowed=str(MAX_PUT), ProposedSize=str(size_hint)
            )
        if self._core.is_staging(bucket):
            return await self._put_staging(caller, key, body, content_type, size_hint)
        info = self._core.bucket(caller, bucket, "s3:PutObject")
        check_metadata(metadata or {})
        obj = await self.store_object(
            caller,
            info,
            key,
            body,
            sse,
            content_type,
            metadata or {},
            headers or {},
            checksum,
            write_conditions,
        )
        return PutResult(
            obj.etag, obj.size, obj.sse, obj.checksums, obj.last_modified, obj.checksum_type
        )

    async def _put_staging(
        self,
        caller: Caller,
        key: str,
        body: AsyncIterator[bytes],
        content_type: str | None,
        size_hint: int | None,
    ) -> PutResult:
        sink = self._core.staging_sink
        assert sink is not None
        sink.validate(caller, key)
        etag, size = await sink.ingest(caller, key, body, content_type, size_hint)
        return PutResult(etag, size, SseRecord("AES256"), {}, self._core.clock.now())

    async def store_object(
        self,
        caller: Caller,
        bucket: BucketInfo,
        key: str,
        body: AsyncIterator[bytes],
        sse: SseRequest,
        content_type: str | None,
        metadata: Mapping[str, str],
        headers: Mapping[str, str],
        checksum: ChecksumRequest | None,
        write_conditions: Conditions | None = None,
        preserve: ObjectInfo | None = None,
    ) -> ObjectInfo:
        """Encrypt a body into a new blob and commit it as bucket/key (the commit point)."""
        algorithms = check_checksum_request(checksum)
        core = self._core
        object_id = core.new_id()
        rec, data_key = await core.keys.new_key(
            caller, bucket.name, key, core.keys.resolve(sse, bucket.encryption), object_id
        )
        # AWS: the ETag of an SSE-KMS or SSE-C object is not an MD5 of its data, so none
        # is computed (MD5 costs more than AES-GCM here) or stored, unless Content-MD5 asks
        opaque = rec.algorithm in OPAQUE_ETAG
        md5 = not opaque or (checksum is not None and checksum.content_md5 is not None)
        written = await core.store.write(
            body,
            data_key,
            blob_header("object", object_id, rec),
            algorithms,
            md5=md5,
            inline_max=inline.MAX_PLAIN,
        )
        try:
            checksums = verify_written(written, checksum)
        except S3Error:
            core.garbage.delete([written.blob_id])
            raise
        info = ObjectInfo(
            bucket=bucket.name,
            key=key,
            size=written.size,
            etag=preserve.etag if preserve else _etag(written, opaque, core),
            last_modified=preserve.last_modified if preserve else core.clock.now(),
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            metadata=dict(metadata),
            headers=dict(headers),
            sse=rec,
            checksums=checksums,
            segments=(Segment(written.blob_id, written.size),),
            object_id=object_id,
            owner_account=bucket.account,
            checksum_type="FULL_OBJECT" if checksums else None,
        )
        check = _write_check(write_conditions)
        if preserve is not None:
            info = replace(
                info,
                checksums=preserve.checksums,
                checksum_type=preserve.checksum_type,
                parts_count=0,
            )
            check = _unchanged(preserve.object_id)
        await core.commits.commit(codec.object_to_row(info), check, written.blob_id, written.inline)
        return info

    # -- read ----------------------------------------------------------------------

    def head(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        *,
        conditions: Conditions | None = None,
        customer: CustomerKey | None = None,
    ) -> ObjectInfo:
        info = self.lookup(caller, bucket, key, "s3:GetObject")
        self._core.keys.check_customer(info.sse, customer)
        check_conditions(info, conditions)
        return info

    def lookup(
        self, caller: Caller, bucket: str, key: str, action: str, fresh: bool = False
    ) -> ObjectInfo:
        """`fresh`: read the row from the index's database, not this process's cache."""
        self._core.bucket(caller, bucket, action)
        row = self._core.index.get_object(bucket, key, fresh)
        if row is None:
            raise S3Error("NoSuchKey", Key=key)
        return self._decoder.decode(row)

    async def get(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        *,
        range_header: str | None = None,
        conditions: Conditions | None = None,
        customer: CustomerKey | None = None,
        part_number: int | None = None,
        whole_max: int = 0,
    ) -> GetResult:
        """`whole_max`: a whole single-blob object up to this size comes back as bytes
        (`GetResult.body`), read and authenticated at once; anything else as a Body.

        A version that lost a blob between its row and the read (replaced or deleted,
        maybe by another process) is looked up again; the same version again without its
        blob is corrupt."""
        lost: list[str] | None = None
        for attempt in range(READ_TRIES):
            info = self.lookup(caller, bucket, key, "s3:GetObject", fresh=attempt > 0)
            blobs = [s.blob_id for s in info.segments]
            if blobs == lost:
                raise S3Error("InternalError", CORRUPT)
            check_conditions(info, conditions)
            span = select_span(info, range_header, part_number)
            try:
                if span is None and info.size <= whole_max and len(info.segments) == 1:
                    data = await self._read_whole(caller, info, customer)
                    return GetResult(info, data, 0, info.size, False)
                start, end = span or (0, info.size)
                body = await self.open_source(caller, info, customer, start, end)
            except BlobReplaced:
                lost = blobs
                continue
            return GetResult(info, body, start, end, span is not None)
        raise S3Error("SlowDown")

    async def _read_whole(
        self, caller: Caller, info: ObjectInfo, customer: CustomerKey | None
    ) -> bytes:
        seg = info.segments[0]
        sealed = self._sealed(info)  # read, or pinned, before any await
        release = self._core.garbage.pin((seg.blob_id,))
        try:
            data_key = await self._core.keys.data_key(caller, info.sse, info.object_id, customer)
            header = self._first_header.get(info)
            if sealed:
                return self._core.store.read_sealed(
                    sealed[seg.blob_id], seg.blob_id, data_key, header, seg.size
                )
            return self._core.store.read_small(seg.blob_id, data_key, header, seg.size)
        finally:
            release()

    def _sealed(self, info: ObjectInfo) -> dict[str, bytes]:
        """The sealed bytes of the object's inline blobs (BlobReplaced if one is gone)."""
        out: dict[str, bytes] = {}
        for seg in info.segments:
            if inline.is_inline(seg.blob_id):
                sealed = self._core.index.inline_blob(info.bucket, info.key, seg.blob_id)
                if sealed is None:
                    raise BlobReplaced
                out[seg.blob_id] = sealed
        return out

    async def open_source(
        self,
        caller: Caller,
        info: ObjectInfo,
        customer: CustomerKey | None,
        start: int,
        end: int,
    ) -> Body:
        """Pin the object's blobs at once (await this right after reading `info` from the
        index, so no overwrite can delete them meanwhile; an inline blob is read at once:
        BlobReplaced if it is gone already), recover its data key, open."""
        sealed = self._sealed(info)
        release = self._core.garbage.pin(s.blob_id for s in info.segments)
        try:
            data_key = await self._core.keys.data_key(caller, info.sse, info.object_id, customer)
        except BaseException:
            release()
            raise
        return await self._open_pinned(info, data_key, start, end, release, sealed)

    async def _open_pinned(
        self,
        info: ObjectInfo,
        data_key: bytes,
        start: int,
        end: int,
        release: Callable[[], None],
        sealed: Mapping[str, bytes],
    ) -> Body:
        store = self._core.store
        readers: list[tuple[BlobReader, int, int]] = []
        try:
            for i, lo, hi in plan_segments(info, start, end):
                seg = info.segments[i]
                header = segment_header(info, i)
                if seg.blob_id in sealed:
                    raw = sealed[seg.blob_id]
                    reader = store.open_sealed(raw, seg.blob_id, data_key, header, seg.size)
                else:  # the first segment's reader reads its first batch and keeps its file
                    span = None if readers else (lo, hi)
                    reader = await store.open(seg.blob_id, data_key, header, seg.size, span)
                readers.append((reader, lo, hi))
        except BaseException:
            for reader, _, _ in readers:
                reader.close()
            release()
            raise
        return Body(readers, release)

    # -- delete --------------------------------------------------------------------

    def delete(self, caller: Caller, bucket: str, key: str) -> None:
        self._core.bucket(caller, bucket, "s3:DeleteObject")
        old = self._core.index.delete_object(bucket, key)
        if old is not None:
            self._core.garbage.delete(old.blob_ids())

    def delete_many(self, caller: Caller, bucket: str, keys: list[str]) -> list[DeleteResult]:
        self._core.bucket(caller, bucket, "s3:DeleteObject")
        if len(keys) > 1000:
            raise S3Error("MalformedXML")
        out = []
        for key in keys:
            try:
                self.delete(caller, bucket, key)
                out.append(DeleteResult(key))
            except S3Error as err:
                out.append(DeleteResult(key, err.code, err.message))
        return out

    # -- copy ----------------------------------------------------------------------

    async def copy(
        self,
        caller: Caller,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        *,
        sse: SseRequest,
        replace_metadata: bool = False,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        source_conditions: Conditions | None = None,
        source_customer: CustomerKey | None = None,
    ) -> tuple[ObjectInfo, ObjectInfo]:
        """CopyObject: decrypt the source, re-encrypt under the destination's settings."""
        check_key(key)
        if self._core.is_staging(bucket) or self._core.is_staging(src_bucket):
            raise S3Error("AccessDenied")
        src = self.lookup(caller, src_bucket, src_key, "s3:GetObject")
        dst = self._core.bucket(caller, bucket, "s3:PutObject")
        if (src_bucket, src_key) == (bucket, key) and not replace_metadata:
            if sse.algorithm is None and sse.customer is None:
                raise S3Error(
                    "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to itself "
                    "without changing the object's metadata, storage class, website redirect "
                    "location or encryption attributes.",
                )
        try:
            check_conditions(src, source_conditions)
        except S3Error as err:
            if err.code != "NotModified":
                raise
            raise S3Error(
                "PreconditionFailed", Condition="x-amz-copy-source-If-None-Match"
            ) from None
        if src.size > MAX_PUT:
            raise S3Error(
                "InvalidRequest",
                "The specified copy source is larger than the maximum allowable size for a copy "
                f"source: {MAX_PUT}",
            )
        body = await self.open_source(caller, src, source_customer, 0, src.size)
        if not replace_metadata:
            content_type, metadata, headers = src.content_type, src.metadata, src.headers
        check_metadata(metadata or {})
        algs = tuple(src.checksums)[:1]
        ck = ChecksumRequest(algorithm=algs[0]) if algs else None
        try:
            new = await self.store_object(
                caller, dst, key, body, sse, content_type, metadata or {}, headers or {}, ck
            )
        finally:
            await body.aclose()
        return new, src


def _write_check(cond: Conditions | None) -> Callable[[ObjectRow | None], None] | None:
    """Conditional PUT: If-None-Match: * (create only) and If-Match: <etag>."""
    if cond is None or (cond.if_match is None and cond.if_none_match is None):
        return None

    def check(current: ObjectRow | None) -> None:
        if cond.if_none_match is not None and current is not None:
            raise S3Error("PreconditionFailed", Condition="If-None-Match")
        if cond.if_match is not None:
            if current is None:
                raise S3Error("NoSuchKey", Key="")
            tags = {t.strip().strip('"') for t in cond.if_match.split(",")}
            if current.etag not in tags and "*" not in tags:
                raise S3Error("PreconditionFailed", Condition="If-Match")

    return check


def _unchanged(object_id: str) -> Callable[[ObjectRow | None], None]:
    def check(current: ObjectRow | None) -> None:
        if current is None or current.object_id != object_id:
            raise S3Error("PreconditionFailed", "The object changed during the operation")

    return check


def _etag(written: Written, opaque: bool, core: Core) -> str:
    """The MD5 of the data, or (SSE-KMS, SSE-C) 32 hex digits that are not."""
    if opaque or written.md5_hex is None:
        return core.rng(16).hex()
    return written.md5_hex


def md5_b64(md5_hex: str) -> str:
    return b64encode(bytes.fromhex(md5_hex)).decode()
