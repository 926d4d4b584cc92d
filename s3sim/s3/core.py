"""State shared by the S3 operations, and the access checks every operation makes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from kmscore.caller import Caller
from kmscore.clock import Clock
from s3sim.s3 import codec
from s3sim.s3.blobs import BlobStore, Garbage
from s3sim.s3.commits import Commits
from s3sim.s3.errors import S3Error
from s3sim.s3.models import BucketInfo
from s3sim.s3.sse import KeyManager
from s3sim.storage.index import BucketRow, Index

STAGING_BUCKET = "connect-staging"
MAX_KEY_BYTES = 1024


class StagingSink(Protocol):
    """Where writes to the reserved bucket `connect-staging` go (the Connect pipeline)."""

    def validate(self, caller: Caller, key: str) -> None:
        """Raise S3Error when `caller` may not write `key`."""
        ...

    async def ingest(
        self,
        caller: Caller,
        key: str,
        body: AsyncIterator[bytes],
        content_type: str | None,
        size_hint: int | None,
    ) -> tuple[str, int]:
        """Store the body; returns (etag without quotes, size)."""
        ...


@dataclass
class Core:
    index: Index
    keys: KeyManager
    store: BlobStore
    garbage: Garbage
    clock: Clock
    rng: Callable[[int], bytes]
    region: str
    staging_sink: StagingSink | None = None
    commits: Commits = field(init=False, repr=False)
    _buckets: codec.RowMemo[BucketRow, BucketInfo] = field(
        default_factory=lambda: codec.RowMemo(codec.bucket_from_row, 256), repr=False
    )

    def __post_init__(self) -> None:
        self.commits = Commits(self.index, self.garbage)

    def new_id(self) -> str:
        return self.rng(16).hex()

    def bucket(self, caller: Caller, name: str, action: str) -> BucketInfo:
        """The bucket, if `caller` may perform `action` on it (S3's errors otherwise)."""
        if name == STAGING_BUCKET and self.staging_sink is not None:
            raise S3Error("AccessDenied")
        row = self.index.get_bucket(name)
        if row is None:
            raise S3Error("NoSuchBucket", BucketName=name)
        if row.account != caller.account or not caller.iam_allows(action):
            raise S3Error("AccessDenied")
        return self._buckets.decode(row)

    def is_staging(self, name: str) -> bool:
        return name == STAGING_BUCKET and self.staging_sink is not None


def check_key(key: str) -> None:
    if not key:
        raise S3Error("InvalidArgument", "A key must be specified")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")
