"""Generate tests/vectors/format-v1.json (docs/FORMAT.md section 7).

Deterministic: fixed data key, salts and plaintexts. Run from the repo root:
    python tests/vectors/make_vectors.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgpack

from kmscore import envelope as env

DATA_KEY = bytes(range(32))
WRONG_KEY = b"\xff" * 32
SALT_A = bytes(range(0xA0, 0xC0))
SALT_B = bytes(range(0xC0, 0xE0))
CS = 4096
EXPECTED = {
    "kind": "object",
    "object_id": "obj-1",
    "key_arn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "wrapped_key": bytes(range(0x40, 0x70)),
    "context": {"aws:s3:arn": "arn:aws:s3:::bucket/key", "purpose": "vectors"},
}
OUT = Path(__file__).with_name("format-v1.json")


def plaintext(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def header(salt: bytes = SALT_A, **extra: object) -> env.Header:
    return env.Header(**EXPECTED, salt=salt, chunk_size=CS, extra=extra)


def build(hb: bytes, pt: bytes, key: bytes = DATA_KEY, final_flag: bool = True) -> bytes:
    """A file from raw header bytes (which may be invalid), commitment recomputed."""
    salt = msgpack.unpackb(hb, raw=False)["salt"]
    cipher = env.derive_payload_key(key, hb, salt)
    n = len(pt) // CS + 1
    chunks = [
        cipher.seal_chunk(i, pt[i * CS : (i + 1) * CS], final_flag and i == n - 1) for i in range(n)
    ]
    return env.encode_prefix(hb) + hb + cipher.commitment + b"".join(chunks)


def flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def vectors() -> list[dict]:
    pt = plaintext(10000)
    hb = env.encode_header(header())
    a = env.seal_small(DATA_KEY, header(), pt)
    lay = env.Layout(len(hb), CS)
    off = [lay.chunk_offset(i) for i in range(3)]
    c0, c1, c2 = a[off[0] : off[1]], a[off[1] : off[2]], a[off[2] :]
    lead = a[: off[0]]
    b = env.seal_small(DATA_KEY, header(SALT_B), pt)
    salt_pos = a.index(SALT_A)
    raw = msgpack.unpackb(hb, raw=False)
    unsorted = msgpack.packb(dict(reversed(list(raw.items()))), use_bin_type=True)
    bad_suite = env._pack({**raw, "suite": "s3sim-aes256gcm-hkdfsha256-stream-v2"})
    hb_extra = env.encode_header(header(zz="extension"))
    v = [
        ("empty", "valid, 0-byte object", env.seal_small(DATA_KEY, header(), b""), 0, "ok"),
        ("one-chunk", "valid, 100 bytes", env.seal_small(DATA_KEY, header(), pt[:100]), 100, "ok"),
        (
            "exact-multiple",
            "valid, 8192 bytes",
            env.seal_small(DATA_KEY, header(), pt[:8192]),
            8192,
            "ok",
        ),
        ("three-chunks", "valid, 10000 bytes", a, 10000, "ok"),
        ("bad-magic", "first byte flipped", flip(a, 0), 10000, "header"),
        (
            "header-too-long",
            "length 65537",
            env.MAGIC + (65537).to_bytes(4, "big") + a[12:],
            10000,
            "header",
        ),
        (
            "header-len-past-eof",
            "length = file size",
            env.MAGIC + len(a).to_bytes(4, "big") + a[12:],
            10000,
            "header",
        ),
        ("unknown-suite", "suite v2", build(bad_suite, pt), 10000, "header"),
        ("non-canonical", "keys unsorted", build(unsorted, pt), 10000, "header"),
        (
            "header-byte-flip",
            "object id obj-1 -> obj-2",
            a.replace(b"obj-1", b"obj-2"),
            10000,
            "header",
        ),
        ("salt-flip", "one salt byte flipped", flip(a, salt_pos), 10000, "commitment"),
        (
            "extra-field-added",
            "extension field added",
            env.encode_prefix(hb_extra) + hb_extra + a[12 + len(hb) :],
            10000,
            "commitment",
        ),
        ("commitment-flip", "one commitment byte", flip(a, 12 + len(hb)), 10000, "commitment"),
        ("wrong-data-key", "opened with ff..ff", a, 10000, "commitment"),
        ("payload-bit-flip", "bit in chunk 1", flip(a, off[1] + 7), 10000, "payload"),
        ("tag-flip", "tag of the final chunk", flip(a, len(a) - 1), 10000, "payload"),
        ("truncated-at-chunk-boundary", "final chunk removed", lead + c0 + c1, 8192, "payload"),
        (
            "truncated-to-valid-size",
            "final chunk and 100 bytes of chunk 1 removed",
            lead + c0 + c1[:-100],
            8076,
            "payload",
        ),
        ("truncated-mid-chunk", "last 5 bytes removed", a[:-5], 9995, "payload"),
        ("chunks-swapped", "chunks 0 and 1 exchanged", lead + c1 + c0 + c2, 10000, "payload"),
        ("chunk-duplicated", "chunk 0 over chunk 1", lead + c0 + c0 + c2, 10000, "payload"),
        ("appended-chunk", "final chunk appended again", a + c2, 10000, "payload"),
        (
            "last-chunk-not-final",
            "every chunk sealed non-final",
            build(hb, pt, final_flag=False),
            10000,
            "payload",
        ),
        (
            "empty-without-chunk",
            "empty object, its chunk removed",
            env.seal_small(DATA_KEY, header(), b"")[:-16],
            0,
            "payload",
        ),
        (
            "payload-from-other-file",
            "lead of A, payload of B",
            lead + b[off[0] :],
            10000,
            "payload",
        ),
    ]
    out = []
    for name, desc, data, n, outcome in v:
        key = WRONG_KEY if name == "wrong-data-key" else DATA_KEY
        out.append(
            {
                "name": name,
                "description": desc,
                "data_key": key.hex(),
                "file": data.hex(),
                "outcome": outcome,
                "plaintext_size": n,
                "plaintext_sha256": hashlib.sha256(plaintext(n)).hexdigest()
                if outcome == "ok"
                else "",
            }
        )
    return out


def document() -> dict:
    exp = {**EXPECTED, "wrapped_key": EXPECTED["wrapped_key"].hex()}
    return {
        "format": "s3sim object file v1 (docs/FORMAT.md)",
        "chunk_size": CS,
        "plaintext": "byte i = i mod 251",
        "expected_header": exp,
        "vectors": vectors(),
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(document(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
