"""Inline blobs: a small object's sealed file kept in the metadata index, not on its own
(docs/FORMAT.md, section 8). Their ids are `i` + 32 hex digits, never a file's id."""

from __future__ import annotations

from collections.abc import Callable

MAX_PLAIN = 64 << 10  # plaintext bytes: a body up to this size is written inline
PREFIX = "i"


def new_id(rng: Callable[[int], bytes]) -> str:
    return PREFIX + rng(16).hex()


def is_inline(blob_id: str) -> bool:
    return blob_id.startswith(PREFIX)
