"""Payload: hex-digest, unsigned and aws-chunked bodies (botocore-made and hand-built)."""

from __future__ import annotations

import hashlib
import io

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
from multidict import CIMultiDict

from s3sim.http import sigv4, sigv4_keys
from s3sim.http.errors import HttpError
from s3sim.http.payload import Payload, content_encoding_without_chunked

SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DATE = "20130524T000000Z"
SCOPE = sigv4.Scope("AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3")
KEY = sigv4_keys.signing_key(SK, "20130524", "us-east-1", "s3")
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SIGNING = sigv4.StreamSigning(KEY, DATE, SCOPE, SEED)


def source(data: bytes, piece: int = 7):
    pos = 0

    async def read() -> bytes:
        nonlocal pos
        out = data[pos : pos + piece]
        pos += len(out)
        return out

    return read


def payload(headers: dict[str, str], body: bytes, piece: int = 7, signing=None) -> Payload:
    return Payload.from_source(CIMultiDict(headers), source(body, piece), signing)


async def drain(p: Payload) -> bytes:
    return b"".join([c async for c in p])


async def problem(p: Payload) -> str:
    with pytest.raises(HttpError) as e:
        await drain(p)
    return e.value.problem


def signed_chunks(chunks: list[bytes], trailers: list[tuple[str, str]] | None = None) -> bytes:
    out, prev = [], SEED
    for data in [*chunks, b""]:
        prev = SIGNING.chunk(prev, hashlib.sha256(data).hexdigest())
        out.append(b"%x;chunk-signature=%s\r\n" % (len(data), prev.encode()))
        if data:
            out.append(data + b"\r\n")
    if trailers is None:
        out.append(b"\r\n")
    else:
        for name, value in trailers:
            out.append(f"{name}:{value}\r\n".encode())
        sig = SIGNING.trailer(prev, trailers)
        out.append(f"x-amz-trailer-signature:{sig}\r\n\r\n".encode())
    return b"".join(out)


def chunked_headers(mode: str, decoded: int) -> dict[str, str]:
    return {
        "x-amz-content-sha256": mode,
        "x-amz-decoded-content-length": str(decoded),
        "Content-Encoding": "aws-chunked",
    }


async def test_hex_digest_verified_at_the_end():
    body = b"hello world" * 100
    good = {"x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    assert await drain(payload(good, body)) == body
    bad = {"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()}
    p = payload(bad, body)
    seen = []
    with pytest.raises(HttpError) as e:
        async for chunk in p:
            seen.append(chunk)
    assert e.value.problem == "content_sha256_mismatch"
    assert b"".join(seen) == body  # streamed, then refused before the end


async def test_unsigned_and_default_mode_pass_through():
    assert await drain(payload({"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"abc")) == b"abc"
    assert await drain(payload({}, b"abc", piece=1)) == b"abc"


async def test_short_body_is_incomplete():
    p = payload({"Content-Length": "10", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"abc")
    assert await problem(p) == "incomplete_body"


async def test_bad_content_sha256_value():
    with pytest.raises(HttpError) as e:
        payload({"x-amz-content-sha256": "nonsense"}, b"")
    assert e.value.problem == "bad_content_sha256"


@pytest.mark.parametrize("chunk_size", [1, 1000, 1 << 20])
@pytest.mark.parametrize("piece", [1, 13, 1 << 16])
async def test_botocore_aws_chunked_with_trailing_checksum(chunk_size, piece):
    body = bytes(range(256)) * 20
    wrapper = AwsChunkedWrapper(
        io.BytesIO(body),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=chunk_size,
    )
    wire = wrapper.read()
    expected = Crc32Checksum()
    expected.update(body)
    h = chunked_headers(sigv4.STREAMING_UNSIGNED_TRAILER, len(body))
    h["x-amz-trailer"] = "x-amz-checksum-crc32"
    p = payload(h, wire, piece=piece)
    assert p.streaming and p.size_hint == len(body)
    assert await drain(p) == body
    assert p.trailers == {"x-amz-checksum-crc32": expected.b64digest()}
    assert p.content_encoding is None


async def test_botocore_aws_chunked_without_checksum():
    body = b"x" * 5000
    wire = AwsChunkedWrapper(io.BytesIO(body), chunk_size=4096).read()
    p = payload(chunked_headers(sigv4.STREAMING_UNSIGNED_TRAILER, 5000), wire)
    assert await drain(p) == body and p.trailers == {}


async def test_signed_chunks_aws_example():
    body = b"a" * 66560
    wire = signed_chunks([body[:65536], body[65536:]])
    assert len(wire) == 66824  # the Content-Length of AWS's example
    p = payload(chunked_headers(sigv4.STREAMING_SIGNED, 66560), wire, 4096, SIGNING)
    assert await drain(p) == body


async def test_signed_chunk_tampering_and_reordering():
    a, b = b"a" * 9000, b"b" * 100
    wire = signed_chunks([a, b])
    h = chunked_headers(sigv4.STREAMING_SIGNED, 9100)
    tampered = wire.replace(b"b" * 100, b"c" + b"b" * 99)
    assert await problem(payload(h, tampered, 512, SIGNING)) == "bad_signature"
    # the same frames (each with its own valid signature) in another order break the chain
    h1 = wire.index(b"\r\n") + 2 + len(a) + 2
    h2 = wire.index(b"\r\n", h1) + 2 + len(b) + 2
    frame1, frame2, final = wire[:h1], wire[h1:h2], wire[h2:]
    assert await drain(payload(h, frame1 + frame2 + final, 512, SIGNING)) == a + b
    assert await problem(payload(h, frame2 + frame1 + final, 512, SIGNING)) == "bad_signature"
    assert await problem(payload(h, frame1 + frame1 + final, 512, SIGNING)) in (
        "bad_signature",
        "incomplete_body",
    )
    other = sigv4.StreamSigning(KEY, DATE, SCOPE, "0" * 64)
    assert await problem(payload(h, wire, 512, other)) == "bad_signature"
    missing = wire.replace(b";chunk-signature=", b";x=", 1)
    assert await problem(payload(h, missing, 512, SIGNING)) == "bad_signature"


async def test_signed_trailer():
    body = b"z" * 300
    trailers = [("x-amz-checksum-crc32", "AAAAAA==")]
    wire = signed_chunks([body], trailers)
    h = chunked_headers(sigv4.STREAMING_SIGNED_TRAILER, 300)
    p = payload(h, wire, 64, SIGNING)
    assert await drain(p) == body and p.trailers == {"x-amz-checksum-crc32": "AAAAAA=="}
    forged = wire.replace(b"AAAAAA==", b"BBBBBB==")
    assert await problem(payload(h, forged, 64, SIGNING)) == "bad_signature"
    unsigned = wire.split(b"x-amz-trailer-signature")[0] + b"\r\n"
    assert await problem(payload(h, unsigned, 64, SIGNING)) == "bad_signature"


async def test_decoded_length_and_truncation():
    wire = signed_chunks([b"q" * 100])
    assert (
        await problem(payload(chunked_headers(sigv4.STREAMING_SIGNED, 99), wire, 7, SIGNING))
        == "incomplete_body"
    )
    assert (
        await problem(payload(chunked_headers(sigv4.STREAMING_SIGNED, 101), wire, 7, SIGNING))
        == "incomplete_body"
    )
    for cut in (10, 60, len(wire) - 90):
        p = payload(chunked_headers(sigv4.STREAMING_SIGNED, 100), wire[:cut], 7, SIGNING)
        assert await problem(p) == "incomplete_body"
    with pytest.raises(HttpError) as e:
        payload({"x-amz-content-sha256": sigv4.STREAMING_UNSIGNED_TRAILER}, wire)
    assert e.value.problem == "incomplete_body"  # no x-amz-decoded-content-length


async def test_malformed_framing():
    h = chunked_headers(sigv4.STREAMING_UNSIGNED_TRAILER, 3)
    assert await problem(payload(h, b"zz\r\nabc\r\n0\r\n\r\n")) == "bad_chunk"
    assert await problem(payload(h, b"3\r\nabcd\r\n0\r\n\r\n")) == "bad_chunk"
    assert await problem(payload(h, b"3" * 5000)) == "bad_chunk"
    assert await problem(payload(h, b"3\r\nabc\r\n0\r\nno-colon\r\n\r\n")) == "bad_chunk"
    assert await drain(payload(h, b"3\r\nabc\r\n0\r\n\r\n")) == b"abc"


async def test_signed_mode_needs_header_signing():
    with pytest.raises(HttpError) as e:
        payload(chunked_headers(sigv4.STREAMING_SIGNED, 1), b"", signing=None)
    assert e.value.problem == "bad_signature"


async def test_read_all_limit():
    assert await payload({}, b"x" * 100).read_all(100) == b"x" * 100
    with pytest.raises(HttpError) as e:
        await payload({}, b"x" * 101).read_all(100)
    assert e.value.problem == "too_large"


def test_content_encoding_strips_aws_chunked():
    assert content_encoding_without_chunked("aws-chunked") is None
    assert content_encoding_without_chunked("aws-chunked, gzip") == "gzip"
    assert content_encoding_without_chunked("gzip") == "gzip"
    assert content_encoding_without_chunked(None) is None
