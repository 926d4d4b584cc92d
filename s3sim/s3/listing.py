"""ListObjects (v1, v2) and ListObjectVersions over the index: range scans, no walk.

A common prefix is skipped in one seek (to the least key above every key that
starts with it), so a page costs O(page) index lookups whatever the bucket size.
"""

from __future__ import annotations

from s3sim.s3.models import ListEntry, ListPage
from s3sim.storage.index import Index, ObjectRow, prefix_upper

_BATCH = 1000
_SMALL = 8


def _entry(row: ObjectRow) -> ListEntry:
    from s3sim.s3.codec import dt, meta_of

    ck = meta_of(row.meta).get("ck") or {}
    alg = next(iter(ck), None)
    return ListEntry(row.key, row.size, row.etag, dt(row.last_modified), row.owner_account, alg)


def _start(prefix: str, delimiter: str, marker: str | None) -> tuple[str, bool]:
    """Where the scan begins: (lower bound, inclusive)."""
    if not marker or marker < prefix:
        return prefix, True
    if delimiter:
        i = marker.find(delimiter, len(prefix))
        if i >= 0 and marker.startswith(prefix):
            return prefix_upper(marker[: i + len(delimiter)]), True
    return marker, False


def list_page(
    index: Index,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    max_keys: int = 1000,
    marker: str | None = None,
) -> ListPage:
    """One page of keys > marker under prefix, rolling keys up into common prefixes."""
    entries: list[ListEntry] = []
    prefixes: list[str] = []
    if max_keys <= 0:
        return ListPage((), (), False, None, 0)
    lower, inclusive = _start(prefix, delimiter, marker)
    upper = prefix_upper(prefix) if prefix else None
    last: str | None = None
    truncated = False
    # With a delimiter each row may start a common prefix that we skip in one seek,
    # so fetch small batches first and grow them while no prefix shows up.
    batch = _SMALL if delimiter else min(_BATCH, max_keys + 1)
    while not truncated:
        rows = index.scan_objects(bucket, lower, inclusive, upper, batch)
        jumped = False
        for row in rows:
            if len(entries) + len(prefixes) == max_keys:
                truncated = True
                break
            i = row.key.find(delimiter, len(prefix)) if delimiter else -1
            if i >= 0:
                cp = row.key[: i + len(delimiter)]
                prefixes.append(cp)
                last = cp
                lower, inclusive, jumped = prefix_upper(cp), True, True
                break
            entries.append(_entry(row))
            last = row.key
            lower, inclusive = row.key, False
        if not jumped and len(rows) < batch:
            break
        batch = _SMALL if jumped else min(batch * 4, _BATCH)
    count = len(entries) + len(prefixes)
    return ListPage(tuple(entries), tuple(prefixes), truncated, last if truncated else None, count)
