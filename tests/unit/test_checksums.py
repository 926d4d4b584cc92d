"""s3sim.storage.checksums against known check values and botocore's own implementations."""

from __future__ import annotations

import hashlib
import os
import zlib
from base64 import b64encode

import pytest
from botocore import httpchecksum

from s3sim.storage import checksums as ck

CHECK = b"123456789"  # the CRC catalogue's check input


def test_crc_check_values():
    assert ck.new_hasher("CRC32").digest() == bytes(4)
    for alg, value, width in [
        ("CRC32", 0xCBF43926, 4),
        ("CRC32C", 0xE3069283, 4),
        ("CRC64NVME", 0xAE8B14860A799888, 8),
    ]:
        h = ck.new_hasher(alg)
        h.update(CHECK)
        assert h.digest() == value.to_bytes(width, "big"), alg


BOTOCORE = {
    "CRC32": httpchecksum.Crc32Checksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}
if httpchecksum.HAS_CRT:
    BOTOCORE["CRC32C"] = httpchecksum.CrtCrc32cChecksum
    BOTOCORE["CRC64NVME"] = httpchecksum.CrtCrc64NvmeChecksum


@pytest.mark.parametrize("alg", ck.ALGORITHMS)
def test_incremental_matches_botocore(alg):
    if alg not in BOTOCORE:
        pytest.skip("botocore needs awscrt for this algorithm")
    data = os.urandom(300_001)
    ours, theirs = ck.new_hasher(alg), BOTOCORE[alg]()
    for a, b in [(0, 1), (1, 1000), (1000, 65536), (65536, 300_001)]:
        ours.update(memoryview(data)[a:b])
        theirs.update(data[a:b])
    assert ck.b64(ours.digest()) == theirs.b64digest()
    assert ck.checksum(alg, data) == theirs.b64digest()


def test_slow_fallback_agrees_with_the_fast_path():
    data = os.urandom(5000)
    assert ck._slow_crc(ck._T32C, 0xFFFFFFFF, data, 0) == ck.crc32c(data)
    mask = 0xFFFFFFFFFFFFFFFF
    assert ck._slow_crc(ck._T64NVME, mask, data[:10], 0) == ck.crc64nvme(data[:10])
    prev = ck.crc64nvme(data[:10])
    assert ck._slow_crc(ck._T64NVME, mask, data[10:], prev) == ck.crc64nvme(data)


def test_multi_hasher_forms():
    m = ck.MultiHasher(["crc32", "SHA256"])
    m.update(b"hello ")
    m.update(memoryview(b"world"))
    assert m.md5_hex() == hashlib.md5(b"hello world").hexdigest()
    assert m.checksums() == {
        "CRC32": b64encode(zlib.crc32(b"hello world").to_bytes(4, "big")).decode(),
        "SHA256": b64encode(hashlib.sha256(b"hello world").digest()).decode(),
    }
    assert ck.MultiHasher().checksums() == {}


def test_unknown_algorithm():
    with pytest.raises(ValueError):
        ck.new_hasher("MD4")
    with pytest.raises(ValueError):
        ck.MultiHasher(["XXHASH64"])


def test_multipart_etag():
    parts = [os.urandom(100), os.urandom(50)]
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert ck.multipart_etag(md5s) == f"{want}-2"
    # S3's documented shape: 32 hex digits, dash, part count
    assert ck.multipart_etag(["d41d8cd98f00b204e9800998ecf8427e"]).endswith("-1")


@pytest.mark.parametrize("alg", ck.ALGORITHMS)
def test_composite_checksum(alg):
    parts = [os.urandom(70), os.urandom(30), os.urandom(5)]
    values = [ck.checksum(alg, p) for p in parts]
    raw = b"".join(_raw(alg, p) for p in parts)
    assert ck.composite_checksum(alg, values) == f"{ck.checksum(alg, raw)}-3"


def _raw(alg: str, data: bytes) -> bytes:
    h = ck.new_hasher(alg)
    h.update(data)
    return h.digest()
