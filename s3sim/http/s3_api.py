"""The S3 REST adapter: routing, request parsing and responses (XML, headers).

`handler(components)` returns the aiohttp handler the app dispatches S3 requests to.
Operations live in s3sim.s3 (S3Service); this module only speaks the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from s3sim.http import s3_xml as X
from s3sim.http.s3_objects import ObjectApi, Req, subresources
from s3sim.s3.errors import S3Error
from s3sim.s3.service import S3Service

# Subresources we do not implement: answered with 501 NotImplemented.
UNSUPPORTED = frozenset(
    "acl policy tagging cors lifecycle logging website notification replication "
    "ownershipControls publicAccessBlock object-lock accelerate requestPayment analytics "
    "metrics inventory intelligent-tiering policyStatus restore select attributes retention "
    "legal-hold torrent".split()
)
XML_LIMIT = 1024 * 1024


def handler(components: Any) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    return S3Api(components.s3).handle


def target(request: web.Request) -> tuple[str, str]:
    """(bucket, key) from virtual-host or path style; both may be ''."""
    path = unquote(request.raw_path.split("?", 1)[0])
    host_bucket = request.get("s3_bucket_from_host")
    if host_bucket:
        return host_bucket, path[1:]
    bucket, _, key = path[1:].partition("/")
    return bucket, key


def error_response(request: web.Request, err: S3Error, request_id: str) -> web.Response:
    headers = {"x-amz-request-id": request_id}
    if err.code == "NotModified":
        headers["ETag"] = err.extra.get("ETag", "")
        return web.Response(status=304, headers=headers)
    if request.method == "HEAD":
        return web.Response(status=err.status, headers=headers)
    body = X.error_xml(err, unquote(request.raw_path.split("?", 1)[0]), request_id)
    return web.Response(
        status=err.status, body=body, headers=headers, content_type="application/xml"
    )


@dataclass
class S3Api:
    s3: S3Service

    def __post_init__(self) -> None:
        self.objects = ObjectApi(self.s3)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request["auth"]
        bucket, key = target(request)
        req = Req(request, auth, bucket, key)
        try:
            if getattr(auth, "anonymous", False):
                self._deny_anonymous(bucket, creating=request.method == "PUT" and not key)
            owner = request.headers.get("x-amz-expected-bucket-owner")
            self.s3.check_expected_owner(bucket, owner)
            resp = await self._dispatch(req)
        except S3Error as err:
            return error_response(request, err, auth.request_id)
        resp.headers.setdefault("x-amz-request-id", auth.request_id)
        return resp

    def _deny_anonymous(self, bucket: str, creating: bool) -> None:
        """Unsigned requests are never allowed (no ACLs or policies here), but S3 checks
        that the bucket exists first: NoSuchBucket (404), then AccessDenied (403)."""
        if bucket and not creating and not self.s3.bucket_exists(bucket):
            raise S3Error("NoSuchBucket", BucketName=bucket)
        raise S3Error("AccessDenied")

    async def _dispatch(self, req: Req) -> web.StreamResponse:
        q, m = req.request.query, req.request.method
        if m == "GET" and "acl" in q and req.bucket:
            return self._get_acl(req)
        unsupported = UNSUPPORTED.intersection(q.keys())
        if unsupported:
            raise S3Error("NotImplemented", f"{sorted(unsupported)[0]} is not implemented")
        if not req.bucket:
            if m == "GET":
                return self._list_buckets(req)
            raise S3Error("MethodNotAllowed")
        if req.key:
            return await self.objects.dispatch(req)
        return await self._bucket_op(req, m, q)

    async def _bucket_op(self, req: Req, m: str, q: Any) -> web.StreamResponse:
        b = self.s3.buckets
        caller, name = req.caller, req.bucket
        if m == "PUT" and "encryption" in q:
            b.put_encryption(caller, name, X.parse_encryption(await req.body()))
            return web.Response(status=200)
        if m == "PUT" and not subresources(q):
            location = X.parse_location(await req.body())
            b.create(caller, name, location)
            return web.Response(status=200, headers={"Location": f"/{name}"})
        if m == "HEAD":
            info = b.head(caller, name)
            return web.Response(status=200, headers={"x-amz-bucket-region": info.region})
        if m == "DELETE" and "encryption" in q:
            b.delete_encryption(caller, name)
            return web.Response(status=204)
        if m == "DELETE" and not subresources(q):
            b.delete(caller, name)
            return web.Response(status=204)
        if m == "POST" and "delete" in q:
            return await self.objects.delete_many(req)
        if m == "GET":
            return self._bucket_get(req, q)
        raise S3Error("MethodNotAllowed")

    def _bucket_get(self, req: Req, q: Any) -> web.StreamResponse:
        b, caller, name = self.s3.buckets, req.caller, req.bucket
        if "location" in q:
            return xml(X.location_xml(b.location(caller, name)))
        if "encryption" in q:
            return xml(X.encryption_xml(b.get_encryption(caller, name)))
        if "versioning" in q:
            b.head(caller, name)
            return xml(X.versioning_xml())
        if "uploads" in q:
            return self._list_uploads(req, q)
        if "versions" in q:
            return self._list_versions(req, q)
        if q.get("list-type") == "2":
            return self._list_v2(req, q)
        return self._list_v1(req, q)

    def _get_acl(self, req: Req) -> web.Response:
        if req.key:
            info = self.s3.objects.lookup(req.caller, req.bucket, req.key, "s3:GetObjectAcl")
            return xml(X.acl_xml(info.owner_account))
        return xml(X.acl_xml(self.s3.buckets.acl_owner(req.caller, req.bucket)))

    def _list_buckets(self, req: Req) -> web.Response:
        q = req.request.query
        limit = int_param(q, "max-buckets", 10_000, 1, 10_000) if "max-buckets" in q else None
        token = q.get("continuation-token") or None
        prefix = q.get("prefix")
        buckets, last = self.s3.buckets.list(
            req.caller,
            prefix=prefix or "",
            region=q.get("bucket-region") or None,
            after=decode_token(token) if token else "",
            limit=limit,
        )
        nxt = encode_token(last) if last is not None else None
        return xml(X.list_buckets_xml(buckets, req.caller.account, nxt, prefix))

    def _list_common(self, req: Req, q: Any, marker: str | None, action: str) -> Any:
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = int_param(q, "max-keys", 1000, 0, 2**31 - 1)
        enc = q.get("encoding-type")
        if enc not in (None, "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
        page = self.s3.list_objects(
            req.caller,
            req.bucket,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=min(max_keys, 1000),
            marker=marker,
            action=action,
        )
        return page, prefix, delimiter, min(max_keys, 1000), enc == "url"

    def _list_v2(self, req: Req, q: Any) -> web.Response:
        token = q.get("continuation-token")
        start_after = q.get("start-after")
        # An empty token is no token (the listing starts over); it is echoed as sent.
        marker = decode_token(token) if token else start_after
        page, prefix, delim, mk, url = self._list_common(req, q, marker, "s3:ListBucket")
        nxt = encode_token(page.next_marker) if page.is_truncated and page.next_marker else None
        body = X.list_v2_xml(
            req.bucket,
            page,
            prefix=prefix,
            delimiter=delim,
            max_keys=mk,
            url=url,
            fetch_owner=q.get("fetch-owner") == "true",
            token=token,
            next_token=nxt,
            start_after=start_after,
        )
        return xml(body)

    def _list_v1(self, req: Req, q: Any) -> web.Response:
        marker = q.get("marker", "")
        page, prefix, delim, mk, url = self._list_common(req, q, marker or None, "s3:ListBucket")
        return xml(
            X.list_v1_xml(
                req.bucket,
                page,
                prefix=prefix,
                delimiter=delim,
                max_keys=mk,
                url=url,
                marker=marker,
            )
        )

    def _list_versions(self, req: Req, q: Any) -> web.Response:
        marker = q.get("key-marker", "")
        page, prefix, delim, mk, url = self._list_common(
            req, q, marker or None, "s3:ListBucketVersions"
        )
        return xml(
            X.list_versions_xml(
                req.bucket,
                page,
                prefix=prefix,
                delimiter=delim,
                max_keys=mk,
                url=url,
                key_marker=marker,
            )
        )

    def _list_uploads(self, req: Req, q: Any) -> web.Response:
        prefix = q.get("prefix", "")
        key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        max_uploads = min(int_param(q, "max-uploads", 1000, 0, 2**31 - 1), 1000)
        ups, truncated = self.s3.multipart.list_uploads(
            req.caller, req.bucket, prefix, key_marker, id_marker, max_uploads
        )
        return xml(
            X.list_uploads_xml(
                req.bucket,
                ups,
                prefix=prefix,
                key_marker=key_marker,
                id_marker=id_marker,
                max_uploads=max_uploads,
                truncated=truncated,
            )
        )


def xml(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=200, body=body, headers=headers, content_type="application/xml")


def int_param(q: Any, name: str, default: int, lo: int, hi: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise S3Error(
            "InvalidArgument",
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=raw,
        ) from None
    if not lo <= v <= hi:
        raise S3Error(
            "InvalidArgument",
            f"Argument {name} must be an integer between {lo} and {hi}",
            ArgumentName=name,
            ArgumentValue=raw,
        )
    return v


def encode_token(marker: str) -> str:
    from base64 import urlsafe_b64encode

    return urlsafe_b64encode(b"v1:" + marker.encode()).decode()


def decode_token(token: str) -> str:
    from base64 import urlsafe_b64decode

    try:
        raw = urlsafe_b64decode(token.encode())
        if not raw.startswith(b"v1:"):
            raise ValueError
        return raw[3:].decode()
    except ValueError:
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
        ) from None
