"""S3 models: snake_case frozen dataclasses shared by the S3 operations and adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import field
from datetime import datetime

from kmscore.frozen import frozen

# The standard headers S3 stores with an object and returns on GET/HEAD.
STANDARD_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "website-redirect-location",
)


@frozen
class BucketInfo:
    name: str
    account: str
    owner_arn: str
    region: str
    created: datetime
    encryption: EncryptionRule | None = None


@frozen
class EncryptionRule:
    """A bucket's default encryption (PutBucketEncryption)."""

    algorithm: str  # "AES256" | "aws:kms"
    kms_key_id: str | None = None
    bucket_key_enabled: bool = False


@frozen
class CustomerKey:
    """SSE-C key material from request headers; never stored."""

    algorithm: str
    key: bytes
    key_md5: str  # base64, as sent


@frozen
class SseRequest:
    """What a write asks for. algorithm None means: the bucket default (or AES256)."""

    algorithm: str | None = None
    kms_key_id: str | None = None
    context: Mapping[str, str] | None = None
    context_b64: str | None = None
    bucket_key_enabled: bool | None = None
    customer: CustomerKey | None = None


@frozen
class SseRecord:
    """How one stored object (or upload) is encrypted; lives in the metadata index."""

    algorithm: str  # "AES256" | "aws:kms" | "SSE-C"
    wrapped_key: bytes = b""
    key_arn: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    context_b64: str | None = None  # the user's context header, echoed on Put/Copy/CMU
    bucket_key: bool = False
    ssec_salt: bytes = b""
    ssec_hmac: bytes = b""
    ssec_key_md5: str | None = None


@frozen
class Segment:
    """One encrypted blob of an object (a single PUT has one, a multipart object N)."""

    blob_id: str
    size: int
    part_number: int = 0  # multipart: the number the part was uploaded as (bound in its header)


@frozen
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # without quotes
    last_modified: datetime
    content_type: str
    metadata: Mapping[str, str]  # user metadata, names without "x-amz-meta-"
    headers: Mapping[str, str]  # standard headers from STANDARD_HEADERS
    sse: SseRecord
    checksums: Mapping[str, str]  # algorithm (CRC32, ...) -> base64 value
    segments: tuple[Segment, ...]
    object_id: str
    owner_account: str
    parts_count: int = 0
    checksum_type: str | None = None  # FULL_OBJECT | COMPOSITE


@frozen
class PutResult:
    etag: str
    size: int
    sse: SseRecord
    checksums: Mapping[str, str]
    last_modified: datetime
    checksum_type: str | None = None


@frozen
class Conditions:
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None


@frozen
class GetResult:
    info: ObjectInfo
    body: AsyncIterator[bytes] | bytes  # bytes: a small object read whole (whole_max)
    start: int  # first byte served
    end: int  # one past the last byte served
    partial: bool


@frozen
class ChecksumRequest:
    """Checksums the client sent. `trailer` is read after the body is consumed."""

    algorithm: str | None = None  # CRC32 | CRC32C | SHA1 | SHA256 | CRC64NVME
    value: str | None = None
    trailer: Callable[[], str | None] | None = None
    content_md5: str | None = None


@frozen
class ListEntry:
    key: str
    size: int
    etag: str
    last_modified: datetime
    owner_account: str
    checksum_algorithm: str | None = None


@frozen
class ListPage:
    entries: tuple[ListEntry, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_marker: str | None  # last key or prefix returned (v1 NextMarker / v2 token source)
    key_count: int


@frozen
class UploadInfo:
    upload_id: str
    bucket: str
    key: str
    initiated: datetime
    owner_account: str
    owner_arn: str
    content_type: str
    metadata: Mapping[str, str]
    headers: Mapping[str, str]
    sse: SseRecord
    checksum_algorithm: str | None = None
    checksum_type: str | None = None  # COMPOSITE (default) | FULL_OBJECT


@frozen
class PartInfo:
    upload_id: str
    part_number: int
    blob_id: str
    size: int
    etag: str
    last_modified: datetime
    checksums: Mapping[str, str]


@frozen
class DeleteResult:
    key: str
    error: str | None = None  # an S3 error code
    message: str | None = None
