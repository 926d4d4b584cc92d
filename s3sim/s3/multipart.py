"""Multipart uploads: create, upload part (and part copy), complete, abort, list.

The data key is chosen once, at CreateMultipartUpload (GenerateDataKey for SSE-KMS);
every part is a blob encrypted under it, with its part number bound in the header
(so parts cannot be swapped). UploadPart recovers the key (Decrypt), as on AWS.
Completing commits an object whose segments are the chosen parts' blobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from kmscore.caller import Caller
from s3sim.s3 import codec
from s3sim.s3.core import Core, check_key
from s3sim.s3.errors import S3Error
from s3sim.s3.models import (
    ChecksumRequest,
    CustomerKey,
    ObjectInfo,
    PartInfo,
    PutResult,
    Segment,
    SseRecord,
    SseRequest,
    UploadInfo,
)
from s3sim.s3.mp_checks import (
    check_checksum_type,
    check_copy_range,
    completed_result,
    upload_checksums,
)
from s3sim.s3.objects import (
    DEFAULT_CONTENT_TYPE,
    MAX_PUT,
    Objects,
    blob_header,
    check_checksum_request,
    check_metadata,
    verify_written,
)
from s3sim.s3.reading import Body
from s3sim.storage.checksums import multipart_etag

MIN_PART = 5 * 1024**2
MAX_PARTS = 10_000
MAX_OBJECT = 5 * 1024**4


class Multipart:
    def __init__(self, core: Core, objects: Objects) -> None:
        self._core = core
        self._objects = objects

    async def create(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        *,
        sse: SseRequest,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        checksum_algorithm: str | None = None,
        checksum_type: str | None = None,
    ) -> UploadInfo:
        check_key(key)
        check_checksum_type(checksum_algorithm, checksum_type)
        core = self._core
        if core.is_staging(bucket):
            assert core.staging_sink is not None
            core.staging_sink.validate(caller, key)
            sse = SseRequest("AES256")
            owner = caller.account
            default = None
        else:
            info = core.bucket(caller, bucket, "s3:PutObject")
            owner, default = info.account, info.encryption
        check_metadata(metadata or {})
        check_checksum_request(ChecksumRequest(algorithm=checksum_algorithm))
        upload_id = core.new_id()
        rec, _ = await core.keys.new_key(
            caller, bucket, key, core.keys.resolve(sse, default), upload_id
        )
        upload = UploadInfo(
            upload_id=upload_id,
            bucket=bucket,
            key=key,
            initiated=core.clock.now(),
            owner_account=owner,
            owner_arn=caller.arn,
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            metadata=dict(metadata or {}),
            headers=dict(headers or {}),
            sse=rec,
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
        )
        core.index.create_upload(codec.upload_to_row(upload))
        return upload

    def upload(self, caller: Caller, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """The upload, if `caller` may write to it."""
        core = self._core
        if core.is_staging(bucket):
            assert core.staging_sink is not None
            core.staging_sink.validate(caller, key)
        else:
            core.bucket(caller, bucket, "s3:PutObject")
        row = core.index.get_upload(upload_id)
        if row is None or row.bucket != bucket or row.key != key:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        up = codec.upload_from_row(row)
        if up.owner_account != caller.account:
            raise S3Error("AccessDenied")
        return up

    async def upload_part(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: AsyncIterator[bytes],
        *,
        checksum: ChecksumRequest | None = None,
        customer: CustomerKey | None = None,
        size_hint: int | None = None,
    ) -> PartInfo:
        if not 1 <= part_number <= MAX_PARTS:
            raise S3Error(
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive",
                ArgumentName="partNumber",
                ArgumentValue=str(part_number),
            )
        if size_hint is not None and size_hint > MAX_PUT:
            raise S3Error(
                "EntityTooLarge", MaxSizeAllowed=str(MAX_PUT), ProposedSize=str(size_hint)
            )
        up = self.upload(caller, bucket, key, upload_id)
        algorithms = check_checksum_request(checksum)
        if up.checksum_algorithm and up.checksum_algorithm not in algorithms:
            algorithms += (up.checksum_algorithm,)
        if up.sse.algorithm == "SSE-C" and customer is None:
            raise S3Error(
                "InvalidRequest",
                "The multipart upload initiate requested encryption. Subsequent part requests "
                "must include the appropriate encryption parameters.",
            )
        data_key = await self._core.keys.data_key(caller, up.sse, up.upload_id, customer)
        header = blob_header("part", f"{up.upload_id}#{part_number}", up.sse)
        written = await self._core.store.write(body, data_key, header, algorithms)
        try:
            checksums = verify_written(written, checksum)
            if up.checksum_algorithm:
                checksums[up.checksum_algorithm] = written.checksums[up.checksum_algorithm]
            part = PartInfo(
                upload_id,
                part_number,
                written.blob_id,
                written.size,
                written.md5_hex,
                self._core.clock.now(),
                checksums,
            )
            old = self._core.index.put_part(codec.part_to_row(part))
        except KeyError:
            self._core.garbage.delete([written.blob_id])
            raise S3Error("NoSuchUpload", UploadId=upload_id) from None
        except S3Error:
            self._core.garbage.delete([written.blob_id])
            raise
        if old is not None:
            self._core.garbage.delete([old.blob_id])
        return part

    async def upload_part_copy(
        self,
        caller: Caller,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        source_range: str | None = None,
        source_customer: CustomerKey | None = None,
        customer: CustomerKey | None = None,
    ) -> tuple[PartInfo, ObjectInfo]:
        if self._core.is_staging(src_bucket):
            raise S3Error("AccessDenied")
        src = self._objects.lookup(caller, src_bucket, src_key, "s3:GetObject")
        self.upload(caller, bucket, key, upload_id)
        start, end = check_copy_range(source_range, src.size) if source_range else (0, src.size)
        body = await self._objects.open_source(caller, src, source_customer, start, end)
        try:
            part = await self.upload_part(
                caller, bucket, key, upload_id, part_number, body, customer=customer
            )
        finally:
            await body.aclose()
        return part, src

    async def complete(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        customer: CustomerKey | None = None,
        full_checksum: str | None = None,
        part_checksums: Mapping[int, Mapping[str, str]] | None = None,
    ) -> tuple[PutResult, UploadInfo]:
        try:
            up = self.upload(caller, bucket, key, upload_id)
        except S3Error as e:
            if e.code != "NoSuchUpload":
                raise
            return self._completed(caller, bucket, key, upload_id, parts)
        chosen = self._check_parts(upload_id, parts)
        for p in chosen:
            for alg, value in (part_checksums or {}).get(p.part_number, {}).items():
                if alg in p.checksums and p.checksums[alg] != value:
                    raise S3Error("InvalidPart", UploadId=upload_id, PartNumber=str(p.part_number))
        etag = multipart_etag(p.etag for p in chosen)
        size = sum(p.size for p in chosen)
        if size > MAX_OBJECT:
            raise S3Error("EntityTooLarge")
        checksums = upload_checksums(up, chosen, full_checksum)
        if self._core.is_staging(bucket):
            return await self._complete_staging(caller, up, chosen, customer, etag)
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            size=size,
            etag=etag,
            last_modified=self._core.clock.now(),
            content_type=up.content_type,
            metadata=up.metadata,
            headers=up.headers,
            sse=up.sse,
            checksums=checksums,
            segments=tuple(Segment(p.blob_id, p.size, p.part_number) for p in chosen),
            object_id=up.upload_id,
            owner_account=up.owner_account,
            parts_count=len(chosen),
            checksum_type=(up.checksum_type or "COMPOSITE") if checksums else None,
        )
        used = {p.blob_id for p in chosen}
        garbage = self._core.index.complete_upload(upload_id, codec.object_to_row(info), used)
        if garbage is None:  # a concurrent Complete (or Abort) won
            return self._completed(caller, bucket, key, upload_id, parts)
        self._core.garbage.delete(garbage)
        result = PutResult(etag, size, up.sse, checksums, info.last_modified, info.checksum_type)
        return result, up

    def _completed(
        self, caller: Caller, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> tuple[PutResult, UploadInfo]:
        """A retried Complete of a completed upload: the same result, as AWS answers."""
        row = self._core.index.get_object(bucket, key)
        info = codec.object_from_row(row) if row is not None else None
        return completed_result(info, upload_id, [e for _, e in parts], caller.arn)

    def _check_parts(self, upload_id: str, parts: list[tuple[int, str]]) -> list[PartInfo]:
        if not parts:
            raise S3Error(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema",
            )
        numbers = [n for n, _ in parts]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise S3Error("InvalidPartOrder", UploadId=upload_id)
        stored = {
            r.part_number: codec.part_from_row(r) for r in self._core.index.list_parts(upload_id)
        }
        chosen = []
        for n, etag in parts:
            p = stored.get(n)
            if p is None or etag.strip().strip('"') != p.etag:
                raise S3Error("InvalidPart", UploadId=upload_id, PartNumber=str(n), ETag=etag)
            chosen.append(p)
        for p in chosen[:-1]:
            if p.size < MIN_PART:
                raise S3Error(
                    "EntityTooSmall",
                    ProposedSize=str(p.size),
                    MinSizeAllowed=str(MIN_PART),
                    PartNumber=str(p.part_number),
                    ETag=p.etag,
                )
        return chosen

    async def _complete_staging(
        self,
        caller: Caller,
        up: UploadInfo,
        chosen: list[PartInfo],
        customer: CustomerKey | None,
        etag: str,
    ) -> tuple[PutResult, UploadInfo]:
        sink = self._core.staging_sink
        assert sink is not None
        info = ObjectInfo(
            up.bucket,
            up.key,
            sum(p.size for p in chosen),
            etag,
            up.initiated,
            up.content_type,
            {},
            {},
            up.sse,
            {},
            tuple(Segment(p.blob_id, p.size, p.part_number) for p in chosen),
            up.upload_id,
            up.owner_account,
            len(chosen),
        )
        body = await self._objects.open_source(caller, info, customer, 0, info.size)
        try:
            _, size = await sink.ingest(caller, up.key, body, up.content_type, info.size)
        finally:
            await body.aclose()
        self.abort(caller, up.bucket, up.key, up.upload_id)
        return PutResult(etag, size, SseRecord("AES256"), {}, self._core.clock.now()), up

    def abort(self, caller: Caller, bucket: str, key: str, upload_id: str) -> None:
        self.upload(caller, bucket, key, upload_id)
        blobs = self._core.index.abort_upload(upload_id)
        if blobs is None:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        self._core.garbage.delete(blobs)

    def list_parts(
        self, caller: Caller, bucket: str, key: str, upload_id: str, marker: int, max_parts: int
    ) -> tuple[UploadInfo, list[PartInfo], bool]:
        up = self.upload(caller, bucket, key, upload_id)
        rows = self._core.index.list_parts(upload_id, marker, max_parts + 1)
        parts = [codec.part_from_row(r) for r in rows]
        return up, parts[:max_parts], len(parts) > max_parts

    def list_uploads(
        self,
        caller: Caller,
        bucket: str,
        prefix: str = "",
        key_marker: str = "",
        id_marker: str = "",
        max_uploads: int = 1000,
    ) -> tuple[list[UploadInfo], bool]:
        self._core.bucket(caller, bucket, "s3:ListBucketMultipartUploads")
        rows = self._core.index.list_uploads(bucket, prefix, key_marker, id_marker, max_uploads + 1)
        ups = [codec.upload_from_row(r) for r in rows]
        return ups[:max_uploads], len(ups) > max_uploads


__all__ = ["Body", "Multipart"]
