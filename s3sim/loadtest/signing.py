"""Client-side AWS SigV4 header signing, tuned for a load generator.

The signing key is derived once per (date, region, service) and cached, so each request
costs one SHA-256 of the canonical request and one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def uri_encode_path(path: str) -> str:
    """S3-style canonical path: each byte outside the unreserved set percent-encoded, '/' kept."""
    return quote(path, safe="/-_.~")


def canonical_query(params: dict[str, str] | None) -> str:
    if not params:
        return ""
    items = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in items)


class Signer:
    """Signs requests for one identity, region and service."""

    def __init__(self, access_key: str, secret_key: str, region: str, service: str) -> None:
        self.access_key = access_key
        self._secret = secret_key
        self.region = region
        self.service = service
        self._key_date = ""
        self._key = b""

    def _key_for(self, date: str) -> bytes:
        if date != self._key_date:
            self._key = signing_key(self._secret, date, self.region, self.service)
            self._key_date = date
        return self._key

    def authorization(
        self,
        method: str,
        canonical_path: str,
        query: str,
        headers: dict[str, str],
        payload_hash: str,
        amz_date: str,
    ) -> str:
        """The Authorization header value. `headers` must hold every header to sign
        (lower-case names, including host, x-amz-date and x-amz-content-sha256 for S3);
        `canonical_path` is already URI-encoded and `query` already canonical."""
        names = sorted(headers)
        canon_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        creq = f"{method}\n{canonical_path}\n{query}\n{canon_headers}\n{signed}\n{payload_hash}"
        date = amz_date[:8]
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        sts = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
        sig = hmac.new(self._key_for(date), sts.encode(), hashlib.sha256).hexdigest()
        return (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={sig}"
        )
