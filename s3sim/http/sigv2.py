"""S3's legacy query-string authentication (Signature Version 2), for presigned URLs.

boto3 still presigns S3 URLs this way when a client has a custom endpoint and no
explicit `signature_version`: `?AWSAccessKeyId=..&Signature=..&Expires=<epoch>`.
Pure: no aiohttp. Only presigned URLs are accepted (never an `AWS key:sig` header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from kmscore.frozen import frozen
from s3sim.http.sigv4 import MalformedQueryAuth, SignatureMismatch, parse_query

# Query parameters that are part of the resource that is signed (S3's list).
SUBRESOURCES = frozenset(
    "accelerate acl cors defaultObjectAcl location logging partNumber policy requestPayment "
    "torrent versioning versionId versions website uploads uploadId response-content-type "
    "response-content-language response-expires response-cache-control "
    "response-content-disposition response-content-encoding delete lifecycle tagging restore "
    "storageClass notification replication analytics metrics inventory select select-type "
    "object-lock".split()
)


@frozen
class PresignedV2:
    access_key: str
    signature: str
    expires: int


def is_presigned_v2(raw_query: str) -> bool:
    return "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query


def parse(raw_query: str) -> PresignedV2:
    q = dict(parse_query(raw_query))
    try:
        return PresignedV2(q["AWSAccessKeyId"], q["Signature"], int(q["Expires"]))
    except (KeyError, ValueError):
        raise MalformedQueryAuth(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters"
        ) from None


def canonical_resource(raw_path: str, raw_query: str, bucket_from_host: str | None) -> str:
    path = raw_path or "/"
    if bucket_from_host:
        path = f"/{bucket_from_host}{path}"
    subs = []
    for part in raw_query.split("&"):
        name, eq, value = part.partition("=")
        if name in SUBRESOURCES:
            subs.append(f"{name}={unquote(value)}" if eq else name)
    if subs:
        path += "?" + "&".join(sorted(subs, key=lambda s: s.split("=", 1)[0]))
    return path


def string_to_sign(
    method: str,
    headers: Iterable[tuple[str, str]],
    query: Mapping[str, str],
    expires: int,
    resource: str,
) -> str:
    hdrs: dict[str, list[str]] = {}
    for name, value in headers:
        hdrs.setdefault(name.lower(), []).append(value.strip())
    for name, value in query.items():  # presigning moves x-amz-* headers into the query
        if name.lower().startswith("x-amz-"):
            hdrs.setdefault(name.lower(), [value.strip()])
    md5 = ",".join(hdrs.get("content-md5", [])) or query.get("content-md5", "")
    ctype = ",".join(hdrs.get("content-type", [])) or query.get("content-type", "")
    amz = "".join(f"{k}:{','.join(hdrs[k])}\n" for k in sorted(hdrs) if k.startswith("x-amz-"))
    return f"{method.upper()}\n{md5}\n{ctype}\n{expires}\n{amz}{resource}"


def sign(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(
    info: PresignedV2,
    secret: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    bucket_from_host: str | None,
) -> None:
    query = dict(parse_query(raw_query))
    resource = canonical_resource(raw_path, raw_query, bucket_from_host)
    text = string_to_sign(method, list(headers), query, info.expires, resource)
    if not hmac.compare_digest(sign(secret, text), info.signature):
        raise SignatureMismatch()
