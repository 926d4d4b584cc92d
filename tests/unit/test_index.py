"""The SQLite metadata index: buckets, objects, uploads, parts, range scans, garbage."""

from __future__ import annotations

import json

import pytest

from s3sim.storage.index import (
    BucketRow,
    Index,
    ObjectPut,
    ObjectRow,
    PartRow,
    UploadRow,
    prefix_upper,
)


def obj(key: str, blob: str, bucket: str = "b") -> ObjectRow:
    return ObjectRow(
        bucket, key, "oid-" + blob, 3, "etag", 1.0, "111", json.dumps([[blob, 3]]), "{}"
    )


def test_bucket_create_is_exclusive_and_persists(tmp_path):
    idx = Index(tmp_path / "i.db")
    row = BucketRow("b", "111", "arn:aws:iam::111:root", "us-east-1", 1.0)
    assert idx.create_bucket(row) is None
    again = idx.create_bucket(BucketRow("b", "222", "x", "us-east-1", 2.0))
    assert again is not None and again.account == "111"
    idx.close()
    idx = Index(tmp_path / "i.db")
    assert idx.get_bucket("b") == row
    assert [b.name for b in idx.list_buckets("111")] == ["b"]
    assert idx.list_buckets("222") == []


def test_delete_bucket_refuses_when_not_empty(tmp_path):
    idx = Index(tmp_path / "i.db")
    idx.create_bucket(BucketRow("b", "111", "x", "r", 1.0))
    idx.put_object(obj("k", "blob1"))
    assert idx.delete_bucket("b") is None
    assert idx.get_bucket("b") is not None
    idx.delete_object("b", "k")
    assert idx.delete_bucket("b") == []
    assert idx.get_bucket("b") is None


def test_delete_bucket_drops_in_progress_uploads(tmp_path):
    idx = Index(tmp_path / "i.db")
    idx.create_bucket(BucketRow("b", "111", "x", "r", 1.0))
    idx.create_bucket(BucketRow("c", "111", "x", "r", 1.0))
    idx.create_upload(UploadRow("u1", "b", "k", 1.0, "111", "{}"))
    idx.create_upload(UploadRow("u2", "b", "j", 1.0, "111", "{}"))
    idx.create_upload(UploadRow("u3", "c", "k", 1.0, "111", "{}"))
    idx.put_part(PartRow("u1", 1, "p1", 5, "e", 1.0, "{}"))
    idx.put_part(PartRow("u2", 1, "p2", 5, "e", 1.0, "{}"))
    idx.put_part(PartRow("u3", 1, "p3", 5, "e", 1.0, "{}"))
    assert sorted(idx.delete_bucket("b") or []) == ["p1", "p2"]
    assert idx.get_upload("u1") is None and idx.list_parts("u2") == []
    assert idx.get_upload("u3") is not None and idx.referenced_blobs() == {"p3"}


def test_overwrite_returns_replaced_row(tmp_path):
    idx = Index(tmp_path / "i.db")
    assert idx.put_object(obj("k", "blob1")) is None
    old = idx.put_object(obj("k", "blob2"))
    assert old is not None and old.blob_ids() == ["blob1"]
    assert idx.get_object("b", "k").blob_ids() == ["blob2"]
    assert idx.referenced_blobs() == {"blob2"}


def test_scan_is_a_byte_ordered_range(tmp_path):
    idx = Index(tmp_path / "i.db")
    for k in ["a/1", "a/2", "b", "a/3", "é", "Z", "b/x", "other"]:
        idx.put_object(obj(k, k))
    idx.put_object(obj("a/1", "x", bucket="c"))
    keys = [r.key for r in idx.scan_objects("b", "", True, None, 100)]
    assert keys == sorted(keys, key=lambda k: k.encode())
    sub = [r.key for r in idx.scan_objects("b", "a/", True, prefix_upper("a/"), 100)]
    assert sub == ["a/1", "a/2", "a/3"]
    after = [r.key for r in idx.scan_objects("b", "a/1", False, prefix_upper("a/"), 1)]
    assert after == ["a/2"]


def test_parts_complete_and_abort(tmp_path):
    idx = Index(tmp_path / "i.db")
    idx.create_upload(UploadRow("u1", "b", "k", 1.0, "111", "{}"))
    assert idx.put_part(PartRow("u1", 1, "p1", 5, "e1", 1.0, "{}")) is None
    old = idx.put_part(PartRow("u1", 1, "p1b", 5, "e1", 1.0, "{}"))
    assert old is not None and old.blob_id == "p1"
    idx.put_part(PartRow("u1", 2, "p2", 5, "e2", 1.0, "{}"))
    assert [p.part_number for p in idx.list_parts("u1", after=1)] == [2]
    idx.put_object(obj("k", "previous"))
    row = ObjectRow("b", "k", "u1", 5, "x-1", 1.0, "111", json.dumps([["p1b", 5]]), "{}")
    garbage = idx.complete_upload("u1", row, {"p1b"})
    assert sorted(garbage) == ["p2", "previous"]
    assert idx.get_upload("u1") is None and idx.list_parts("u1") == []
    assert idx.complete_upload("u1", row, set()) is None
    assert idx.abort_upload("u1") is None


def test_put_part_on_missing_upload_raises(tmp_path):
    idx = Index(tmp_path / "i.db")
    try:
        idx.put_part(PartRow("nope", 1, "p", 1, "e", 1.0, "{}"))
    except KeyError:
        return
    raise AssertionError("expected KeyError")


def test_list_uploads_prefix_and_markers(tmp_path):
    idx = Index(tmp_path / "i.db")
    for uid, key in [("u1", "a/x"), ("u2", "a/x"), ("u3", "a/y"), ("u4", "b")]:
        idx.create_upload(UploadRow(uid, "b", key, 1.0, "111", "{}"))
    assert [u.upload_id for u in idx.list_uploads("b", "a/", "", "", 10)] == ["u1", "u2", "u3"]
    assert [u.upload_id for u in idx.list_uploads("b", "", "a/x", "u1", 2)] == ["u2", "u3"]


def test_put_objects_is_one_transaction_of_independent_puts(tmp_path):
    """In order, each seeing the ones before it; a refused check undoes only its own put."""
    idx = Index(tmp_path / "i.db")
    idx.put_object(obj("k", "blob0"))

    def create_only(current: ObjectRow | None) -> None:
        if current is not None:
            raise ValueError("exists")

    results = idx.put_objects(
        [
            ObjectPut(obj("k", "blob1")),
            ObjectPut(obj("n", "i01"), create_only, ("i01", b"sealed")),
            ObjectPut(obj("n", "blob2"), create_only),  # sees the put before it
            ObjectPut(obj("m", "blob3")),
        ]
    )
    assert results[0].blob_ids() == ["blob0"] and results[1] is None
    assert isinstance(results[2], ValueError) and results[3] is None
    assert idx.get_object("b", "k").blob_ids() == ["blob1"]
    assert idx.get_object("b", "n").blob_ids() == ["i01"]
    assert idx.inline_blob("b", "n", "i01") == b"sealed"
    assert idx.get_object("b", "m").blob_ids() == ["blob3"]
    with pytest.raises(ValueError):  # put_object raises what put_objects hands back
        idx.put_object(obj("n", "blob4"), create_only)
    idx.close()


def _two_processes(tmp_path) -> tuple[Index, Index]:
    """Two Index instances over one database and one change counter, as two server
    processes have them (shared=True)."""
    return Index(tmp_path / "i.db", shared=True), Index(tmp_path / "i.db", shared=True)


def test_cached_object_rows_follow_writes_of_this_process(tmp_path):
    idx = Index(tmp_path / "i.db")
    assert idx.get_object("b", "k") is None  # a miss is cached too
    idx.put_object(obj("k", "blob1"))
    assert idx.get_object("b", "k").blob_ids() == ["blob1"]
    idx.put_object(obj("k", "blob2"))
    assert idx.get_object("b", "k").blob_ids() == ["blob2"]
    idx.delete_object("b", "k")
    assert idx.get_object("b", "k") is None


def test_cached_object_rows_follow_writes_of_another_process(tmp_path):
    a, b = _two_processes(tmp_path)
    b.put_object(obj("k", "blob1"))
    assert a.get_object("b", "k").blob_ids() == ["blob1"]  # now cached in a
    b.put_object(obj("k", "blob2"))
    assert a.get_object("b", "k").blob_ids() == ["blob2"]
    b.delete_object("b", "k")
    assert a.get_object("b", "k") is None
    b.create_upload(UploadRow("u1", "b", "k", 1.0, "111", "{}"))
    b.put_part(PartRow("u1", 1, "p1", 3, "e1", 1.0, "{}"))
    row = ObjectRow("b", "k", "u1", 3, "x-1", 1.0, "111", json.dumps([["p1", 3]]), "{}")
    b.complete_upload("u1", row, {"p1"})
    assert a.get_object("b", "k").blob_ids() == ["p1"]


def test_object_row_cache_stays_bounded(tmp_path, monkeypatch):
    import s3sim.storage.index as index_mod

    monkeypatch.setattr(index_mod, "OBJECT_CACHE_MAX", 8)
    idx = Index(tmp_path / "i.db")
    for i in range(20):
        idx.put_object(obj(f"k{i}", f"blob{i}"))
    for i in range(20):
        assert idx.get_object("b", f"k{i}").blob_ids() == [f"blob{i}"]
    assert len(idx._objects) <= 8


def test_inline_blob_lives_and_dies_with_its_row(tmp_path):
    idx = Index(tmp_path / "i.db")
    idx.put_object(obj("k", "i01"), inline=("i01", b"sealed one"))
    assert idx.inline_blob("b", "k", "i01") == b"sealed one"
    old = idx.put_object(obj("k", "i02"), inline=("i02", b"sealed two"))
    assert old is not None and old.blob_ids() == ["i01"]
    assert idx.inline_blob("b", "k", "i01") is None  # replaced in the same commit
    assert idx.inline_blob("b", "k", "i02") == b"sealed two"
    idx.delete_object("b", "k")
    assert idx.inline_blob("b", "k", "i02") is None


def test_inline_blobs_are_cached_until_any_object_write(tmp_path):
    """Like the rows: read from the database once, then from memory until an object write
    (in any process, through the shared counter) bumps the change counter."""
    import sqlite3

    idx = Index(tmp_path / "i.db", fsync=False, shared=True)
    idx.put_object(obj("k", "i01"), inline=("i01", b"sealed one"))
    assert idx.inline_blob("b", "k", "i01") == b"sealed one"
    outside = sqlite3.connect(tmp_path / "i.db")  # a write that bumps no counter
    with outside:
        outside.execute("UPDATE inline_files SET data=? WHERE key='k'", (b"changed",))
    assert idx.inline_blob("b", "k", "i01") == b"sealed one"  # cached
    other = Index(tmp_path / "i.db", fsync=False, shared=True)  # another process
    other.put_object(obj("x", "i09"), inline=("i09", b"x"))  # bumps the shared counter
    assert idx.inline_blob("b", "k", "i01") == b"changed"  # read again
    outside.close()
    other.close()
    idx.close()


def test_inline_blob_survives_a_refused_conditional_put(tmp_path):
    idx = Index(tmp_path / "i.db")
    idx.put_object(obj("k", "i01"), inline=("i01", b"kept"))

    def refuse(current):
        raise RuntimeError("precondition")

    try:
        idx.put_object(obj("k", "i02"), check=refuse, inline=("i02", b"lost"))
    except RuntimeError:
        pass
    assert idx.inline_blob("b", "k", "i01") == b"kept" and idx.inline_blob("b", "k", "i02") is None
    assert idx.get_object("b", "k").blob_ids() == ["i01"]


def test_completed_upload_drops_the_inline_blob_it_replaces(tmp_path):
    idx = Index(tmp_path / "i.db")
    idx.put_object(obj("k", "i01"), inline=("i01", b"small"))
    idx.create_upload(UploadRow("u1", "b", "k", 1.0, "111", "{}"))
    idx.put_part(PartRow("u1", 1, "p1", 5, "e", 1.0, "{}"))
    garbage = idx.complete_upload("u1", obj("k", "p1"), {"p1"})
    assert garbage == []  # the inline blob is not garbage for the blob store: it is gone
    assert idx.inline_blob("b", "k", "i01") is None


def test_fresh_read_skips_the_row_cache(tmp_path):
    a = Index(tmp_path / "i.db", fsync=False)
    b = Index(tmp_path / "i.db", fsync=False)  # no shared counter: a's cache goes stale
    a.put_object(obj("k", "blob1"))
    assert a.get_object("b", "k").blob_ids() == ["blob1"]
    b.put_object(obj("k", "blob2"))
    assert a.get_object("b", "k").blob_ids() == ["blob1"]
    assert a.get_object("b", "k", fresh=True).blob_ids() == ["blob2"]
