"""Authenticating a request: SigV4 (header or presigned query) against the identities.

`Authenticator.authenticate(request)` returns a RequestAuth or raises HttpError (with
the service set when it is known). The middleware in app.py stores the result in
request["auth"]; for non-S3 services it also stores the verified body in request["body"].
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from kmscore.caller import Caller
from kmscore.clock import Clock
from kmscore.frozen import frozen
from s3sim.http import sigv2, sigv4, sigv4_keys
from s3sim.http.errors import HttpError, protocol_of
from s3sim.http.payload import STREAMING_MODES, is_sha256_hex
from s3sim.identities import Identity

BODY_LIMIT = 1024 * 1024
MAX_SKEW = timedelta(minutes=15)


@frozen
class RequestAuth:
    """Who sent a request and how it was signed."""

    identity: Identity
    caller: Caller
    service: str  # the credential scope's service: s3, kms, cloudtrail, connect
    region: str  # the credential scope's region
    request_id: str
    presigned: bool = False
    payload_hash: str = sigv4.UNSIGNED_PAYLOAD  # what the signature covers
    signing: sigv4.StreamSigning | None = None  # for aws-chunked signed bodies
    anonymous: bool = False  # unsigned S3 request: the S3 adapter answers it (never allowed)


ANONYMOUS = Identity("", "", "anonymous", "", ())


def guess_service(headers: Mapping[str, str]) -> str:
    """The service of a request that carries no credential scope (for its error shape)."""
    target = headers.get("x-amz-target", "")
    if target.startswith("TrentService."):
        return "kms"
    if "cloudtrail" in target.lower():
        return "cloudtrail"
    return "s3"


class BufferedRandom:
    """`rng`'s bytes drawn 4 KiB at a time: request ids need no syscall each (os.urandom
    is one); the same bytes, in order, as calling `rng` directly would give."""

    def __init__(self, rng: Callable[[int], bytes], block: int = 4096) -> None:
        self._rng = rng
        self._block = block
        self._buf = b""
        self._pos = 0

    def __call__(self, n: int) -> bytes:
        pos, end = self._pos, self._pos + n
        if end > len(self._buf):
            self._buf = self._buf[pos:] + self._rng(max(self._block, n))
            pos, end = 0, n
        self._pos = end
        return self._buf[pos:end]


def new_request_id(service: str, rng: Callable[[int], bytes]) -> str:
    if protocol_of(service) == "s3":
        return rng(8).hex().upper()
    return str(uuid.UUID(bytes=rng(16), version=4))


def bucket_from_host(host: str) -> str | None:
    """`<bucket>.localhost[:port]` -> bucket (virtual-host style addressing)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    if name.endswith(".localhost") and len(name) > len(".localhost"):
        return name[: -len(".localhost")]
    return None


class Authenticator:
    def __init__(
        self,
        identities: Mapping[str, Identity],
        clock: Clock,
        rng: Callable[[int], bytes] = os.urandom,
        max_skew: timedelta = MAX_SKEW,
        body_limit: int = BODY_LIMIT,
        region: str = "us-east-1",
    ) -> None:
        self.region = region
        self.identities = identities
        self.clock = clock
        self.rng = BufferedRandom(rng)  # request ids only
        self.max_skew = max_skew
        self.body_limit = body_limit
        self._keys = sigv4_keys.SigningKeys()

    async def authenticate(self, request: Any) -> RequestAuth:
        headers = request.headers
        raw_path, _, raw_query = request.raw_path.partition("?")
        service = guess_service(headers)
        if "authorization" not in headers and sigv2.is_presigned_v2(raw_query):
            return self._authenticate_v2(request, raw_path, raw_query)
        try:
            info = sigv4.find_signature(raw_query, headers)
            if info is None and service == "s3":
                return self._anonymous(request)
            if info is None:
                raise HttpError("missing_auth")
            service = info.scope.service
            identity = self.identities.get(info.scope.access_key)
            if identity is None:
                raise HttpError("unknown_key", details={"AWSAccessKeyId": info.scope.access_key})
            self._check_time(info)
            payload_hash = (  # S3 names its payload hash; other services' bodies are read
                _s3_payload_hash(request.headers, info)
                if service == "s3"
                else await self._body_hash(request)
            )
            key = self._keys.get(identity.secret_access_key, info.scope)
            received = sigv4.ReceivedRequest(request.method, raw_path, raw_query, headers)
            seed = sigv4.verify(info, key, received, payload_hash)
        except sigv4.SigV4Error as e:
            raise HttpError(e.problem, e.message or None, service, e.details) from None
        except HttpError as e:
            e.service = e.service or service
            raise
        signing = None
        if payload_hash in STREAMING_MODES and not info.presigned:
            signing = sigv4.StreamSigning(key, info.amz_date, info.scope, seed)
        caller = identity.caller(request.remote or "", headers.get("User-Agent", ""))
        return RequestAuth(
            identity=identity,
            caller=caller,
            service=service,
            region=info.scope.region,
            request_id=new_request_id(service, self.rng),
            presigned=info.presigned,
            payload_hash=payload_hash,
            signing=signing,
        )

    def _anonymous(self, request: Any) -> RequestAuth:
        """An unsigned S3 request: S3 says NoSuchBucket before AccessDenied (s3_api.py)."""
        caller = ANONYMOUS.caller(request.remote or "", request.headers.get("User-Agent", ""))
        request_id = new_request_id("s3", self.rng)
        return RequestAuth(ANONYMOUS, caller, "s3", self.region, request_id, anonymous=True)

    def _authenticate_v2(self, request: Any, raw_path: str, raw_query: str) -> RequestAuth:
        """S3 presigned URL with Signature Version 2 (boto3's default for custom endpoints)."""
        try:
            info = sigv2.parse(raw_query)
            identity = self.identities.get(info.access_key)
            if identity is None:
                raise HttpError("unknown_key")
            if self.clock.time() > info.expires:
                raise HttpError("expired")
            bucket = bucket_from_host(request.headers.get("Host", ""))
            sigv2.verify(
                info,
                identity.secret_access_key,
                request.method,
                raw_path,
                raw_query,
                request.headers.items(),
                bucket,
            )
        except sigv4.SigV4Error as e:
            raise HttpError(e.problem, e.message or None, "s3") from None
        except HttpError as e:
            e.service = "s3"
            raise
        caller = identity.caller(request.remote or "", request.headers.get("User-Agent", ""))
        return RequestAuth(
            identity=identity,
            caller=caller,
            service="s3",
            region=self.region,
            request_id=new_request_id("s3", self.rng),
            presigned=True,
            payload_hash=request.headers.get("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD),
        )

    def _check_time(self, info: sigv4.SignedInfo) -> None:
        signed_at = info.time
        if info.presigned:
            assert info.expires is not None
            # Expiry runs on simulated time, so advancing the clock expires URLs.
            if self.clock.now() > signed_at + timedelta(seconds=info.expires):
                raise HttpError("expired")
            return
        now = self.clock.wall()  # clients sign with real time, not simulated time
        if abs(now - signed_at) > self.max_skew:
            details = {
                "RequestTime": info.amz_date,
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "MaxAllowedSkewMilliseconds": str(int(self.max_skew.total_seconds() * 1000)),
            }
            raise HttpError(
                "skew",
                _skew_message(info.scope.service, info.amz_date, now, self.max_skew),
                details=details,
            )

    async def _body_hash(self, request: Any) -> str:
        """A JSON service's body, read whole (it is small), checked against its claim."""
        claimed = request.headers.get("x-amz-content-sha256")
        body = await read_body(request, self.body_limit)
        request["body"] = body
        actual = hashlib.sha256(body).hexdigest()
        if claimed is None or claimed == sigv4.UNSIGNED_PAYLOAD:
            return claimed or actual
        if claimed.lower() != actual:
            raise HttpError("content_sha256_mismatch")
        return claimed


def _s3_payload_hash(headers: Mapping[str, str], info: sigv4.SignedInfo) -> str:
    """S3's claim, checked for shape only: the body is verified as it streams (payload.py)."""
    claimed = headers.get("x-amz-content-sha256")
    if claimed is None:
        if info.presigned:
            return sigv4.UNSIGNED_PAYLOAD
        raise HttpError("missing_content_sha256")
    if not (
        claimed == sigv4.UNSIGNED_PAYLOAD or claimed in STREAMING_MODES or is_sha256_hex(claimed)
    ):
        raise HttpError("bad_content_sha256")
    return claimed


def _skew_message(service: str, amz_date: str, now: datetime, skew: timedelta) -> str | None:
    if protocol_of(service) == "s3":
        return None
    minutes = int(skew.total_seconds() // 60)
    earliest = sigv4.format_amz_date(now - skew)
    latest = sigv4.format_amz_date(now + skew)
    if sigv4.parse_amz_date(amz_date) < now:
        return (
            f"Signature expired: {amz_date} is now earlier than {earliest} "
            f"({sigv4.format_amz_date(now)} - {minutes} min.)"
        )
    return (
        f"Signature not yet current: {amz_date} is still later than {latest} "
        f"({sigv4.format_amz_date(now)} + {minutes} min.)"
    )


async def read_body(request: Any, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (HttpError "too_large" beyond)."""
    parts, total = [], 0
    while True:
        piece = await request.content.readany()
        if not piece:
            return b"".join(parts)
        total += len(piece)
        if total > limit:
            raise HttpError("too_large")
        parts.append(piece)
