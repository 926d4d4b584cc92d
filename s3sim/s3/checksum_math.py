"""Composite (multipart) checksums: the checksum of the parts' checksums, "-N".

Only small inputs go through here (N part digests), so CRC32C and CRC64NVME use
plain table-driven Python.
"""

from __future__ import annotations

import hashlib
import zlib
from base64 import b64decode, b64encode


def _table(poly: int, bits: int) -> list[int]:
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        out.append(c & ((1 << bits) - 1))
    return out


_CRC32C = _table(0x82F63B78, 32)
_CRC64NVME = _table(0x9A6C9329AC4BC9B5, 64)


def _crc(table: list[int], bits: int, data: bytes) -> int:
    mask = (1 << bits) - 1
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "CRC32C":
        return _crc(_CRC32C, 32, data).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        return _crc(_CRC64NVME, 64, data).to_bytes(8, "big")
    if algorithm == "SHA1":
        return hashlib.sha1(data).digest()
    if algorithm == "SHA256":
        return hashlib.sha256(data).digest()
    raise ValueError(algorithm)


def composite_checksum(algorithm: str, part_values: list[str]) -> str:
    """S3's COMPOSITE checksum of a multipart object from its parts' base64 checksums."""
    raw = b"".join(b64decode(v) for v in part_values)
    return f"{b64encode(digest(algorithm, raw)).decode()}-{len(part_values)}"
