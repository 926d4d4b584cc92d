"""Multipart checks that need no state: checksum type, the completed object's checksum,
UploadPartCopy's source range, and the answer to a retried CompleteMultipartUpload.
"""

from __future__ import annotations

import re

from s3sim.s3.crc_combine import CRCS, full_object_checksum
from s3sim.s3.errors import S3Error
from s3sim.s3.models import ObjectInfo, PartInfo, PutResult, UploadInfo
from s3sim.storage.checksums import composite_checksum, multipart_etag

_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def check_checksum_type(algorithm: str | None, checksum_type: str | None) -> None:
    if checksum_type is None:
        return
    if checksum_type not in ("COMPOSITE", "FULL_OBJECT") or algorithm is None:
        raise S3Error(
            "InvalidRequest",
            "The x-amz-checksum-type header needs a valid type and x-amz-checksum-algorithm",
        )
    if checksum_type == "FULL_OBJECT" and algorithm not in CRCS:
        raise S3Error(
            "InvalidRequest",
            f"The FULL_OBJECT checksum type cannot be used with the {algorithm.lower()} "
            "checksum algorithm.",
        )
    if checksum_type == "COMPOSITE" and algorithm == "CRC64NVME":
        raise S3Error(
            "InvalidRequest",
            "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.",
        )


def upload_checksums(
    up: UploadInfo, chosen: list[PartInfo], full_checksum: str | None
) -> dict[str, str]:
    """The completed object's checksum: COMPOSITE ("-N") or FULL_OBJECT (combined CRC).

    A whole-object checksum sent with Complete must match it (the COMPOSITE value with or
    without its "-N" suffix): BadDigest otherwise.
    """
    alg = up.checksum_algorithm
    if not alg or not all(alg in p.checksums for p in chosen):
        return {}
    if up.checksum_type != "FULL_OBJECT":
        value = composite_checksum(alg, [p.checksums[alg] for p in chosen])
        accepted = {value, value.rsplit("-", 1)[0]}
    else:
        value = full_object_checksum(alg, [(p.checksums[alg], p.size) for p in chosen])
        accepted = {value}
    if full_checksum is not None and full_checksum not in accepted:
        raise S3Error(
            "BadDigest", f"The {alg} you specified did not match the calculated checksum."
        )
    return {alg: value}


def check_copy_range(source_range: str, size: int) -> tuple[int, int]:
    """UploadPartCopy's `bytes=first-last` as [start, end): it must lie within the source."""
    m = _COPY_RANGE.fullmatch(source_range.strip())
    if m is None or int(m.group(1)) > int(m.group(2)):
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=source_range,
        )
    first, last = int(m.group(1)), int(m.group(2))
    if last >= size:
        # AWS: 400 InvalidArgument (not GET's 416 InvalidRange, and no clamping).
        raise S3Error(
            "InvalidArgument",
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=source_range,
        )
    return first, last + 1


def completed_result(
    info: ObjectInfo | None, upload_id: str, part_etags: list[str], caller_arn: str
) -> tuple[PutResult, UploadInfo]:
    """A retried Complete: the first Complete's result while `info` (the object now at the
    key) is still the one that upload produced from the same parts; NoSuchUpload otherwise.
    """
    etags = [e.strip().strip('"') for e in part_etags]
    try:
        same = (
            info is not None and info.object_id == upload_id and info.etag == multipart_etag(etags)
        )
    except ValueError:
        same = False
    if not same or info is None:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    up = UploadInfo(
        upload_id=upload_id,
        bucket=info.bucket,
        key=info.key,
        initiated=info.last_modified,
        owner_account=info.owner_account,
        owner_arn=caller_arn,
        content_type=info.content_type,
        metadata=info.metadata,
        headers=info.headers,
        sse=info.sse,
        checksum_algorithm=next(iter(info.checksums), None),
        checksum_type=info.checksum_type,
    )
    result = PutResult(
        info.etag, info.size, info.sse, info.checksums, info.last_modified, info.checksum_type
    )
    return result, up
