"""Tag validation (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kmscore.errors import TagException

MAX_TAGS = 50


def normalize_tags(
    tags: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    pairs = list(tags.items()) if isinstance(tags, Mapping) else list(tags)
    out: dict[str, str] = {}
    for k, v in pairs:
        if not isinstance(k, str) or not 1 <= len(k) <= 128:
            raise TagException("Tag keys must be 1 to 128 characters")
        if not isinstance(v, str) or len(v) > 256:
            raise TagException("Tag values must be at most 256 characters")
        if k.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved")
        out[k] = v
    if len(out) > MAX_TAGS:
        raise TagException(f"A key can have at most {MAX_TAGS} tags")
    return tuple(sorted(out.items()))


def merge(
    current: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    merged = dict(current)
    merged.update(new)
    if len(merged) > MAX_TAGS:
        raise TagException(f"A key can have at most {MAX_TAGS} tags")
    return tuple(sorted(merged.items()))
