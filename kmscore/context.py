"""Encryption context: validation and an unambiguous, canonical AAD encoding.

encode(ctx) = b"KMSCTX\\x01" || u32be(n) || for each pair, sorted by UTF-8 key bytes:
              u32be(len(key)) || key || u32be(len(value)) || value
so {"ab": "c"} and {"a": "bc"} can never encode to the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from kmscore.errors import ValidationException

MAGIC = b"KMSCTX\x01"
MAX_CONTEXT_BYTES = 8192


def normalize(context: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a context (strings only) and return it as a plain dict (None -> {})."""
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise ValidationException("EncryptionContext must be a map of strings")
    out: dict[str, str] = {}
    for k, v in context.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValidationException("EncryptionContext keys and values must be strings")
        if not k:
            raise ValidationException("EncryptionContext keys must not be empty")
        out[k] = v
    return out


def encode(context: Mapping[str, str] | None) -> bytes:
    """The canonical, length-prefixed encoding used as AAD."""
    pairs = sorted((k.encode(), v.encode()) for k, v in normalize(context).items())
    parts = [MAGIC, struct.pack(">I", len(pairs))]
    for k, v in pairs:
        parts += [struct.pack(">I", len(k)), k, struct.pack(">I", len(v)), v]
    data = b"".join(parts)
    if len(data) > MAX_CONTEXT_BYTES:
        raise ValidationException("EncryptionContext is too large")
    return data
