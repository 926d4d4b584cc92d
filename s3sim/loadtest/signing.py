"""Client-side SigV4 for the load generator, on the shared pure signer s3sim.http.sigv4.

The algorithm (canonical request, string to sign, key derivation) is the shared one; what
this adds is speed: the signing key is derived once per (date, region, service) instead of
on every request, callers hand in the path and query already canonical, and the headers
(one value per lower-case name) are canonicalised without the shared collector of
repeated headers (tests compare every signature with botocore's). That makes a
request cost ~7 µs to sign instead of ~28 µs with `sigv4.sign_headers`, a fifth of the
client's CPU per small request.
"""

from __future__ import annotations

from urllib.parse import quote

from s3sim.http.sigv4 import (
    ALGORITHM,
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    Scope,
    canonical_request,
    string_to_sign,
)
from s3sim.http.sigv4_keys import HmacKey, sign, signing_key

__all__ = ["EMPTY_SHA256", "UNSIGNED_PAYLOAD", "Signer", "canonical_query", "uri_encode_path"]


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
        self._scope = Scope(access_key, "", region, service)
        self._key = b""

    def _scope_and_key(self, date: str) -> tuple[Scope, bytes]:
        if date != self._scope.date:
            self._key = HmacKey(signing_key(self._secret, date, self.region, self.service))
            self._scope = Scope(self.access_key, date, self.region, self.service)
        return self._scope, self._key

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
        # one value per (lower-case) name: the canonical block without the general
        # collection of repeated headers that sigv4.canonical_headers does
        block = "".join([f"{n}:{' '.join(headers[n].split())}\n" for n in names])
        creq = canonical_request(method, canonical_path, query, block, names, payload_hash)
        scope, key = self._scope_and_key(amz_date[:8])
        signature = sign(key, string_to_sign(amz_date, scope, creq))
        return (
            f"{ALGORITHM} Credential={self.access_key}/{scope.text}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
