"""kmscore.envelope: the object file format (docs/FORMAT.md), its vectors and size math."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import msgpack
import pytest

from kmscore import envelope as env

VECTORS = Path(__file__).parents[1] / "vectors"
sys.path.insert(0, str(VECTORS))
import make_vectors  # noqa: E402

DOC = json.loads((VECTORS / "format-v1.json").read_text())
EXPECTED = {
    **DOC["expected_header"],
    "wrapped_key": bytes.fromhex(DOC["expected_header"]["wrapped_key"]),
}
KEY = bytes(range(32))
SALT = bytes(range(0xA0, 0xC0))


def header(**kw) -> env.Header:
    base = dict(
        kind="object",
        object_id="o",
        key_arn="arn:k",
        wrapped_key=b"w",
        context={"a": "b"},
        salt=SALT,
        chunk_size=4096,
    )
    return env.Header(**{**base, **kw})


def test_vector_file_is_what_the_generator_makes():
    assert make_vectors.document() == DOC


def test_vectors_cover_every_failure_class():
    outcomes = {v["outcome"] for v in DOC["vectors"]}
    assert outcomes == {"ok", "header", "commitment", "payload"}


@pytest.mark.parametrize("v", DOC["vectors"], ids=lambda v: v["name"])
def test_vector(v):
    blob, key = bytes.fromhex(v["file"]), bytes.fromhex(v["data_key"])
    if v["outcome"] == "ok":
        h, pt = env.open_small(key, blob, EXPECTED)
        assert len(pt) == v["plaintext_size"]
        assert hashlib.sha256(pt).hexdigest() == v["plaintext_sha256"]
        assert h.salt == SALT and h.chunk_size == DOC["chunk_size"]
    else:
        with pytest.raises(env.EnvelopeError) as e:
            env.open_small(key, blob, EXPECTED)
        assert e.value.failure == v["outcome"]


def test_failure_classes_form_one_hierarchy():
    for cls in (env.HeaderError, env.CommitmentError, env.PayloadError):
        assert issubclass(cls, env.EnvelopeError)
    assert (
        len({env.HeaderError.failure, env.CommitmentError.failure, env.PayloadError.failure}) == 3
    )


def test_header_round_trip_keeps_extension_fields():
    h = header(extra={"zz": "x", "n": 3})
    hb = env.encode_header(h)
    assert env.decode_header(hb) == h
    assert env.decode_header(hb).extra == {"zz": "x", "n": 3}


def test_header_encoding_is_canonical_whatever_the_input_order():
    a = env.encode_header(header(context={"b": "1", "a": "2"}))
    b = env.encode_header(header(context={"a": "2", "b": "1"}))
    assert a == b
    keys = list(msgpack.unpackb(a, raw=False))
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    "kw",
    [
        {"suite": "other-suite"},
        {"kind": "blob"},
        {"salt": b"short"},
        {"chunk_size": 1000},
        {"chunk_size": 3 * 4096},
        {"chunk_size": 8 << 20},
        {"chunk_size": True},
        {"context": {"a": 1}},
        {"wrapped_key": "text"},
        {"extra": {"salt": b"x"}},
    ],
)
def test_encode_rejects_invalid_fields(kw):
    with pytest.raises(env.HeaderError):
        env.encode_header(header(**kw))


def test_encode_rejects_oversized_header():
    with pytest.raises(env.HeaderError, match="too long"):
        env.encode_header(header(context={"k": "v" * env.MAX_HEADER_LEN}))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        msgpack.packb([1, 2]),
        msgpack.packb({1: "x"}),
        msgpack.packb({"suite": {"unhashable": 1}}),
        msgpack.packb({"suite": env.SUITE_V1}),  # fields missing
        b"\x81" + b"\xa1a" * 2,  # truncated map
    ],
)
def test_decode_rejects_malformed_headers(data):
    with pytest.raises(env.HeaderError):
        env.decode_header(data)


def test_decode_rejects_wider_integer_encoding():
    m = msgpack.unpackb(env.encode_header(header()), raw=False)
    hb = env.encode_header(header())
    wide = hb.replace(msgpack.packb(4096), b"\xce" + (4096).to_bytes(4, "big"))
    assert wide != hb and msgpack.unpackb(wide, raw=False) == m
    with pytest.raises(env.HeaderError, match="canonical"):
        env.decode_header(wide)


def test_prefix_length_is_bounded_before_parsing():
    with pytest.raises(env.HeaderError, match="out of bounds"):
        env.parse_prefix(env.MAGIC + (1 << 31).to_bytes(4, "big"))
    with pytest.raises(env.HeaderError, match="out of bounds"):
        env.parse_prefix(env.MAGIC + bytes(4))
    with pytest.raises(env.HeaderError, match="past the end"):
        env.parse_prefix(env.MAGIC + (100).to_bytes(4, "big"), file_size=120)
    assert env.parse_prefix(env.MAGIC + (100).to_bytes(4, "big"), file_size=144) == 100


def test_nonce_marks_index_and_final_chunk():
    assert env.nonce(1, False) == bytes(10) + b"\x01\x00"
    assert env.nonce(1, True) == bytes(10) + b"\x01\x01"
    assert env.nonce(2**88 - 1, True)[:11] == b"\xff" * 11
    with pytest.raises(env.PayloadError):
        env.nonce(2**88, False)


def test_chunk_opens_only_at_its_index_with_its_flag():
    c = env.derive_payload_key(KEY, env.encode_header(header()), SALT)
    sealed = c.seal_chunk(3, b"data", False)
    assert c.open_chunk(3, sealed, False) == b"data"
    for i, final in ((3, True), (2, False), (4, False)):
        with pytest.raises(env.PayloadError):
            c.open_chunk(i, sealed, final)
    with pytest.raises(env.PayloadError, match="shorter than a tag"):
        c.open_chunk(3, sealed[:10], False)


def test_payload_key_depends_on_every_header_byte_and_the_key():
    hb = env.encode_header(header())
    base = env.derive_payload_key(KEY, hb, SALT).commitment
    other = env.encode_header(header(object_id="p"))
    assert env.derive_payload_key(KEY, other, SALT).commitment != base
    assert env.derive_payload_key(b"\x01" * 32, hb, SALT).commitment != base
    with pytest.raises(env.CommitmentError):
        env.derive_payload_key(b"short", hb, SALT)


@pytest.mark.parametrize("cs", [4096, 65536])
def test_sizes_are_closed_form_and_invertible(cs):
    lay = env.Layout(171, cs)
    for p in [0, 1, cs - 1, cs, cs + 1, 2 * cs, 5 * cs + 17, 10**9]:
        fs = lay.file_size(p)
        assert lay.plaintext_size(fs) == p
        assert env.plaintext_size(fs, 171, cs) == p
        assert fs == lay.payload_offset + p + 16 * (p // cs + 1)


def test_every_invalid_file_size_is_rejected():
    lay = env.Layout(100, 4096)
    valid = {lay.file_size(p) for p in range(0, 3 * 4096)}
    for fs in range(0, lay.file_size(3 * 4096)):
        if fs in valid:
            assert lay.file_size(lay.plaintext_size(fs)) == fs
        else:
            with pytest.raises(env.PayloadError):
                lay.plaintext_size(fs)


def test_real_file_sizes_match_the_formula():
    h = header()
    lay = env.Layout(len(env.encode_header(h)), 4096)
    for p in (0, 1, 4095, 4096, 4097, 12288):
        assert len(env.seal_small(KEY, h, bytes(p))) == lay.file_size(p)


def test_chunk_range_for():
    lay = env.Layout(100, 4096)
    size = 3 * 4096 + 10
    span = env.chunk_range_for(0, 1, 100, 4096, size)
    assert (span.first, span.last) == (0, 0)
    assert (span.file_start, span.file_end) == (lay.chunk_offset(0), lay.chunk_offset(1))
    span = lay.chunk_range_for(4095, 4097, size)
    assert (span.first, span.last) == (0, 1)
    span = lay.chunk_range_for(3 * 4096, size, size)
    assert (span.first, span.last) == (3, 3)
    assert span.file_end == lay.file_size(size)
    for bad in ((0, 0), (5, 4), (-1, 3), (0, size + 1)):
        with pytest.raises(ValueError):
            lay.chunk_range_for(*bad, size)


def test_binding_checks_each_field():
    h = header()
    good = dict(kind="object", object_id="o", key_arn="arn:k", wrapped_key=b"w", context={"a": "b"})
    env.check_binding(h, **good)
    for field, value in [
        ("kind", "part"),
        ("object_id", "o2"),
        ("key_arn", "arn:other"),
        ("wrapped_key", b"x"),
        ("context", {"a": "c"}),
        ("context", {"a": "b", "x": "y"}),
    ]:
        with pytest.raises(env.HeaderError, match=field):
            env.check_binding(h, **{**good, field: value})


def test_standard_headers_encode_exactly_as_the_canonical_walk():
    """encode_header builds a header without extension fields in canonical order at once;
    the bytes must be those of the generic path (sort every map, then pack)."""
    import os
    import random

    import msgpack

    from kmscore import envelope as env

    rnd = random.Random(7)
    names = ["aws:s3:arn", "a", "B", "zeta", "é", "日本", "k" * 40, "Z9", ""]
    for _ in range(200):
        ctx = {rnd.choice(names) + str(rnd.randrange(5)): rnd.choice(names) for _ in range(4)}
        h = env.Header(
            kind=rnd.choice(["object", "part", "staging"]),
            object_id=os.urandom(8).hex(),
            key_arn=rnd.choice(["arn:aws:kms:us-east-1:1:key/x", "AES256", "é"]),
            wrapped_key=os.urandom(rnd.randrange(0, 200)),
            context=ctx,
            salt=os.urandom(env.SALT_LEN),
            chunk_size=rnd.choice([4096, 65536, 1 << 20]),
        )
        generic = {**{f: getattr(h, f) for f in env._FIELDS}, "context": dict(h.context)}
        assert env.encode_header(h) == msgpack.packb(env._canonical(generic), use_bin_type=True)
        assert env.decode_header(env.encode_header(h)) == h
