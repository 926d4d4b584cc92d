"""Encryption-context encoding and ciphertext blob parsing (pure parts)."""

import os
import uuid

import pytest

from kmscore import blob
from kmscore import context as ctxlib
from kmscore.errors import InvalidCiphertextException, ValidationException

KEY_ID = str(uuid.UUID(int=1))
MID = "ab" * 32
MATERIAL = bytes(range(32))


def test_context_encoding_is_unambiguous():
    assert ctxlib.encode({"ab": "c"}) != ctxlib.encode({"a": "bc"})
    assert ctxlib.encode({"a": "b", "c": "d"}) != ctxlib.encode({"a": "bcd"})
    assert ctxlib.encode({"a": "b"}) != ctxlib.encode({"A": "b"})


def test_context_encoding_sorts_keys_and_none_is_empty():
    assert ctxlib.encode({"b": "1", "a": "2"}) == ctxlib.encode({"a": "2", "b": "1"})
    assert ctxlib.encode(None) == ctxlib.encode({})


@pytest.mark.parametrize("bad", [{"a": 1}, {1: "a"}, {"": "x"}, ["a"]])
def test_context_rejects_non_strings(bad):
    with pytest.raises(ValidationException):
        ctxlib.encode(bad)


def _seal(plaintext=b"secret", ctx=None):
    return blob.seal(KEY_ID, MID, MATERIAL, plaintext, ctx, os.urandom)


def test_blob_round_trip_and_header():
    b = _seal(ctx={"ab": "c"})
    h = blob.parse_header(b)
    assert (h.key_id, h.material_id) == (KEY_ID, MID)
    assert blob.open_blob(h, b, MATERIAL, {"ab": "c"}) == b"secret"


def test_blob_made_under_ab_c_does_not_open_under_a_bc():
    b = _seal(ctx={"ab": "c"})
    with pytest.raises(InvalidCiphertextException) as e:
        blob.open_blob(blob.parse_header(b), b, MATERIAL, {"a": "bc"})
    assert e.value.message == ""


@pytest.mark.parametrize(
    "garbage", [b"", b"x", b"KSB\x01" + b"\x00" * 10, b"\x00" * 200, os.urandom(7000)]
)
def test_garbage_is_invalid_ciphertext_with_empty_message(garbage):
    with pytest.raises(InvalidCiphertextException) as e:
        blob.parse_header(garbage)
    assert e.value.message == ""


def test_every_flipped_byte_is_detected():
    b = _seal()
    for i in range(len(b)):
        bad = bytearray(b)
        bad[i] ^= 0x01
        with pytest.raises(InvalidCiphertextException):
            h = blob.parse_header(bytes(bad))
            blob.open_blob(h, bytes(bad), MATERIAL, None)


def test_encryption_is_not_deterministic():
    assert _seal() != _seal()
