"""SigV4 signing keys: their derivation, a per-process cache, and HMAC-SHA256 under them.

Split from sigv4.py (the parsing, the canonical request and the verification), which
signs with `sign`. A cached key is an `HmacKey`: the same bytes, with its HMAC pads
computed once.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3sim.http.sigv4 import Scope


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.digest(key, msg.encode(), "sha256")


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class HmacKey(bytes):
    """A signing key (the same bytes) that signs fast: HMAC-SHA256 (RFC 2104) from its
    two padded SHA-256 states, computed once. Per message ~1.1 us against ~2.8 us for
    `hmac.digest`, which has OpenSSL look the digest up on every call; a cached signing
    key signs every request of a day."""

    def __new__(cls, key: bytes) -> HmacKey:
        self = super().__new__(cls, key)
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))
        return self

    def digest(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def sign(key: bytes, text: str) -> str:
    if type(key) is HmacKey:
        return key.digest(text.encode()).hex()
    return hmac.digest(key, text.encode(), "sha256").hex()


class SigningKeys:
    """Signing keys cached per (secret, date, region, service); bounded."""

    def __init__(self, max_entries: int = 256) -> None:
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._max = max_entries

    def get(self, secret: str, scope: Scope) -> bytes:
        k = (secret, scope.date, scope.region, scope.service)
        key = self._keys.get(k)
        if key is None:
            if len(self._keys) >= self._max:
                self._keys.clear()
            key = signing_key(secret, scope.date, scope.region, scope.service)
            key = self._keys[k] = HmacKey(key)
        return key
