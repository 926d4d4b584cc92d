"""Conversion between S3 models and the index's plain rows.

A row's `meta` column is msgpack (bytes): packing it costs ~0.9 us against ~4.3 us for
json.dumps, on every PUT (docs/PERFORMANCE.md, session 9). Rows written before hold JSON
text there and still decode (`meta_of`). `segments` and bucket `encryption` stay JSON.
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgpack

from s3sim.s3.models import (
    BucketInfo,
    EncryptionRule,
    ObjectInfo,
    PartInfo,
    Segment,
    SseRecord,
    UploadInfo,
)
from s3sim.storage.index import BucketRow, ObjectRow, PartRow, UploadRow

R = TypeVar("R", bound=Hashable)
T = TypeVar("T")


def ts(dt: datetime) -> float:
    return dt.timestamp()


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def pack_meta(meta: dict[str, Any]) -> bytes:
    return msgpack.packb(meta, use_bin_type=True)


def meta_of(raw: str | bytes) -> dict[str, Any]:
    """A meta column's dict: msgpack, or JSON text in rows written before it."""
    return json.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw)


def sse_to_json(rec: SseRecord) -> dict[str, Any]:
    return {
        "alg": rec.algorithm,
        "wk": b64encode(rec.wrapped_key).decode(),
        "arn": rec.key_arn,
        "ctx": dict(rec.context),
        "ctxh": rec.context_b64,
        "bk": rec.bucket_key,
        "salt": b64encode(rec.ssec_salt).decode(),
        "mac": b64encode(rec.ssec_hmac).decode(),
        "kmd5": rec.ssec_key_md5,
    }


def sse_from_json(d: dict[str, Any]) -> SseRecord:
    return SseRecord(
        algorithm=d["alg"],
        wrapped_key=b64decode(d["wk"]),
        key_arn=d["arn"],
        context=d["ctx"],
        context_b64=d["ctxh"],
        bucket_key=d["bk"],
        ssec_salt=b64decode(d["salt"]),
        ssec_hmac=b64decode(d["mac"]),
        ssec_key_md5=d["kmd5"],
    )


def bucket_from_row(row: BucketRow) -> BucketInfo:
    enc = None
    if row.encryption:
        e = json.loads(row.encryption)
        enc = EncryptionRule(e["alg"], e.get("key"), e.get("bk", False))
    return BucketInfo(row.name, row.account, row.owner_arn, row.region, dt(row.created), enc)


def encryption_to_json(rule: EncryptionRule) -> str:
    return json.dumps(
        {"alg": rule.algorithm, "key": rule.kms_key_id, "bk": rule.bucket_key_enabled}
    )


def object_to_row(info: ObjectInfo) -> ObjectRow:
    meta = {
        "ct": info.content_type,
        "um": dict(info.metadata),
        "h": dict(info.headers),
        "sse": sse_to_json(info.sse),
        "ck": dict(info.checksums),
        "ckt": info.checksum_type,
        "pc": info.parts_count,
    }
    segments = [[s.blob_id, s.size, s.part_number] for s in info.segments]
    return ObjectRow(
        info.bucket,
        info.key,
        info.object_id,
        info.size,
        info.etag,
        ts(info.last_modified),
        info.owner_account,
        json.dumps(segments),
        pack_meta(meta),
    )


def object_from_row(row: ObjectRow) -> ObjectInfo:
    m = meta_of(row.meta)
    return ObjectInfo(
        bucket=row.bucket,
        key=row.key,
        size=row.size,
        etag=row.etag,
        last_modified=dt(row.last_modified),
        content_type=m["ct"],
        metadata=m["um"],
        headers=m["h"],
        sse=sse_from_json(m["sse"]),
        checksums=m["ck"],
        segments=tuple(Segment(*seg) for seg in json.loads(row.segments)),
        object_id=row.object_id,
        owner_account=row.owner_account,
        parts_count=m["pc"],
        checksum_type=m["ckt"],
    )


class RowMemo(Generic[R, T]):
    """A decoder (`object_from_row`, `bucket_from_row`) memoised on the whole row.

    Rows are plain frozen values, so an equal row always decodes to an equal model. A hot
    GET skips the JSON and base64 decoding (~12 us for an object) for a dict lookup
    (~1 us). Bounded: the oldest half is dropped when full. Models are shared between
    requests; they are frozen and never mutated."""

    def __init__(self, decode: Callable[[R], T], capacity: int = 2048) -> None:
        self._decode = decode
        self._capacity = capacity
        self._memo: dict[R, T] = {}
        self._same = IdMemo[R, T](self._by_value, capacity)  # the very row object again

    def decode(self, row: R) -> T:
        return self._same.get(row)

    def _by_value(self, row: R) -> T:
        model = self._memo.get(row)  # hashes every field: a row read again from the index
        if model is None:
            model = self._decode(row)
            if len(self._memo) >= self._capacity:
                for old in list(self._memo)[: self._capacity // 2]:
                    del self._memo[old]
            self._memo[row] = model
        return model


class IdMemo(Generic[R, T]):
    """A memo keyed by the identity of immutable values that are handed out again and
    again (cached rows, the models decoded from them): a hit costs an int hash, not a
    frozen dataclass's hash of every field. Holds the keys, so an id is never reused
    while it is remembered. Bounded: emptied when full."""

    def __init__(self, make: Callable[[R], T], capacity: int = 2048) -> None:
        self._make = make
        self._capacity = capacity
        self._memo: dict[int, tuple[R, T]] = {}

    def get(self, key: R) -> T:
        hit = self._memo.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        value = self._make(key)
        if len(self._memo) >= self._capacity:
            self._memo.clear()
        self._memo[id(key)] = (key, value)
        return value


def upload_to_row(u: UploadInfo) -> UploadRow:
    meta = {
        "arn": u.owner_arn,
        "ct": u.content_type,
        "um": dict(u.metadata),
        "h": dict(u.headers),
        "sse": sse_to_json(u.sse),
        "ca": u.checksum_algorithm,
        "ckt": u.checksum_type,
    }
    return UploadRow(
        u.upload_id, u.bucket, u.key, ts(u.initiated), u.owner_account, pack_meta(meta)
    )


def upload_from_row(row: UploadRow) -> UploadInfo:
    m = meta_of(row.meta)
    return UploadInfo(
        upload_id=row.upload_id,
        bucket=row.bucket,
        key=row.key,
        initiated=dt(row.initiated),
        owner_account=row.owner_account,
        owner_arn=m["arn"],
        content_type=m["ct"],
        metadata=m["um"],
        headers=m["h"],
        sse=sse_from_json(m["sse"]),
        checksum_algorithm=m["ca"],
        checksum_type=m.get("ckt"),
    )


def part_to_row(p: PartInfo) -> PartRow:
    meta = pack_meta({"ck": dict(p.checksums)})
    return PartRow(p.upload_id, p.part_number, p.blob_id, p.size, p.etag, ts(p.last_modified), meta)


def part_from_row(row: PartRow) -> PartInfo:
    m = meta_of(row.meta)
    return PartInfo(
        row.upload_id,
        row.part_number,
        row.blob_id,
        row.size,
        row.etag,
        dt(row.last_modified),
        m["ck"],
    )
