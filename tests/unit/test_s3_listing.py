"""ListObjects paging over the index: prefixes, delimiters, markers, truncation."""

from __future__ import annotations

import json

from s3sim.s3.listing import list_page
from s3sim.storage.index import Index, ObjectRow

KEYS = ["a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"]


def make(tmp_path) -> Index:
    idx = Index(tmp_path / "i.db", fsync=False)
    for k in KEYS:
        idx.put_object(
            ObjectRow("bk", k, k, 1, "e", 1.0, "111", json.dumps([[k, 1]]), '{"ck": {}}')
        )
    return idx


def walk(idx: Index, **kw) -> list[tuple[list[str], list[str]]]:
    pages, marker = [], None
    while True:
        page = list_page(idx, "bk", marker=marker, **kw)
        pages.append(([e.key for e in page.entries], list(page.common_prefixes)))
        if not page.is_truncated:
            return pages
        marker = page.next_marker


def test_flat_listing_pages(tmp_path):
    pages = walk(make(tmp_path), max_keys=3)
    assert [k for ks, _ in pages for k in ks] == KEYS
    assert len(pages) == 3


def test_delimiter_rolls_up_and_pages_over_prefixes(tmp_path):
    idx = make(tmp_path)
    page = list_page(idx, "bk", delimiter="/")
    assert [e.key for e in page.entries] == ["b", "d"]
    assert page.common_prefixes == ("a/", "c/")
    assert page.key_count == 4 and not page.is_truncated
    pages = walk(idx, delimiter="/", max_keys=1)
    assert pages == [([], ["a/"]), (["b"], []), ([], ["c/"]), (["d"], [])]


def test_prefix_and_nested_delimiter(tmp_path):
    page = list_page(make(tmp_path), "bk", prefix="a/", delimiter="/")
    assert [e.key for e in page.entries] == ["a/1", "a/2"]
    assert page.common_prefixes == ("a/b/",)


def test_start_after_and_zero_max_keys(tmp_path):
    idx = make(tmp_path)
    assert [e.key for e in list_page(idx, "bk", marker="c/x").entries] == ["c/y", "d"]
    empty = list_page(idx, "bk", max_keys=0)
    assert empty.entries == () and not empty.is_truncated


def test_truncated_exactly_at_end_is_not_truncated(tmp_path):
    page = list_page(make(tmp_path), "bk", max_keys=len(KEYS))
    assert not page.is_truncated and len(page.entries) == len(KEYS)
