"""Signed S3, KMS and Connect requests over one `HttpConnection`, timed.

Latency is measured from the moment the signed request starts to be written to the moment
the last byte of the response has been read (signing itself is not counted).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence

from kmscore.frozen import frozen
from s3sim.loadtest.rawhttp import ConnectionFailed, HttpConnection, RequestTimeout, Response
from s3sim.loadtest.signing import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    Signer,
    canonical_query,
    uri_encode_path,
)

DEFAULT_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DEFAULT_REGION = "us-east-1"
SSE_MODES = ("none", "AES256", "aws:kms", "aws:kms+bucket-key")
_XML_CODE = re.compile(rb"<Code>([^<]{1,200})</Code>")
_XML_TAG = "<{0}>([^<]*)</{0}>"


class RequestFailed(Exception):
    """No HTTP response: connection failure or timeout. `code` names it in reports."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@frozen
class Credentials:
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    region: str = DEFAULT_REGION


def error_code(resp: Response) -> str:
    """The AWS error code of a failed response: S3 XML <Code>, JSON __type, else HTTP<status>."""
    body = resp.body
    m = _XML_CODE.search(body)
    if m:
        return m.group(1).decode("utf-8", "replace")
    doc = _json_error(body)
    code = doc.get("__type") or doc.get("code") or doc.get("Code")
    if isinstance(code, str) and code:
        return code.rsplit("#", 1)[-1]
    amz = resp.headers.get("x-amzn-errortype")
    return amz.split(":", 1)[0] if amz else f"HTTP{resp.status}"


def error_message(resp: Response) -> str:
    """The AWS error message of a failed response: S3 XML <Message>, JSON message/Message,
    else the body's first 200 characters on one line."""
    body = resp.body
    msg = (doc := _json_error(body)).get("message") or doc.get("Message")
    if isinstance(msg, str):
        return msg
    msg = xml_value(body, "Message")
    if msg is not None:
        return msg
    return " ".join(body[:200].decode("utf-8", "replace").split())


def _json_error(body: bytes) -> dict:
    """A JSON error document's fields; empty when the body is not a JSON object."""
    if body[:1] != b"{":
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def xml_value(body: bytes, tag: str) -> str | None:
    m = re.search(_XML_TAG.format(tag), body.decode("utf-8", "replace"))
    return m.group(1) if m else None


def sse_headers(mode: str, kms_key_id: str | None) -> dict[str, str]:
    if mode not in SSE_MODES:
        raise ValueError(f"--sse must be one of {', '.join(SSE_MODES)}")
    if mode == "none":
        return {}
    if mode == "AES256":
        return {"x-amz-server-side-encryption": "AES256"}
    headers = {"x-amz-server-side-encryption": "aws:kms"}
    if kms_key_id:
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = kms_key_id
    if mode == "aws:kms+bucket-key":
        headers["x-amz-server-side-encryption-bucket-key-enabled"] = "true"
    return headers


class AwsClient:
    """Builds, signs and sends requests; returns (response, latency in seconds)."""

    def __init__(
        self,
        conn: HttpConnection,
        creds: Credentials,
        *,
        signed_payload: bool = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.creds = creds
        self.signed_payload = signed_payload
        self._signers = {
            s: Signer(creds.access_key, creds.secret_key, creds.region, s)
            for s in ("s3", "kms", "connect")
        }
        self._wall = wall_clock
        self._date_second = -1
        self._amz_date = ""

    def amz_date(self) -> str:
        now = int(self._wall())
        if now != self._date_second:
            self._date_second = now
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        return self._amz_date

    async def send(
        self,
        method: str,
        path: str,
        *,
        service: str = "s3",
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Sequence[bytes | memoryview] = (),
        payload_hash: str | None = None,
        keep_body: bool = False,
        sign: bool = True,
    ) -> tuple[Response, float]:
        cpath = uri_encode_path(path)
        cquery = canonical_query(query)
        hdrs = dict(headers) if headers else {}
        size = sum(len(c) for c in body)
        if body or method in ("PUT", "POST"):
            hdrs["content-length"] = str(size)
        if sign:
            self._sign(method, cpath, cquery, hdrs, body, payload_hash, service)
        target = f"{cpath}?{cquery}" if cquery else cpath
        t0 = time.perf_counter()
        try:
            resp = await self.conn.request(method, target, hdrs, body, keep_body)
        except RequestTimeout as exc:
            self.conn.close()
            raise RequestFailed("Timeout", str(exc)) from exc
        except ConnectionFailed as exc:
            self.conn.close()
            raise RequestFailed("ConnectionError", str(exc)) from exc
        return resp, time.perf_counter() - t0

    def _sign(self, method, cpath, cquery, hdrs, body, payload_hash, service) -> None:
        if payload_hash is None:
            if not body:
                payload_hash = EMPTY_SHA256
            elif service == "s3" and not self.signed_payload:
                payload_hash = UNSIGNED_PAYLOAD
            else:
                h = hashlib.sha256()
                for c in body:
                    h.update(c)
                payload_hash = h.hexdigest()
        amz_date = self.amz_date()
        to_sign = {"host": self.conn.endpoint.host_header, "x-amz-date": amz_date}
        if service == "s3":
            to_sign["x-amz-content-sha256"] = payload_hash
        for k, v in hdrs.items():
            lk = k.lower()
            if lk.startswith("x-amz-") or lk == "content-type":
                to_sign[lk] = v
        signer = self._signers[service]
        auth = signer.authorization(method, cpath, cquery, to_sign, payload_hash, amz_date)
        hdrs["x-amz-date"] = amz_date
        if service == "s3":
            hdrs["x-amz-content-sha256"] = payload_hash
        hdrs["authorization"] = auth

    # S3
    async def put_object(self, bucket, key, body, headers=None) -> tuple[Response, float]:
        return await self.send("PUT", f"/{bucket}/{key}", headers=headers, body=body)

    async def get_object(self, bucket: str, key: str) -> tuple[Response, float]:
        return await self.send("GET", f"/{bucket}/{key}")

    async def ensure_bucket(self, bucket: str) -> Response | None:
        """Create the bucket unless it exists; returns the failing response, or None."""
        resp, _ = await self.send("HEAD", f"/{bucket}")
        if resp.status == 200:
            return None
        body: list[bytes] = []
        if self.creds.region != "us-east-1":
            body = [
                (
                    "<CreateBucketConfiguration><LocationConstraint>"
                    f"{self.creds.region}</LocationConstraint></CreateBucketConfiguration>"
                ).encode()
            ]
        resp, _ = await self.send("PUT", f"/{bucket}", body=body, keep_body=True)
        if resp.status == 200 or error_code(resp) == "BucketAlreadyOwnedByYou":
            return None
        return resp

    # KMS (awsJson1_1)
    async def kms(self, action: str, payload: dict) -> tuple[Response, float]:
        data = json.dumps(payload).encode()
        headers = {
            "content-type": "application/x-amz-json-1.1",
            "x-amz-target": f"TrentService.{action}",
        }
        return await self.send(
            "POST", "/", service="kms", headers=headers, body=[data], keep_body=True
        )

    # Connect (restJson1), for ingest setup
    async def connect(self, method: str, path: str, payload: dict) -> tuple[Response, float]:
        data = json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        return await self.send(
            method, path, service="connect", headers=headers, body=[data], keep_body=True
        )
