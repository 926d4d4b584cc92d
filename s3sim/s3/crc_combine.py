"""CRC of a concatenation from the parts' CRCs (S3's FULL_OBJECT multipart checksums).

zlib's crc32_combine method (multiplication modulo the CRC polynomial, reflected bit
order), generalised to CRC32, CRC32C and CRC64NVME; works on final CRC values.
"""

from __future__ import annotations

from base64 import b64decode, b64encode
from collections.abc import Iterable

# algorithm -> (reflected polynomial, width in bits)
CRCS: dict[str, tuple[int, int]] = {
    "CRC32": (0xEDB88320, 32),
    "CRC32C": (0x82F63B78, 32),
    "CRC64NVME": (0x9A6C9329AC4BC9B5, 64),
}


def _multmodp(a: int, b: int, poly: int, width: int) -> int:
    m = 1 << (width - 1)
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1


def _x8nmodp(n: int, poly: int, width: int) -> int:
    """x^(8n) modulo the polynomial, in reflected form."""
    p = 1 << (width - 1)  # x^0
    square = 1 << (width - 9)  # x^8: one byte
    while n:
        if n & 1:
            p = _multmodp(square, p, poly, width)
        square = _multmodp(square, square, poly, width)
        n >>= 1
    return p


def combine(algorithm: str, crc1: int, crc2: int, len2: int) -> int:
    poly, width = CRCS[algorithm]
    return _multmodp(_x8nmodp(len2, poly, width), crc1, poly, width) ^ crc2


def full_object_checksum(algorithm: str, parts: Iterable[tuple[str, int]]) -> str:
    """The base64 CRC of the whole object from (part base64 CRC, part size) pairs."""
    width = CRCS[algorithm][1] // 8
    total: int | None = None
    for value, size in parts:
        crc = int.from_bytes(b64decode(value), "big")
        total = crc if total is None else combine(algorithm, total, crc, size)
    return b64encode((total or 0).to_bytes(width, "big")).decode()
