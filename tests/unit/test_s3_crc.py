"""FULL_OBJECT checksums: combining part CRCs equals the CRC of the concatenation."""

from __future__ import annotations

import os

import pytest

from s3sim.s3.crc_combine import full_object_checksum
from s3sim.storage.checksums import checksum


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_combined_crc_equals_crc_of_whole(algorithm):
    parts = [os.urandom(n) for n in (1000, 1, 70_000, 0, 333)]
    combined = full_object_checksum(algorithm, [(checksum(algorithm, p), len(p)) for p in parts])
    assert combined == checksum(algorithm, b"".join(parts))
    assert full_object_checksum(algorithm, [(checksum(algorithm, b"x"), 1)]) == checksum(
        algorithm, b"x"
    )
