"""Limit/Marker pagination over sorted listings, as KMS does it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from kmscore.errors import InvalidMarkerException, ValidationException
from kmscore.models import Page

T = TypeVar("T")


PREFIX = "m1."


def _encode(sort_key: str) -> str:
    return PREFIX + sort_key.encode().hex()


def _decode(marker: str) -> str:
    if not isinstance(marker, str) or not marker.startswith(PREFIX):
        raise InvalidMarkerException("Invalid marker")
    try:
        return bytes.fromhex(marker[len(PREFIX) :]).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidMarkerException("Invalid marker") from None


def paginate(
    items: Sequence[T],
    sort_key: Callable[[T], str],
    limit: int | None,
    marker: str | None,
    default_limit: int = 100,
    max_limit: int = 1000,
) -> Page:
    """Return the page after `marker` (exclusive) of at most `limit` items."""
    if limit is None:
        limit = default_limit
    if not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise ValidationException(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            f"constraint: Member must have value between 1 and {max_limit}"
        )
    ordered = sorted(items, key=sort_key)
    if marker:
        after = _decode(marker)
        ordered = [i for i in ordered if sort_key(i) > after]
    page = ordered[:limit]
    nxt = _encode(sort_key(page[-1])) if len(ordered) > limit else None
    return Page(tuple(page), nxt)
