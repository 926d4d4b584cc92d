"""S3 request/response headers <-> S3 models (SSE, checksums, metadata, conditions)."""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache

from s3sim.http.payload import content_encoding_without_chunked
from s3sim.s3.errors import S3Error
from s3sim.s3.models import (
    STANDARD_HEADERS,
    ChecksumRequest,
    Conditions,
    CustomerKey,
    ObjectInfo,
    SseRecord,
    SseRequest,
)

SSE = "x-amz-server-side-encryption"
SSEC = "x-amz-server-side-encryption-customer-"
COPY_SSEC = "x-amz-copy-source-server-side-encryption-customer-"
ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")
_CHECKSUM_HEADERS = tuple((a, f"x-amz-checksum-{a.lower()}") for a in ALGORITHMS)
# (stored name, request header) of each standard header, in STANDARD_HEADERS order
_STORED_FROM = tuple(
    (n, "x-amz-" + n if n == "website-redirect-location" else n) for n in STANDARD_HEADERS
)


_BAD_CONTEXT = (
    "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string "
    "holding JSON which represents a string-string map"
)
_NEED_KEY = (
    "Requests specifying Server Side Encryption with Customer provided keys must provide an "
    "appropriate secret key."
)
_BAD_KEY = "The secret key was invalid for the specified algorithm."
_BAD_ALG = "The encryption method specified is not supported"
_SSEC_AND_SSE = (
    "Server Side Encryption with Customer provided key is incompatible with the encryption "
    "method specified"
)
_READ_SSE = "x-amz-server-side-encryption header is not supported for this operation."
_KMS_ONLY = (
    "Server Side Encryption with AWS KMS managed key requires HTTP header "
    "x-amz-server-side-encryption : aws:kms"
)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=4096)  # an object's Last-Modified, on every GET and HEAD of it
def http_date(t: datetime) -> str:
    """RFC 7231 date, as email.utils.format_datetime(usegmt=True) writes it (4x faster)."""
    if t.tzinfo is not UTC:  # format_datetime decides (it refuses non-UTC datetimes)
        return format_datetime(t.replace(microsecond=0), usegmt=True)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _b64json(value: str) -> dict[str, str]:
    try:
        ctx = json.loads(b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        raise S3Error(
            "InvalidArgument",
            _BAD_CONTEXT,
        ) from None
    if not isinstance(ctx, dict) or not all(isinstance(v, str) for v in ctx.values()):
        raise S3Error(
            "InvalidArgument",
            _BAD_CONTEXT,
        )
    return ctx


def parse_customer(h: Mapping[str, str], prefix: str = SSEC) -> CustomerKey | None:
    alg, key, md5 = h.get(prefix + "algorithm"), h.get(prefix + "key"), h.get(prefix + "key-MD5")
    if alg is None and key is None and md5 is None:
        return None
    if not (alg and key and md5):
        raise S3Error(
            "InvalidArgument",
            _NEED_KEY,
        )
    try:
        raw = b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        raise S3Error("InvalidArgument", _BAD_KEY) from None
    return CustomerKey(alg, raw, md5)


def parse_sse(h: Mapping[str, str]) -> SseRequest:
    alg = h.get(SSE)
    key_id = h.get(SSE + "-aws-kms-key-id")
    ctx_b64 = h.get(SSE + "-context")
    bk = h.get(SSE + "-bucket-key-enabled")
    customer = parse_customer(h)
    if alg is not None and alg not in ("AES256", "aws:kms", "aws:kms:dsse"):
        raise S3Error(
            "InvalidArgument",
            _BAD_ALG,
            ArgumentName=SSE,
            ArgumentValue=alg,
        )
    if customer and alg:
        raise S3Error(
            "InvalidArgument",
            _SSEC_AND_SSE,
            ArgumentName=SSE,
            ArgumentValue=alg,
        )
    if (key_id or ctx_b64) and alg not in ("aws:kms", "aws:kms:dsse"):
        raise S3Error(
            "InvalidArgument",
            _KMS_ONLY,
            ArgumentName=SSE,
            ArgumentValue=alg or "null",
        )
    ctx = _b64json(ctx_b64) if ctx_b64 else None
    bucket_key = None if bk is None else bk.strip().lower() == "true"
    if alg == "aws:kms:dsse":
        alg = "aws:kms"
    return SseRequest(alg, key_id, ctx, ctx_b64, bucket_key, customer)


def reject_sse_on_read(h: Mapping[str, str]) -> None:
    """GET/HEAD carry no SSE-S3/SSE-KMS request headers (S3 decrypts by itself): 400."""
    for name in (SSE, SSE + "-aws-kms-key-id", SSE + "-context", SSE + "-bucket-key-enabled"):
        if name in h:
            raise S3Error("InvalidArgument", _READ_SSE, ArgumentName=name, ArgumentValue=h[name])


def parse_checksum(
    h: Mapping[str, str], trailers: Callable[[], Mapping[str, str]]
) -> ChecksumRequest:
    alg = (h.get("x-amz-sdk-checksum-algorithm") or "").upper() or None
    value = None
    for a, name in _CHECKSUM_HEADERS:
        v = h.get(name)
        if v is not None:
            alg, value = a, v
    trailer_name = (h.get("x-amz-trailer") or "").strip().lower()
    trailer = None
    if trailer_name.startswith("x-amz-checksum-"):
        alg = trailer_name.removeprefix("x-amz-checksum-").upper()

        def trailer() -> str | None:
            t = trailers()
            return t.get(trailer_name) or t.get(trailer_name.title())

    return ChecksumRequest(alg, value, trailer, h.get("content-md5"))


def user_metadata(h: Mapping[str, str]) -> dict[str, str]:
    return {k.lower()[11:]: v for k, v in h.items() if k.lower().startswith("x-amz-meta-")}


def standard_headers(h: Mapping[str, str]) -> dict[str, str]:
    """The standard headers to store with an object (`aws-chunked` is framing, not content)."""
    out = {n: v for n, header in _STORED_FROM if (v := h.get(header)) is not None}
    if "content-encoding" in out:
        encoding = content_encoding_without_chunked(out["content-encoding"])
        if encoding is None:
            del out["content-encoding"]
        else:
            out["content-encoding"] = encoding
    return out


NO_CONDITIONS = Conditions()


def conditions(h: Mapping[str, str], prefix: str = "") -> Conditions:
    match, none_match = h.get(prefix + "if-match"), h.get(prefix + "if-none-match")
    since, unmodified = h.get(prefix + "if-modified-since"), h.get(prefix + "if-unmodified-since")
    if match is None and none_match is None and since is None and unmodified is None:
        return NO_CONDITIONS  # most requests: no object built
    return Conditions(match, none_match, _date(since), _date(unmodified))


def sse_headers(rec: SseRecord, echo_context: bool = False) -> dict[str, str]:
    """SSE response headers; the KMS context only on Put, Copy and CreateMultipartUpload."""
    if rec.algorithm == "SSE-C":
        return {SSEC + "algorithm": "AES256", SSEC + "key-MD5": rec.ssec_key_md5 or ""}
    out = {SSE: rec.algorithm}
    if rec.algorithm == "aws:kms":
        out[SSE + "-aws-kms-key-id"] = rec.key_arn or ""
        if rec.bucket_key:
            out[SSE + "-bucket-key-enabled"] = "true"
        if echo_context and rec.context_b64:
            # AWS echoes the caller's context as given, without its own aws:s3:arn pair.
            out[SSE + "-context"] = rec.context_b64
    return out


def checksum_headers(checksums: Mapping[str, str], checksum_type: str | None) -> dict[str, str]:
    out = {f"x-amz-checksum-{a.lower()}": v for a, v in checksums.items()}
    if out and checksum_type:
        out["x-amz-checksum-type"] = checksum_type
    return out


def object_headers(info: ObjectInfo, checksum_mode: bool) -> dict[str, str]:
    out = {
        "ETag": f'"{info.etag}"',
        "Last-Modified": http_date(info.last_modified),
        "Content-Type": info.content_type,
        "Accept-Ranges": "bytes",
    }
    for name, v in info.headers.items():
        out["x-amz-" + name if name == "website-redirect-location" else name] = v
    for k, v in info.metadata.items():
        out["x-amz-meta-" + k] = v
    out.update(sse_headers(info.sse))
    if checksum_mode:
        out.update(checksum_headers(info.checksums, info.checksum_type))
    return out


RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
