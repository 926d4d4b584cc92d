"""The ciphertext blob: versioned, self-describing, length-bounded before parsing.

    blob = MAGIC (4: b"KSB" + version 0x01)
         || key uuid (16) || key-material id (32) || nonce (12)
         || AES-256-GCM(material, nonce, plaintext, aad = header || context.encode(ctx))

The header (first 64 bytes) is authenticated, so a blob cannot be re-labelled to
another key or material. Anything malformed raises InvalidCiphertextException with
an empty message, as AWS does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kmscore import context as ctxenc
from kmscore.errors import InvalidCiphertextException
from kmscore.frozen import frozen

MAGIC = b"KSB\x01"
HEADER_LEN = 4 + 16 + 32 + 12
TAG_LEN = 16
MIN_LEN = HEADER_LEN + TAG_LEN
MAX_LEN = 6144  # AWS's CiphertextBlob bound


@frozen
class BlobHeader:
    key_id: str  # canonical uuid string
    material_id: str  # 64 hex chars
    nonce: bytes
    raw: bytes  # the header bytes (part of the AAD)


def parse_header(blob: bytes) -> BlobHeader:
    """Check bounds and magic, then split the header; never decrypts."""
    if not isinstance(blob, bytes | bytearray) or not MIN_LEN <= len(blob) <= MAX_LEN:
        raise InvalidCiphertextException("")
    blob = bytes(blob)
    if blob[:4] != MAGIC:
        raise InvalidCiphertextException("")
    key_id = str(uuid.UUID(bytes=blob[4:20]))
    return BlobHeader(key_id, blob[20:52].hex(), blob[52:64], blob[:HEADER_LEN])


def seal(
    key_id: str,
    material_id: str,
    material: bytes,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    rng: Callable[[int], bytes],
) -> bytes:
    nonce = rng(12)
    header = MAGIC + uuid.UUID(key_id).bytes + bytes.fromhex(material_id) + nonce
    aad = header + ctxenc.encode(context)
    return header + AESGCM(material).encrypt(nonce, plaintext, aad)


def open_blob(
    header: BlobHeader, blob: bytes, material: bytes, context: Mapping[str, str] | None
) -> bytes:
    aad = header.raw + ctxenc.encode(context)
    try:
        return AESGCM(material).decrypt(header.nonce, bytes(blob[HEADER_LEN:]), aad)
    except InvalidTag:
        raise InvalidCiphertextException("") from None
