"""Request bodies as a verified stream of plaintext chunks.

`Payload(request, auth)` is an async iterator of body bytes. Per x-amz-content-sha256:
- a hex SHA-256: hashed as it streams, XAmzContentSHA256Mismatch raised before the end;
- UNSIGNED-PAYLOAD: passed through;
- STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER:
  aws-chunked, decoded as a stream (never buffered whole), chunk and trailer signatures
  verified, x-amz-decoded-content-length checked. Trailers land in `payload.trailers`.
Errors are s3sim.http.errors.HttpError, which the middleware renders.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from s3sim.http import sigv4
from s3sim.http.errors import HttpError

Read = Callable[[], Awaitable[bytes]]
MAX_LINE = 4096
MAX_TRAILER_BYTES = 16 * 1024
STREAMING_MODES = (
    sigv4.STREAMING_SIGNED,
    sigv4.STREAMING_SIGNED_TRAILER,
    sigv4.STREAMING_UNSIGNED_TRAILER,
)


_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def is_sha256_hex(value: str) -> bool:
    return _SHA256_HEX.fullmatch(value) is not None


def content_encoding_without_chunked(value: str | None) -> str | None:
    """Content-Encoding to store: the header minus `aws-chunked` (None when empty)."""
    if not value:
        return None
    rest = [p.strip() for p in value.split(",") if p.strip() and p.strip() != "aws-chunked"]
    return ", ".join(rest) or None


class _Buffered:
    """Line and exact-length reads over a `readany`-style source."""

    def __init__(self, read: Read) -> None:
        self._read = read
        self._buf = b""
        self.eof = False

    async def _fill(self) -> bool:
        if self.eof:
            return False
        data = await self._read()
        if not data:
            self.eof = True
            return False
        self._buf = self._buf + data if self._buf else data
        return True

    async def line(self) -> bytes | None:
        """One CRLF-terminated line without its CRLF; None at a clean EOF."""
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                out, self._buf = self._buf[:i], self._buf[i + 2 :]
                return out
            if len(self._buf) > MAX_LINE:
                raise HttpError("bad_chunk", "aws-chunked line too long")
            if not await self._fill():
                if self._buf:
                    raise HttpError("incomplete_body")
                return None

    async def pieces(self, n: int) -> AsyncIterator[bytes]:
        """Exactly n bytes, yielded as they arrive."""
        while n > 0:
            if not self._buf and not await self._fill():
                raise HttpError("incomplete_body")
            piece = self._buf[:n] if len(self._buf) > n else self._buf
            self._buf = self._buf[len(piece) :]
            n -= len(piece)
            yield piece

    async def expect_crlf(self) -> None:
        line = await self.line()
        if line is None:
            raise HttpError("incomplete_body")
        if line:
            raise HttpError("bad_chunk", "aws-chunked data is longer than its declared size")

    async def next_piece(self) -> bytes:
        """What is buffered, else the next read; b"" at the end (no generator: a plain
        body's pieces go straight to the reader)."""
        if not self._buf and not await self._fill():
            return b""
        piece, self._buf = self._buf, b""
        return piece


class Payload:
    """Async iterator of a request body's plaintext chunks, verified as it streams."""

    def __init__(self, request: Any, auth: Any) -> None:
        headers = request.headers
        self._init(headers, request.content.readany, getattr(auth, "signing", None))

    @classmethod
    def from_source(
        cls, headers: Mapping[str, str], read: Read, signing: sigv4.StreamSigning | None
    ) -> Payload:
        """A payload over any `readany`-style source (unit tests, non-aiohttp callers)."""
        self = cls.__new__(cls)
        self._init(headers, read, signing)
        return self

    def _init(
        self, headers: Mapping[str, str], read: Read, signing: sigv4.StreamSigning | None
    ) -> None:
        self.mode = headers.get("x-amz-content-sha256") or sigv4.UNSIGNED_PAYLOAD
        self.trailers: dict[str, str] = {}
        self.content_encoding = content_encoding_without_chunked(headers.get("content-encoding"))
        self.decoded_length = _int_or_none(headers.get("x-amz-decoded-content-length"))
        self.content_length = _int_or_none(headers.get("content-length"))
        self._signing = signing
        self._src = _Buffered(read)
        self._gen = self._select()

    @property
    def streaming(self) -> bool:
        return self.mode in STREAMING_MODES

    @property
    def size_hint(self) -> int | None:
        """The plaintext length when known in advance."""
        return self.decoded_length if self.streaming else self.content_length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen  # `async for` runs the decoder itself, not a wrapper around it

    async def __anext__(self) -> bytes:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()

    async def read_all(self, limit: int) -> bytes:
        """The whole body (small XML/JSON bodies); HttpError "too_large" beyond `limit`."""
        parts, total = [], 0
        async for piece in self:
            total += len(piece)
            if total > limit:
                await self.aclose()
                raise HttpError("too_large", f"Request body is larger than {limit} bytes")
            parts.append(piece)
        return b"".join(parts)

    def _select(self) -> AsyncIterator[bytes]:
        if self.mode == sigv4.UNSIGNED_PAYLOAD:
            return self._plain(None)
        if is_sha256_hex(self.mode):
            return self._plain(self.mode.lower())
        if self.mode in STREAMING_MODES:
            signed = self.mode != sigv4.STREAMING_UNSIGNED_TRAILER
            if signed and self._signing is None:
                raise HttpError("bad_signature", "Streaming signed payloads need header auth")
            if self.decoded_length is None:
                raise HttpError(
                    "incomplete_body", "x-amz-decoded-content-length is required with aws-chunked"
                )
            return self._chunked(signed, self.mode != sigv4.STREAMING_SIGNED)
        raise HttpError("bad_content_sha256")

    async def _plain(self, expected: str | None) -> AsyncIterator[bytes]:
        h = hashlib.sha256() if expected is not None else None
        total = 0
        while piece := await self._src.next_piece():
            total += len(piece)
            if h is not None:
                h.update(piece)
            yield piece
        if self.content_length is not None and total < self.content_length:
            raise HttpError("incomplete_body")
        if h is not None and h.hexdigest() != expected:
            raise HttpError("content_sha256_mismatch")

    async def _chunked(self, signed: bool, trailer: bool) -> AsyncIterator[bytes]:
        previous = self._signing.seed if signed and self._signing else ""
        total = 0
        while True:
            size, claimed = await self._chunk_header(signed)
            h = hashlib.sha256() if signed else None
            total += size
            if self.decoded_length is not None and total > self.decoded_length:
                raise HttpError("incomplete_body", "aws-chunked data exceeds its decoded length")
            async for piece in self._src.pieces(size):
                if h is not None:
                    h.update(piece)
                yield piece
            if signed:
                digest = h.hexdigest() if h is not None else sigv4.EMPTY_SHA256
                previous = self._check_chunk(previous, digest, claimed)
            if size == 0:
                break
            await self._src.expect_crlf()
        await self._trailers(signed and trailer, previous)
        if self.decoded_length is not None and total != self.decoded_length:
            raise HttpError("incomplete_body")

    async def _chunk_header(self, signed: bool) -> tuple[int, str]:
        line = await self._src.line()
        if line is None:
            raise HttpError("incomplete_body")
        size_text, _, ext = line.decode("latin-1").partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise HttpError("bad_chunk", f"Invalid chunk size {size_text[:20]!r}") from None
        if size < 0:
            raise HttpError("bad_chunk", "Negative chunk size")
        name, _, claimed = ext.partition("=")
        if signed and name.strip() != "chunk-signature":
            raise HttpError("bad_signature", "Missing chunk-signature")
        return size, claimed.strip()

    def _check_chunk(self, previous: str, digest: str, claimed: str) -> str:
        assert self._signing is not None
        expected = self._signing.chunk(previous, digest)
        if not hmac.compare_digest(expected, claimed):
            raise HttpError("bad_signature")
        return expected

    async def _trailers(self, signed: bool, previous: str) -> None:
        seen: list[tuple[str, str]] = []
        claimed = None
        size = 0
        while True:
            line = await self._src.line()
            if not line:  # blank line or EOF ends the trailers
                break
            size += len(line)
            if size > MAX_TRAILER_BYTES:
                raise HttpError("bad_chunk", "Trailers too large")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise HttpError("bad_chunk", "Malformed trailer")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                claimed = value
            else:
                seen.append((name, value))
        if signed and seen:
            assert self._signing is not None
            expected = self._signing.trailer(previous, seen)
            if claimed is None or not hmac.compare_digest(expected, claimed):
                raise HttpError("bad_signature", "The trailer signature does not match")
        self.trailers = dict(seen)


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
