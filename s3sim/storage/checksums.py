"""S3's object checksums, computed incrementally: MD5 (ETag), CRC32, CRC32C, CRC64NVME,
SHA1, SHA256, in S3's wire forms (hex ETag, base64 checksums), and the multipart
composite forms ("<md5 of md5s>-N", "<b64 of checksum of checksums>-N").

CRC32C and CRC64NVME come from awscrt (AWS's common runtime, hardware-accelerated,
the same code botocore uses for them); without it a slow table-driven fallback runs.
"""

from __future__ import annotations

import hashlib
import zlib
from base64 import b64decode, b64encode
from collections.abc import Iterable
from typing import Protocol

try:
    from awscrt import checksums as _crt
except ImportError:  # pragma: no cover - exercised only where awscrt is absent
    _crt = None

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


def _table(poly: int) -> list[int]:
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        out.append(c)
    return out


def _slow_crc(table: list[int], mask: int, data: bytes | memoryview, prev: int) -> int:
    c = prev ^ mask
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


_T32C = _table(0x82F63B78)
_T64NVME = _table(0x9A6C9329AC4BC9B5)


def crc32c(data: bytes | memoryview, prev: int = 0) -> int:
    if _crt is not None:
        return _crt.crc32c(data, prev)
    return _slow_crc(_T32C, 0xFFFFFFFF, data, prev)


def crc64nvme(data: bytes | memoryview, prev: int = 0) -> int:
    if _crt is not None:
        return _crt.crc64nvme(data, prev)
    return _slow_crc(_T64NVME, 0xFFFFFFFFFFFFFFFF, data, prev)


class _Crc:
    def __init__(self, fn, width: int) -> None:  # type: ignore[no-untyped-def]
        self._fn, self._width, self._value = fn, width, 0

    def update(self, data: bytes | memoryview, /) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def canonical(algorithm: str) -> str:
    name = algorithm.upper()
    if name not in ALGORITHMS:
        raise ValueError(f"unsupported checksum algorithm {algorithm!r}")
    return name


def new_hasher(algorithm: str) -> Hasher:
    name = canonical(algorithm)
    if name == "CRC32":
        return _Crc(zlib.crc32, 4)
    if name == "CRC32C":
        return _Crc(crc32c, 4)
    if name == "CRC64NVME":
        return _Crc(crc64nvme, 8)
    return hashlib.new(name.lower())


def b64(digest: bytes) -> str:
    return b64encode(digest).decode("ascii")


def checksum(algorithm: str, data: bytes) -> str:
    """The base64 checksum of `data`, as in x-amz-checksum-<algorithm>."""
    h = new_hasher(algorithm)
    h.update(data)
    return b64(h.digest())


class MultiHasher:
    """MD5 plus the requested checksums over one stream (update with big buffers)."""

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        self._md5 = hashlib.md5()
        self._hashers = {canonical(a): new_hasher(a) for a in algorithms}

    def update(self, data: bytes | memoryview) -> None:
        self._md5.update(data)
        for h in self._hashers.values():
            h.update(data)

    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    def checksums(self) -> dict[str, str]:
        return {a: b64(h.digest()) for a, h in self._hashers.items()}


def multipart_etag(part_md5_hexes: Iterable[str]) -> str:
    """S3's multipart ETag (unquoted): MD5 of the concatenated part MD5s, "-N"."""
    parts = [bytes.fromhex(h) for h in part_md5_hexes]
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def composite_checksum(algorithm: str, part_b64s: Iterable[str]) -> str:
    """S3's COMPOSITE checksum: the checksum of the parts' raw checksums, "-N"."""
    raw = [b64decode(v, validate=True) for v in part_b64s]
    return f"{checksum(algorithm, b''.join(raw))}-{len(raw)}"
