"""The S3 REST adapter for object-level requests (objects and multipart uploads)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from s3sim.http import s3_headers as H
from s3sim.http import s3_xml as X
from s3sim.s3.codec import IdMemo
from s3sim.s3.errors import S3Error
from s3sim.s3.models import GetResult, ObjectInfo
from s3sim.s3.reading import select_span
from s3sim.s3.service import S3Service
from s3sim.s3.update_encryption import update_encryption

XML_LIMIT = 1024 * 1024
# Bodies up to this size are collected before the response starts: headers and body then
# leave in one send, and a read failure can still be answered with an error document.
WHOLE_BODY_MAX = 64 * 1024


@dataclass
class Req:
    request: web.Request
    auth: Any
    bucket: str
    key: str

    @property
    def caller(self) -> Any:
        return self.auth.caller

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def secure(self) -> bool:
        return self.request.secure

    def payload(self) -> Any:
        from s3sim.http.payload import Payload

        return Payload(self.request, self.auth)

    async def body(self) -> bytes:
        return await self.payload().read_all(XML_LIMIT)

    def size_hint(self) -> int | None:
        raw = self.headers.get("x-amz-decoded-content-length") or self.headers.get("Content-Length")
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None


def subresources(q: Any) -> set[str]:
    """Query keys that select an operation (not auth, x-id or response-* parameters)."""
    return {
        k
        for k in q.keys()
        if not k.lower().startswith(("x-amz-", "response-"))
        and k not in ("x-id", "AWSAccessKeyId", "Signature", "Expires")
    }


def copy_source(h: Any) -> tuple[str, str]:
    raw = h.get("x-amz-copy-source", "")
    path, _, query = raw.partition("?")
    path = unquote(path).lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Invalid copy source object key")
    if query and query not in ("versionId=null",):
        raise S3Error("InvalidArgument", "Invalid version id specified")
    return bucket, key


class ObjectApi:
    def __init__(self, s3: S3Service) -> None:
        self.s3 = s3
        # the headers of a (shared, cached) object model, built once; copied per response
        self._object_headers = IdMemo[ObjectInfo, dict](lambda i: H.object_headers(i, False))

    async def dispatch(self, req: Req) -> web.StreamResponse:
        q, m = req.request.query, req.request.method
        if m == "PUT" and "uploadId" in q:
            if "x-amz-copy-source" in req.headers:
                return await self.upload_part_copy(req, q)
            return await self.upload_part(req, q)
        if m == "PUT" and "encryption" in q:
            arn, bucket_key = X.parse_object_encryption(await req.body())
            await update_encryption(
                self.s3.objects, req.caller, req.bucket, req.key, arn, bucket_key
            )
            return web.Response(status=200)
        if m == "PUT" and "x-amz-copy-source" in req.headers:
            return await self.copy(req)
        if m == "PUT" and not subresources(q):
            return await self.put(req)
        if m == "GET" and "uploadId" in q:
            return self.list_parts(req, q)
        if m in ("GET", "HEAD"):
            return await self.get(req, q, head=m == "HEAD")
        if m == "DELETE" and "uploadId" in q:
            self.s3.multipart.abort(req.caller, req.bucket, req.key, q["uploadId"])
            return web.Response(status=204)
        if m == "DELETE":
            self.s3.objects.delete(req.caller, req.bucket, req.key)
            return web.Response(status=204)
        if m == "POST" and "uploads" in q:
            return await self.create_upload(req)
        if m == "POST" and "uploadId" in q:
            return await self.complete(req, q)
        raise S3Error("MethodNotAllowed")

    # -- put / copy ----------------------------------------------------------------

    async def put(self, req: Req) -> web.Response:
        h = req.headers
        sse = H.parse_sse(h)
        self.s3.check_ssec_transport(req.secure, sse.customer)
        payload = req.payload()
        res = await self.s3.objects.put(
            req.caller,
            req.bucket,
            req.key,
            payload,
            sse=sse,
            content_type=h.get("Content-Type"),
            metadata=H.user_metadata(h),
            headers=H.standard_headers(h),
            checksum=H.parse_checksum(h, lambda: payload.trailers or {}),
            size_hint=req.size_hint(),
            write_conditions=H.conditions(h),
        )
        headers = {"ETag": f'"{res.etag}"', **H.sse_headers(res.sse, echo_context=True)}
        headers.update(H.checksum_headers(res.checksums, res.checksum_type))
        return web.Response(status=200, headers=headers)

    async def copy(self, req: Req) -> web.Response:
        h = req.headers
        src_bucket, src_key = copy_source(h)
        directive = h.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "Unknown metadata directive.")
        sse = H.parse_sse(h)
        src_customer = H.parse_customer(h, H.COPY_SSEC)
        self.s3.check_ssec_transport(req.secure, sse.customer, src_customer)
        new, src = await self.s3.objects.copy(
            req.caller,
            src_bucket,
            src_key,
            req.bucket,
            req.key,
            sse=sse,
            replace_metadata=directive == "REPLACE",
            content_type=h.get("Content-Type"),
            metadata=H.user_metadata(h),
            headers=H.standard_headers(h),
            source_conditions=H.conditions(h, "x-amz-copy-source-"),
            source_customer=src_customer,
        )
        body = X.copy_result_xml(
            "CopyObjectResult", new.etag, new.last_modified, dict(new.checksums)
        )
        return X_response(body, H.sse_headers(new.sse, echo_context=True))

    # -- get / head ----------------------------------------------------------------

    async def get(self, req: Req, q: Any, head: bool) -> web.StreamResponse:
        h = req.headers
        H.reject_sse_on_read(h)
        customer = H.parse_customer(h)
        self.s3.check_ssec_transport(req.secure, customer)
        cond = H.conditions(h)
        checksum_mode = (h.get("x-amz-checksum-mode") or "").upper() == "ENABLED"
        part_num = part_number(q) if "partNumber" in q else None
        if head:
            info = self.s3.objects.head(
                req.caller, req.bucket, req.key, conditions=cond, customer=customer
            )
            span = select_span(info, h.get("Range"), part_num)
            headers = self._headers(info, q, checksum_mode and span is None)
            if part_num is not None and info.parts_count:
                headers["x-amz-mp-parts-count"] = str(info.parts_count)
            return self._head_response(info, span, headers)
        res = await self.s3.objects.get(
            req.caller,
            req.bucket,
            req.key,
            range_header=h.get("Range"),
            conditions=cond,
            customer=customer,
            part_number=part_num,
            whole_max=WHOLE_BODY_MAX,
        )
        headers = self._headers(res.info, q, checksum_mode and not res.partial)
        if part_num is not None and res.info.parts_count:
            headers["x-amz-mp-parts-count"] = str(res.info.parts_count)
        return await self._stream(req, res, headers)

    def _headers(self, info: ObjectInfo, q: Any, checksum_mode: bool) -> dict[str, str]:
        if checksum_mode:
            headers = H.object_headers(info, True)
        else:
            headers = dict(self._object_headers.get(info))
        for param, name in H.RESPONSE_OVERRIDES.items():
            if param in q:
                headers[name] = q[param]
        return headers

    def _head_response(
        self, info: ObjectInfo, span: tuple[int, int] | None, headers: dict[str, str]
    ) -> web.StreamResponse:
        status = 200
        start, end = span or (0, info.size)
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = end - start
        return resp

    async def _stream(
        self, req: Req, res: GetResult, headers: dict[str, str]
    ) -> web.StreamResponse:
        if isinstance(res.body, bytes):  # a small object, already read whole
            return web.Response(status=200, headers=headers, body=res.body)
        status = 206 if res.partial else 200
        if res.partial:
            headers["Content-Range"] = f"bytes {res.start}-{res.end - 1}/{res.info.size}"
        if res.end - res.start <= WHOLE_BODY_MAX:
            try:
                body = b"".join([chunk async for chunk in res.body])
            finally:
                with contextlib.suppress(Exception):
                    await res.body.aclose()
            return web.Response(status=status, headers=headers, body=body)
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = res.end - res.start
        try:
            await resp.prepare(req.request)
            async for chunk in res.body:
                await resp.write(chunk)
            await resp.write_eof()
        except (S3Error, OSError, ConnectionError, ValueError):
            # Headers are gone: the only honest signal left is a broken connection.
            transport = req.request.transport
            if transport is not None:
                transport.close()
        finally:
            with contextlib.suppress(Exception):
                await res.body.aclose()
        return resp

    # -- delete many ---------------------------------------------------------------

    async def delete_many(self, req: Req) -> web.Response:
        keys, quiet = X.parse_delete(await req.body())
        results = self.s3.objects.delete_many(req.caller, req.bucket, keys)
        return X_response(
            X.delete_result_xml([(r.key, r.error, r.message) for r in results], quiet)
        )

    # -- multipart -----------------------------------------------------------------

    async def create_upload(self, req: Req) -> web.Response:
        h = req.headers
        sse = H.parse_sse(h)
        self.s3.check_ssec_transport(req.secure, sse.customer)
        alg = (h.get("x-amz-checksum-algorithm") or "").upper() or None
        up = await self.s3.multipart.create(
            req.caller,
            req.bucket,
            req.key,
            sse=sse,
            content_type=h.get("Content-Type"),
            metadata=H.user_metadata(h),
            headers=H.standard_headers(h),
            checksum_algorithm=alg,
            checksum_type=(h.get("x-amz-checksum-type") or "").upper() or None,
        )
        headers = H.sse_headers(up.sse, echo_context=True)
        if alg:
            headers["x-amz-checksum-algorithm"] = alg
            headers["x-amz-checksum-type"] = up.checksum_type or "COMPOSITE"
        return X_response(X.create_upload_xml(up), headers)

    async def upload_part(self, req: Req, q: Any) -> web.Response:
        h = req.headers
        customer = H.parse_customer(h)
        self.s3.check_ssec_transport(req.secure, customer)
        payload = req.payload()
        part = await self.s3.multipart.upload_part(
            req.caller,
            req.bucket,
            req.key,
            q["uploadId"],
            part_number(q),
            payload,
            checksum=H.parse_checksum(h, lambda: payload.trailers or {}),
            customer=customer,
            size_hint=req.size_hint(),
        )
        up = self.s3.multipart.upload(req.caller, req.bucket, req.key, q["uploadId"])
        headers = {"ETag": f'"{part.etag}"', **H.sse_headers(up.sse)}
        headers.update(H.checksum_headers(part.checksums, None))
        return web.Response(status=200, headers=headers)

    async def upload_part_copy(self, req: Req, q: Any) -> web.Response:
        h = req.headers
        src_bucket, src_key = copy_source(h)
        customer = H.parse_customer(h)
        src_customer = H.parse_customer(h, H.COPY_SSEC)
        self.s3.check_ssec_transport(req.secure, customer, src_customer)
        part, _ = await self.s3.multipart.upload_part_copy(
            req.caller,
            src_bucket,
            src_key,
            req.bucket,
            req.key,
            q["uploadId"],
            part_number(q),
            source_range=h.get("x-amz-copy-source-range"),
            source_customer=src_customer,
            customer=customer,
        )
        body = X.copy_result_xml(
            "CopyPartResult", part.etag, part.last_modified, dict(part.checksums)
        )
        up = self.s3.multipart.upload(req.caller, req.bucket, req.key, q["uploadId"])
        return X_response(body, H.sse_headers(up.sse))

    async def complete(self, req: Req, q: Any) -> web.Response:
        parts, part_checksums = X.parse_complete(await req.body())
        customer = H.parse_customer(req.headers)
        sent = H.parse_checksum(req.headers, dict)
        res, up = await self.s3.multipart.complete(
            req.caller,
            req.bucket,
            req.key,
            q["uploadId"],
            parts,
            customer=customer,
            full_checksum=sent.value,
            part_checksums=part_checksums,
        )
        location = f"{req.request.scheme}://{req.request.host}/{req.bucket}/{req.key}"
        body = X.complete_xml(
            location, req.bucket, req.key, res.etag, dict(res.checksums), res.checksum_type
        )
        headers = H.sse_headers(res.sse)
        if res.checksum_type:
            headers["x-amz-checksum-type"] = res.checksum_type
        return X_response(body, headers)

    def list_parts(self, req: Req, q: Any) -> web.Response:
        from s3sim.http.s3_api import int_param

        marker = int_param(q, "part-number-marker", 0, 0, 10_000)
        max_parts = min(int_param(q, "max-parts", 1000, 0, 2**31 - 1), 1000)
        up, parts, truncated = self.s3.multipart.list_parts(
            req.caller, req.bucket, req.key, q["uploadId"], marker, max_parts
        )
        return X_response(X.list_parts_xml(up, parts, marker, max_parts, truncated))


def part_number(q: Any) -> int:
    try:
        return int(q.get("partNumber", ""))
    except ValueError:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=q.get("partNumber", ""),
        ) from None


def X_response(body: bytes, headers: dict[str, str] | None = None) -> web.Response:  # noqa: N802
    return web.Response(status=200, body=body, headers=headers, content_type="application/xml")
