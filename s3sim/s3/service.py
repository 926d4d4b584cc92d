"""S3Service: the facade the HTTP adapter and the Connect pipeline call.

State lives under <data-dir>/s3/: index.sqlite3 (metadata, the commit point) and the
blob store's files. The SSE-S3 master key is derived from kmscore's root key.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from kmscore.caller import Caller
from kmscore.clock import Clock
from s3sim.s3.blobs import BlobStore, Garbage
from s3sim.s3.buckets import Buckets
from s3sim.s3.core import Core, StagingSink
from s3sim.s3.errors import S3Error
from s3sim.s3.listing import list_page
from s3sim.s3.models import CustomerKey, ListPage, ObjectInfo, PutResult, SseRequest
from s3sim.s3.multipart import Multipart
from s3sim.s3.objects import Objects
from s3sim.s3.sse import SSE_S3_SECRET, KeyManager
from s3sim.storage.index import Index


class S3Service:
    def __init__(
        self,
        data_dir: Path,
        region: str,
        clock: Clock,
        kms: Any,
        rng: Callable[[int], bytes] = os.urandom,
        fsync: bool = True,
        allow_ssec_over_http: bool = False,
        staging_sink: StagingSink | None = None,
        store: BlobStore | None = None,
        sweep: bool = True,
        shared: bool = False,
        spares: Any = None,
    ) -> None:
        """`spares`: deleted blob files new objects reuse (s3.engine.spare_files).
        `sweep=False` in every server process but the first over a data dir: crash
        leftovers are removed only at startup, before any other process writes.
        `shared`: several processes use this data dir (s3sim/workers.py)."""
        root = Path(data_dir) / "s3"
        root.mkdir(parents=True, exist_ok=True)
        if store is None:
            from s3sim.s3.engine import EngineStore

            store = EngineStore(
                root / "blobs", rng=rng, fsync=fsync, sweep=sweep, shared=shared, spares=spares
            )
        index = Index(root / "index.sqlite3", fsync=fsync, shared=shared)
        keys = KeyManager(kms, kms.derived_secret(SSE_S3_SECRET), region, clock, rng)
        garbage = Garbage(store)
        self.core = Core(index, keys, store, garbage, clock, rng, region, staging_sink)
        self.region = region
        self.allow_ssec_over_http = allow_ssec_over_http
        self.buckets = Buckets(self.core)
        self.objects = Objects(self.core)
        self.multipart = Multipart(self.core, self.objects)
        self.orphans_removed = garbage.sweep(index.referenced_blobs()) if sweep else 0

    def close(self) -> None:
        self.core.index.close()

    def set_staging_sink(self, sink: StagingSink | None) -> None:
        """Attach the Connect pipeline after construction (it may need this service)."""
        self.core.staging_sink = sink

    def check_ssec_transport(self, secure: bool, *keys: CustomerKey | None) -> None:
        """SSE-C needs HTTPS, as on AWS (unless allow_ssec_over_http)."""
        if any(keys) and not secure and not self.allow_ssec_over_http:
            raise S3Error(
                "InvalidRequest",
                "Requests specifying Server Side Encryption with Customer provided keys must be "
                "made over a secure connection.",
            )

    def bucket_exists(self, name: str) -> bool:
        """Whether a bucket of that name exists (anyone's; for unsigned requests' errors)."""
        return self.core.is_staging(name) or self.core.index.get_bucket(name) is not None

    def check_expected_owner(self, bucket: str, account: str | None) -> None:
        """x-amz-expected-bucket-owner: AccessDenied when the bucket has another owner."""
        if account is None or not bucket:
            return
        row = self.core.index.get_bucket(bucket)
        if row is not None and row.account != account:
            raise S3Error("AccessDenied")

    def list_objects(
        self,
        caller: Caller,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = 1000,
        marker: str | None = None,
        action: str = "s3:ListBucket",
    ) -> ListPage:
        self.core.bucket(caller, bucket, action)
        return list_page(self.core.index, bucket, prefix, delimiter, max_keys, marker)

    # -- the in-process API the Connect pipeline uses -------------------------------

    async def put_object(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        body: AsyncIterator[bytes],
        *,
        sse: SseRequest,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PutResult:
        return await self.objects.put(
            caller, bucket, key, body, sse=sse, content_type=content_type, metadata=metadata
        )

    def head_object(self, caller: Caller, bucket: str, key: str) -> ObjectInfo:
        return self.objects.head(caller, bucket, key)
