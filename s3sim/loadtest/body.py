"""Request bodies without per-request allocation: slices of one pre-generated random buffer."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

POOL_MAX = 16 << 20
SLICE = 1 << 20


class BodyPool:
    """Random bytes generated once; a body of any size is a sequence of memoryview slices
    of it (bodies larger than the pool repeat it). `offset` varies where a body starts, so
    consecutive objects differ."""

    def __init__(self, max_size: int, rng: Callable[[int], bytes] = os.urandom) -> None:
        size = max(1, min(max_size, POOL_MAX))
        self._view = memoryview(rng(size + SLICE))
        self._size = size

    def chunks(self, size: int, offset: int = 0) -> list[memoryview]:
        if size <= self._size:
            start = offset % (len(self._view) - size + 1)
            return [self._view[start : start + size]]
        out: list[memoryview] = []
        left = size
        while left:
            n = min(left, self._size)
            out.append(self._view[:n])
            left -= n
        return out

    @staticmethod
    def sha256(chunks: list[memoryview]) -> str:
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        return h.hexdigest()
