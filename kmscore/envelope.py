"""The chunked AEAD object container (docs/FORMAT.md): format only, no I/O policy.

object-file = magic || u32be(len(header)) || header || commitment(32) || payload
payload     = AES-256-GCM chunks under a key derived (HKDF-SHA256) from the data key,
              the header's salt and SHA-256 of the header block; STREAM nonces
              (chunk index || final flag); the last chunk strictly shorter than full.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kmscore.frozen import frozen

MAGIC = b"S3SIMOF\x01"
PREFIX_LEN = len(MAGIC) + 4
MAX_HEADER_LEN = 65536
COMMIT_LEN = 32
TAG_LEN = 16
SALT_LEN = 32
KEY_LEN = 32
SUITE_V1 = "s3sim-aes256gcm-hkdfsha256-stream-v1"
SUITES = frozenset({SUITE_V1})
KINDS = frozenset({"object", "part", "staging"})
MIN_CHUNK, MAX_CHUNK = 4096, 4 << 20
DEFAULT_CHUNK_SIZE = 64 << 10
HKDF_INFO = b"s3sim object file v1"
_FIELDS = ("suite", "kind", "object_id", "key_arn", "wrapped_key", "context", "salt", "chunk_size")
_STANDARD = frozenset(_FIELDS)


class EnvelopeError(Exception):
    """Root of the format's failures; `failure` names the class used by the vectors."""

    failure = "envelope"


class HeaderError(EnvelopeError):
    failure = "header"


class CommitmentError(EnvelopeError):
    failure = "commitment"


class PayloadError(EnvelopeError):
    failure = "payload"


@frozen
class Header:
    kind: str
    object_id: str
    key_arn: str
    wrapped_key: bytes
    context: Mapping[str, str]
    salt: bytes
    chunk_size: int = DEFAULT_CHUNK_SIZE
    suite: str = SUITE_V1
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "context", MappingProxyType(dict(self.context)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))


_SCALARS = frozenset({str, bytes, int, bool, float, type(None)})


def _canonical(value: Any) -> Any:
    if type(value) in _SCALARS:  # the common case, without the slower ABC check below
        return value
    if isinstance(value, Mapping):
        return {k: _canonical(value[k]) for k in sorted(value, key=_key_bytes)}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _key_bytes(k: Any) -> bytes:
    if not isinstance(k, str):
        raise HeaderError("header map keys must be strings")
    return k.encode()


def _pack(value: Any) -> bytes:
    return msgpack.packb(_canonical(value), use_bin_type=True)


def _check_fields(h: Header) -> None:
    if not isinstance(h.suite, str) or h.suite not in SUITES:
        raise HeaderError(f"unknown suite {h.suite!r}")
    if not isinstance(h.kind, str) or h.kind not in KINDS:
        raise HeaderError(f"unknown kind {h.kind!r}")
    if not isinstance(h.object_id, str) or not isinstance(h.key_arn, str):
        raise HeaderError("object_id and key_arn must be strings")
    if not isinstance(h.wrapped_key, bytes):
        raise HeaderError("wrapped_key must be bytes")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in h.context.items()):
        raise HeaderError("context must map str to str")
    if not isinstance(h.salt, bytes) or len(h.salt) != SALT_LEN:
        raise HeaderError("salt must be 32 bytes")
    cs = h.chunk_size
    if type(cs) is not int or not MIN_CHUNK <= cs <= MAX_CHUNK or cs & (cs - 1):
        raise HeaderError(f"invalid chunk size {cs!r}")
    if h.extra and not _STANDARD.isdisjoint(h.extra):
        raise HeaderError("extension fields may not shadow standard fields")


def encode_header(h: Header) -> bytes:
    """The canonical msgpack header bytes (without prefix)."""
    _check_fields(h)
    if not h.extra:  # every header s3sim writes: the map built in canonical order at once
        data = msgpack.packb(_standard_map(h), use_bin_type=True)
        if len(data) > MAX_HEADER_LEN:
            raise HeaderError("header too long")
        return data
    m: dict[str, Any] = dict(h.extra)
    m.update(
        suite=h.suite,
        kind=h.kind,
        object_id=h.object_id,
        key_arn=h.key_arn,
        wrapped_key=h.wrapped_key,
        context=dict(h.context),
        salt=h.salt,
        chunk_size=h.chunk_size,
    )
    data = _pack(m)
    if len(data) > MAX_HEADER_LEN:
        raise HeaderError("header too long")
    return data


def _standard_map(h: Header) -> dict[str, Any]:
    """`_canonical` of the standard fields (keys in UTF-8 byte order), without its walk;
    tested equal to it."""
    ctx = h.context
    return {
        "chunk_size": h.chunk_size,
        "context": {k: ctx[k] for k in sorted(ctx, key=_key_bytes)},
        "key_arn": h.key_arn,
        "kind": h.kind,
        "object_id": h.object_id,
        "salt": h.salt,
        "suite": h.suite,
        "wrapped_key": h.wrapped_key,
    }


def encode_prefix(header_bytes: bytes) -> bytes:
    return MAGIC + struct.pack(">I", len(header_bytes))


def parse_prefix(prefix: bytes, file_size: int | None = None) -> int:
    """The header length named by a 12-byte prefix, bounds-checked before any parsing."""
    if len(prefix) < PREFIX_LEN or prefix[: len(MAGIC)] != MAGIC:
        raise HeaderError("not an s3sim object file (bad magic)")
    (n,) = struct.unpack(">I", prefix[len(MAGIC) : PREFIX_LEN])
    if not 1 <= n <= MAX_HEADER_LEN:
        raise HeaderError(f"header length {n} out of bounds")
    if file_size is not None and PREFIX_LEN + n + COMMIT_LEN > file_size:
        raise HeaderError("header extends past the end of the file")
    return n


def decode_header(data: bytes) -> Header:
    """Parse header bytes; rejects non-canonical encodings, unknown suites, bad fields."""
    if not 1 <= len(data) <= MAX_HEADER_LEN:
        raise HeaderError("header length out of bounds")
    try:
        m = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as e:  # msgpack raises several unrelated types on malformed input
        raise HeaderError(f"malformed header: {type(e).__name__}") from None
    if not isinstance(m, dict):
        raise HeaderError("header is not a map")
    if _pack(m) != data:
        raise HeaderError("header is not canonically encoded")
    suite = m.get("suite")
    if not isinstance(suite, str) or suite not in SUITES:
        raise HeaderError(f"unknown suite {suite!r}")
    missing = [f for f in _FIELDS if f not in m]
    if missing:
        raise HeaderError(f"header lacks {', '.join(missing)}")
    if not isinstance(m["context"], dict):
        raise HeaderError("context must be a map")
    h = Header(
        kind=m["kind"],
        object_id=m["object_id"],
        key_arn=m["key_arn"],
        wrapped_key=m["wrapped_key"],
        context=m["context"],
        salt=m["salt"],
        chunk_size=m["chunk_size"],
        suite=m["suite"],
        extra={k: v for k, v in m.items() if k not in _FIELDS},
    )
    _check_fields(h)
    return h


def check_binding(
    h: Header,
    kind: str,
    object_id: str,
    key_arn: str,
    wrapped_key: bytes,
    context: Mapping[str, str],
) -> None:
    """HeaderError unless the file's header names what the trusted index expects."""
    if h.kind != kind:
        raise HeaderError("header kind does not match the index")
    if h.object_id != object_id:
        raise HeaderError("header object_id does not match the index")
    if h.key_arn != key_arn:
        raise HeaderError("header key_arn does not match the index")
    if h.wrapped_key != wrapped_key:
        raise HeaderError("header wrapped_key does not match the index")
    if h.context != context:  # mappings (dicts, read-only proxies) compare by items
        raise HeaderError("header context does not match the index")


def nonce(index: int, final: bool) -> bytes:
    if not 0 <= index < 1 << 88:
        raise PayloadError("chunk index out of range")
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


# one immutable algorithm object for every file's HKDF (a fresh one per file costs more
# than the derivation itself when the caches are cold: docs/PERFORMANCE.md, session 9)
_SHA256 = hashes.SHA256()


class PayloadCipher:
    """Keys of one file: derived from the data key and the exact header block bytes."""

    def __init__(self, data_key: bytes, header_block: bytes, salt: bytes) -> None:
        if len(data_key) != KEY_LEN:
            raise CommitmentError("data key must be 32 bytes")
        digest = hashlib.sha256(header_block).digest()
        okm = HKDF(_SHA256, 2 * KEY_LEN, salt, HKDF_INFO + digest).derive(data_key)
        self._aead = AESGCM(okm[:KEY_LEN])
        self.commitment = okm[KEY_LEN:]

    def check_commitment(self, stored: bytes) -> None:
        if not hmac.compare_digest(stored, self.commitment):
            raise CommitmentError("key commitment mismatch (wrong key or altered header)")

    def seal_chunk(self, index: int, plaintext: bytes | memoryview, final: bool) -> bytes:
        return self._aead.encrypt(nonce(index, final), plaintext, None)

    def open_chunk(self, index: int, chunk: bytes | memoryview, final: bool) -> bytes:
        if len(chunk) < TAG_LEN:
            raise PayloadError(f"chunk {index} is shorter than a tag")
        try:
            return self._aead.decrypt(nonce(index, final), chunk, None)
        except InvalidTag:
            raise PayloadError(f"chunk {index} failed authentication") from None

    def seal_chunk_into(
        self, index: int, plaintext: bytes | memoryview, final: bool, out: memoryview
    ) -> int:
        """seal_chunk writing into `out` (exactly len(plaintext) + TAG_LEN bytes)."""
        return self._aead.encrypt_into(nonce(index, final), plaintext, None, out)

    def open_chunk_into(
        self, index: int, chunk: bytes | memoryview, final: bool, out: memoryview
    ) -> int:
        """open_chunk writing into `out` (exactly len(chunk) - TAG_LEN bytes).

        On failure `out` holds unauthenticated bytes: the caller must discard it."""
        if len(chunk) < TAG_LEN:
            raise PayloadError(f"chunk {index} is shorter than a tag")
        try:
            return self._aead.decrypt_into(nonce(index, final), chunk, None, out)
        except InvalidTag:
            raise PayloadError(f"chunk {index} failed authentication") from None


def derive_payload_key(data_key: bytes, header_bytes: bytes, salt: bytes) -> PayloadCipher:
    """Keys for a file whose header (without prefix) is `header_bytes`."""
    return PayloadCipher(data_key, encode_prefix(header_bytes) + header_bytes, salt)


@frozen
class ChunkSpan:
    first: int  # first chunk index
    last: int  # last chunk index (inclusive)
    file_start: int  # file offset of the first chunk
    file_end: int  # file offset just after the last chunk


@frozen
class Layout:
    """Closed-form offsets of one file (FORMAT.md section 4)."""

    header_len: int
    chunk_size: int

    @property
    def payload_offset(self) -> int:
        return PREFIX_LEN + self.header_len + COMMIT_LEN

    @property
    def stride(self) -> int:
        return self.chunk_size + TAG_LEN

    def chunk_count(self, plaintext_size: int) -> int:
        return plaintext_size // self.chunk_size + 1

    def file_size(self, plaintext_size: int) -> int:
        return self.payload_offset + plaintext_size + TAG_LEN * self.chunk_count(plaintext_size)

    def plaintext_size(self, file_size: int) -> int:
        rest = file_size - self.payload_offset - TAG_LEN
        if rest < 0:
            raise PayloadError("file too short for its final chunk")
        k, r = divmod(rest, self.stride)
        if r >= self.chunk_size:
            raise PayloadError("file size is not a valid object file size (truncated?)")
        return k * self.chunk_size + r

    def chunk_offset(self, index: int) -> int:
        return self.payload_offset + index * self.stride

    def chunk_range_for(self, start: int, end: int, plaintext_size: int) -> ChunkSpan:
        """Chunks covering plaintext [start, end) (end exclusive, start < end)."""
        if not 0 <= start < end <= plaintext_size:
            raise ValueError(f"range [{start}, {end}) outside [0, {plaintext_size})")
        first, last = start // self.chunk_size, (end - 1) // self.chunk_size
        file_end = min(self.chunk_offset(last + 1), self.file_size(plaintext_size))
        return ChunkSpan(first, last, self.chunk_offset(first), file_end)


def plaintext_size(file_size: int, header_len: int, chunk_size: int) -> int:
    return Layout(header_len, chunk_size).plaintext_size(file_size)


def chunk_range_for(
    start: int, end: int, header_len: int, chunk_size: int, plaintext_size: int
) -> ChunkSpan:
    return Layout(header_len, chunk_size).chunk_range_for(start, end, plaintext_size)


def seal_small(data_key: bytes, header: Header, plaintext: bytes) -> bytes:
    """A whole object file in memory (vectors, tests, tiny objects)."""
    hb = encode_header(header)
    cipher = derive_payload_key(data_key, hb, header.salt)
    out = [encode_prefix(hb), hb, cipher.commitment]
    cs = header.chunk_size
    n = len(plaintext) // cs + 1
    for i in range(n):
        out.append(cipher.seal_chunk(i, plaintext[i * cs : (i + 1) * cs], i == n - 1))
    return b"".join(out)


def open_small(
    data_key: bytes, blob: bytes, expected: Mapping[str, Any] | None = None
) -> tuple[Header, bytes]:
    """Verify and decrypt a whole object file held in memory; `expected` holds the
    keyword arguments of check_binding (the index's view), checked before the keys."""
    n = parse_prefix(blob[:PREFIX_LEN], len(blob))
    hb = blob[PREFIX_LEN : PREFIX_LEN + n]
    header = decode_header(hb)
    if expected is not None:
        check_binding(header, **expected)
    cipher = derive_payload_key(data_key, hb, header.salt)
    cipher.check_commitment(blob[PREFIX_LEN + n : PREFIX_LEN + n + COMMIT_LEN])
    layout = Layout(n, header.chunk_size)
    size = layout.plaintext_size(len(blob))
    count = layout.chunk_count(size)
    parts = []
    for i in range(count):
        start = layout.chunk_offset(i)
        end = min(start + layout.stride, len(blob))
        parts.append(cipher.open_chunk(i, blob[start:end], i == count - 1))
    return header, b"".join(parts)
