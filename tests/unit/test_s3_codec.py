from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from s3sim.s3 import codec
from s3sim.s3.models import ObjectInfo, Segment, SseRecord


def _info(key: str = "k", etag: str = "e" * 32) -> ObjectInfo:
    sse = SseRecord(
        "aws:kms", b"\x01" * 40, "arn:aws:kms:us-east-1:1:key/x", {"a": "b"}, None, True
    )
    return ObjectInfo(
        "bkt",
        key,
        4096,
        etag,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "text/plain",
        {"m": "v"},
        {"Cache-Control": "no-cache"},
        sse,
        {"CRC32": "AAAAAA=="},
        (Segment("b" * 32, 4096, 0),),
        "o" * 32,
        "111122223333",
    )


def test_object_row_round_trip() -> None:
    info = _info()
    assert codec.object_from_row(codec.object_to_row(info)) == info


def test_decoder_matches_object_from_row_and_sees_changed_rows() -> None:
    dec = codec.RowMemo(codec.object_from_row)
    row = codec.object_to_row(_info())
    first = dec.decode(row)
    assert first == codec.object_from_row(row)
    assert dec.decode(replace(row)) is first  # equal row: memoised
    changed = codec.object_to_row(_info(etag="f" * 32))
    assert dec.decode(changed).etag == "f" * 32
    other_meta = codec.object_to_row(replace(_info(), content_type="a/b")).meta
    assert dec.decode(replace(row, meta=other_meta)).content_type == "a/b"


def test_meta_is_msgpack_and_rows_written_as_json_before_still_decode() -> None:
    info = _info()
    row = codec.object_to_row(info)
    assert isinstance(row.meta, bytes)
    meta = codec.meta_of(row.meta)
    assert meta["ct"] == "text/plain" and meta["ck"] == {"CRC32": "AAAAAA=="}
    as_json = replace(row, meta=json.dumps(meta))  # a row of an older data dir
    assert codec.object_from_row(as_json) == info


def test_decoder_is_bounded() -> None:
    dec = codec.RowMemo(codec.object_from_row, capacity=8)
    rows = [codec.object_to_row(_info(key=f"k{i}")) for i in range(50)]
    for row in rows:
        assert dec.decode(row).key == row.key
    assert len(dec._memo) <= 8
    assert dec.decode(rows[0]).key == "k0"


def test_id_memo_keys_on_identity_and_stays_bounded() -> None:
    made: list[object] = []

    def make(key: tuple) -> str:
        made.append(key)
        return f"v{key[0]}"

    memo = codec.IdMemo[tuple, str](make, capacity=4)
    a, equal_to_a = (1, [2]), (1, [2])
    assert memo.get(a) == "v1" and memo.get(a) == "v1" and made == [a]  # a hit
    assert memo.get(equal_to_a) == "v1" and len(made) == 2  # equal, not the same: made
    for i in range(10):
        memo.get((i, []))
    assert len(memo._memo) <= 4


def test_decoder_hashes_a_row_only_the_first_time_it_sees_it() -> None:
    calls = []

    class Counted(codec.ObjectRow):
        def __hash__(self) -> int:
            calls.append(1)
            return super().__hash__()

    dec = codec.RowMemo(codec.object_from_row)
    row = Counted(*codec.object_to_row(_info()).__dict__.values())
    first = dec.decode(row)
    hashed = len(calls)
    assert dec.decode(row) is first and dec.decode(row) is first
    assert hashed > 0 and len(calls) == hashed  # the same row again: no hashing
