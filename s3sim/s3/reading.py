"""Reading objects: conditions, ranges, and a streaming body that pins its blobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

from s3sim.s3.blobs import BlobHeader, BlobReader
from s3sim.s3.errors import S3Error
from s3sim.s3.models import Conditions, ObjectInfo


def _etag_matches(header: str, etag: str) -> bool:
    return any(t.strip().strip('"') in (etag, "*") for t in header.split(","))


def _seconds(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def check_conditions(info: ObjectInfo, cond: Conditions | None) -> None:
    """RFC 7232 as S3 applies it: 412 PreconditionFailed or 304 NotModified (None: no
    condition, the common request)."""
    if cond is None:
        return
    lm = _seconds(info.last_modified)
    if cond.if_match is not None:
        if not _etag_matches(cond.if_match, info.etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")
    elif cond.if_unmodified_since is not None and lm > cond.if_unmodified_since:
        raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
    if cond.if_none_match is not None:
        if _etag_matches(cond.if_none_match, info.etag):
            raise S3Error("NotModified", ETag=f'"{info.etag}"')
    elif cond.if_modified_since is not None and lm <= cond.if_modified_since:
        raise S3Error("NotModified", ETag=f'"{info.etag}"')


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single 'bytes=' range -> [start, end); None for no (or an ignored) range."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip() != "bytes" or "," in spec or "-" not in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=header)
            return max(0, size - n), size
        start = int(first)
        end = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        return None
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=header)
    return start, end


def select_span(
    info: ObjectInfo, range_header: str | None, part_number: int | None
) -> tuple[int, int] | None:
    """The bytes a GET/HEAD asks for: a Range, or one part of a multipart object."""
    if part_number is None:
        return parse_range(range_header, info.size)
    if range_header:
        raise S3Error(
            "InvalidRequest", "Cannot specify both Range header and partNumber query parameter"
        )
    count = info.parts_count or 1
    if not 1 <= part_number <= count:
        raise S3Error(
            "InvalidPartNumber", PartNumberRequested=str(part_number), ActualPartCount=str(count)
        )
    if not info.parts_count:
        return None
    start = sum(s.size for s in info.segments[: part_number - 1])
    return start, start + info.segments[part_number - 1].size


def segment_header(info: ObjectInfo, index: int) -> BlobHeader:
    """The blob header of segment `index` of an object, rebuilt from the index."""
    if not info.parts_count:
        return BlobHeader(
            "object",
            info.object_id,
            info.sse.key_arn or info.sse.algorithm,
            info.sse.wrapped_key,
            info.sse.context,
        )
    kind = "part"
    oid = f"{info.object_id}#{info.segments[index].part_number or index + 1}"
    return BlobHeader(
        kind, oid, info.sse.key_arn or info.sse.algorithm, info.sse.wrapped_key, info.sse.context
    )


class Body:
    """An object's plaintext bytes [start, end), across its segments.

    Blobs stay pinned (not deleted by a concurrent overwrite) until the body is
    exhausted or closed; adapters must `await body.aclose()` when done.
    """

    def __init__(
        self,
        readers: list[tuple[BlobReader, int, int]],
        release: Callable[[], None],
    ) -> None:
        self._readers = readers
        self._release: Callable[[], None] | None = release
        self._gen = self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        try:
            for reader, start, end in self._readers:
                async for chunk in reader.iter_range(start, end):
                    yield chunk
        finally:
            self._done()

    def _done(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            for reader, _, _ in self._readers:
                reader.close()
            release()

    def __aiter__(self) -> Body:
        return self

    async def __anext__(self) -> bytes:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()
        self._done()


def plan_segments(info: ObjectInfo, start: int, end: int) -> list[tuple[int, int, int]]:
    """(segment index, local start, local end) for every segment overlapping [start, end)."""
    out, offset = [], 0
    for i, seg in enumerate(info.segments):
        lo, hi = max(start, offset), min(end, offset + seg.size)
        if lo < hi:
            out.append((i, lo - offset, hi - offset))
        offset += seg.size
    return out
