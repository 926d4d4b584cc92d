"""S3's XML wire shapes: response builders and request-body parsers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from s3sim.s3.errors import S3Error
from s3sim.s3.models import (
    BucketInfo,
    EncryptionRule,
    ListPage,
    PartInfo,
    UploadInfo,
)

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def el(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def doc(root: str, *inner: str) -> bytes:
    return (DECL + f'<{root} xmlns="{NS}">' + "".join(inner) + f"</{root}>").encode()


def owner(account: str) -> str:
    return f"<Owner>{el('ID', account)}{el('DisplayName', account)}</Owner>"


def error_xml(err: S3Error, resource: str, request_id: str) -> bytes:
    extra = "".join(el(k, v) for k, v in err.extra.items())
    body = (
        f"<Error>{el('Code', err.code)}{el('Message', err.message)}{extra}"
        f"{el('Resource', resource)}{el('RequestId', request_id)}</Error>"
    )
    return (DECL + body).encode()


def list_buckets_xml(
    buckets: Iterable[BucketInfo],
    account: str,
    next_token: str | None = None,
    prefix: str | None = None,
) -> bytes:
    items = "".join(
        f"<Bucket>{el('Name', b.name)}{el('CreationDate', iso(b.created))}"
        f"{el('BucketRegion', b.region)}</Bucket>"
        for b in buckets
    )
    return doc(
        "ListAllMyBucketsResult",
        owner(account),
        f"<Buckets>{items}</Buckets>",
        el("ContinuationToken", next_token),
        el("Prefix", prefix),
    )


def location_xml(region: str | None) -> bytes:
    return (
        DECL + f'<LocationConstraint xmlns="{NS}">{escape(region or "")}</LocationConstraint>'
    ).encode()


def encryption_xml(rule: EncryptionRule) -> bytes:
    by_default = el("SSEAlgorithm", rule.algorithm) + el("KMSMasterKeyID", rule.kms_key_id)
    inner = (
        f"<Rule><ApplyServerSideEncryptionByDefault>{by_default}"
        f"</ApplyServerSideEncryptionByDefault>{el('BucketKeyEnabled', rule.bucket_key_enabled)}"
        "</Rule>"
    )
    return doc("ServerSideEncryptionConfiguration", inner)


def _parse(body: bytes) -> ElementTree.Element:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise S3Error("MalformedXML") from None
    for node in root.iter():
        if "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    return root


def parse_encryption(body: bytes) -> EncryptionRule:
    root = _parse(body)
    rule = root.find("Rule")
    default = rule.find("ApplyServerSideEncryptionByDefault") if rule is not None else None
    if rule is None or default is None:
        raise S3Error("MalformedXML")
    alg = (default.findtext("SSEAlgorithm") or "").strip()
    key = (default.findtext("KMSMasterKeyID") or "").strip() or None
    bk = (rule.findtext("BucketKeyEnabled") or "false").strip().lower() == "true"
    return EncryptionRule(alg, key, bk)


def parse_object_encryption(body: bytes) -> tuple[str, bool]:
    """UpdateObjectEncryption's body: (KMS key ARN, bucket key enabled)."""
    kms = _parse(body).find("SSE-KMS")
    arn = (kms.findtext("KMSKeyArn") or "").strip() if kms is not None else ""
    if not arn:
        raise S3Error("MalformedXML")
    return arn, (kms.findtext("BucketKeyEnabled") or "false").strip().lower() == "true"


def parse_location(body: bytes) -> str | None:
    if not body.strip():
        return None
    return (_parse(body).findtext("LocationConstraint") or "").strip() or None


def parse_complete(body: bytes) -> tuple[list[tuple[int, str]], dict[int, dict[str, str]]]:
    """CompleteMultipartUpload: [(part number, ETag)] and the checksums given per part."""
    root = _parse(body)
    out, checksums = [], {}
    for part in root.findall("Part"):
        try:
            number = int(part.findtext("PartNumber") or "")
        except ValueError:
            raise S3Error("MalformedXML") from None
        out.append((number, part.findtext("ETag") or ""))
        given = {
            c.tag.removeprefix("Checksum"): (c.text or "").strip()
            for c in part
            if c.tag.startswith("Checksum") and c.tag != "ChecksumType"
        }
        if given:
            checksums[number] = given
    return out, checksums


def parse_delete(body: bytes) -> tuple[list[str], bool]:
    root = _parse(body)
    keys = [o.findtext("Key") or "" for o in root.findall("Object")]
    if not keys:
        raise S3Error("MalformedXML")
    quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
    return keys, quiet


def _enc(value: str | None, url: bool) -> str | None:
    return quote(value, safe="/") if (url and value is not None) else value


def _contents(page: ListPage, url: bool, fetch_owner: bool, versions: bool = False) -> str:
    out = []
    for e in page.entries:
        tag = "Version" if versions else "Contents"
        inner = el("Key", _enc(e.key, url))
        if versions:
            inner += el("VersionId", "null") + el("IsLatest", True)
        inner += el("LastModified", iso(e.last_modified)) + el("ETag", f'"{e.etag}"')
        if e.checksum_algorithm:
            inner += el("ChecksumAlgorithm", e.checksum_algorithm)
        inner += el("Size", e.size) + el("StorageClass", "STANDARD")
        if fetch_owner or versions:
            inner += owner(e.owner_account)
        out.append(f"<{tag}>{inner}</{tag}>")
    for p in page.common_prefixes:
        out.append(f"<CommonPrefixes>{el('Prefix', _enc(p, url))}</CommonPrefixes>")
    return "".join(out)


def list_v2_xml(
    bucket: str,
    page: ListPage,
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    url: bool,
    fetch_owner: bool,
    token: str | None,
    next_token: str | None,
    start_after: str | None,
) -> bytes:
    head = el("Name", bucket) + el("Prefix", _enc(prefix, url))
    if delimiter:
        head += el("Delimiter", _enc(delimiter, url))
    head += el("MaxKeys", max_keys)
    if url:
        head += el("EncodingType", "url")
    head += el("KeyCount", page.key_count) + el("IsTruncated", page.is_truncated)
    head += el("ContinuationToken", token) + el("NextContinuationToken", next_token)
    head += el("StartAfter", _enc(start_after, url))
    return doc("ListBucketResult", head, _contents(page, url, fetch_owner))


def list_v1_xml(
    bucket: str,
    page: ListPage,
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    url: bool,
    marker: str,
) -> bytes:
    head = el("Name", bucket) + el("Prefix", _enc(prefix, url)) + el("Marker", _enc(marker, url))
    if delimiter:
        head += el("Delimiter", _enc(delimiter, url))
        head += el("NextMarker", _enc(page.next_marker, url))
    head += el("MaxKeys", max_keys)
    if url:
        head += el("EncodingType", "url")
    head += el("IsTruncated", page.is_truncated)
    return doc("ListBucketResult", head, _contents(page, url, True))


def list_versions_xml(
    bucket: str,
    page: ListPage,
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    url: bool,
    key_marker: str,
) -> bytes:
    head = el("Name", bucket) + el("Prefix", _enc(prefix, url))
    head += el("KeyMarker", _enc(key_marker, url)) + el("VersionIdMarker", "")
    if page.is_truncated:
        head += el("NextKeyMarker", _enc(page.next_marker, url)) + el("NextVersionIdMarker", "null")
    if delimiter:
        head += el("Delimiter", _enc(delimiter, url))
    head += el("MaxKeys", max_keys)
    if url:
        head += el("EncodingType", "url")
    head += el("IsTruncated", page.is_truncated)
    return doc("ListVersionsResult", head, _contents(page, url, True, versions=True))


def create_upload_xml(up: UploadInfo) -> bytes:
    return doc(
        "InitiateMultipartUploadResult",
        el("Bucket", up.bucket),
        el("Key", up.key),
        el("UploadId", up.upload_id),
    )


def complete_xml(
    location: str,
    bucket: str,
    key: str,
    etag: str,
    checksums: dict[str, str],
    checksum_type: str | None = None,
) -> bytes:
    """CompleteMultipartUploadResult; `ChecksumType` (COMPOSITE|FULL_OBJECT) with a checksum."""
    ck = "".join(el(f"Checksum{alg}", v) for alg, v in checksums.items())
    if ck and checksum_type:
        ck += el("ChecksumType", checksum_type)
    return doc(
        "CompleteMultipartUploadResult",
        el("Location", location),
        el("Bucket", bucket),
        el("Key", key),
        el("ETag", f'"{etag}"'),
        ck,
    )


def copy_result_xml(
    root: str, etag: str, last_modified: datetime, checksums: dict[str, str]
) -> bytes:
    ck = "".join(el(f"Checksum{alg}", v) for alg, v in checksums.items())
    return doc(root, el("ETag", f'"{etag}"'), el("LastModified", iso(last_modified)), ck)


def list_parts_xml(
    up: UploadInfo, parts: list[PartInfo], marker: int, max_parts: int, truncated: bool
) -> bytes:
    items = []
    for p in parts:
        ck = "".join(el(f"Checksum{a}", v) for a, v in p.checksums.items())
        items.append(
            f"<Part>{el('PartNumber', p.part_number)}{el('LastModified', iso(p.last_modified))}"
            f"{el('ETag', chr(34) + p.etag + chr(34))}{el('Size', p.size)}{ck}</Part>"
        )
    nxt = parts[-1].part_number if parts else 0
    initiator = (
        f"<Initiator>{el('ID', up.owner_arn)}{el('DisplayName', up.owner_account)}</Initiator>"
    )
    return doc(
        "ListPartsResult",
        el("Bucket", up.bucket),
        el("Key", up.key),
        el("UploadId", up.upload_id),
        initiator,
        owner(up.owner_account),
        el("StorageClass", "STANDARD"),
        el("PartNumberMarker", marker),
        el("NextPartNumberMarker", nxt),
        el("MaxParts", max_parts),
        el("IsTruncated", truncated),
        el("ChecksumAlgorithm", up.checksum_algorithm),
        "".join(items),
    )


def list_uploads_xml(
    bucket: str,
    uploads: list[UploadInfo],
    *,
    prefix: str,
    key_marker: str,
    id_marker: str,
    max_uploads: int,
    truncated: bool,
) -> bytes:
    items = "".join(
        f"<Upload>{el('Key', u.key)}{el('UploadId', u.upload_id)}"
        f"<Initiator>{el('ID', u.owner_arn)}{el('DisplayName', u.owner_account)}</Initiator>"
        f"{owner(u.owner_account)}{el('StorageClass', 'STANDARD')}"
        f"{el('Initiated', iso(u.initiated))}</Upload>"
        for u in uploads
    )
    last = uploads[-1] if uploads else None
    return doc(
        "ListMultipartUploadsResult",
        el("Bucket", bucket),
        el("KeyMarker", key_marker),
        el("UploadIdMarker", id_marker),
        el("NextKeyMarker", last.key if last and truncated else None),
        el("NextUploadIdMarker", last.upload_id if last and truncated else None),
        el("Prefix", prefix),
        el("MaxUploads", max_uploads),
        el("IsTruncated", truncated),
        items,
    )


def delete_result_xml(results: list[tuple[str, str | None, str | None]], quiet: bool) -> bytes:
    out = []
    for key, code, message in results:
        if code:
            out.append(f"<Error>{el('Key', key)}{el('Code', code)}{el('Message', message)}</Error>")
        elif not quiet:
            out.append(f"<Deleted>{el('Key', key)}</Deleted>")
    return doc("DeleteResult", "".join(out))


def acl_xml(account: str) -> bytes:
    """The only ACL these buckets have: the owner with FULL_CONTROL."""
    grantee = (
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="CanonicalUser">{el("ID", account)}{el("DisplayName", account)}</Grantee>'
    )
    grant = f"<Grant>{grantee}{el('Permission', 'FULL_CONTROL')}</Grant>"
    return doc(
        "AccessControlPolicy", owner(account), f"<AccessControlList>{grant}</AccessControlList>"
    )


def versioning_xml() -> bytes:
    return doc("VersioningConfiguration")
