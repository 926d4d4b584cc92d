"""Bucket operations: create, list, head, delete, location, default encryption."""

from __future__ import annotations

import ipaddress
import re

from kmscore.caller import Caller
from s3sim.s3 import codec
from s3sim.s3.core import STAGING_BUCKET, Core
from s3sim.s3.errors import S3Error
from s3sim.s3.models import BucketInfo, EncryptionRule
from s3sim.storage.index import BucketRow

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def valid_bucket_name(name: str) -> bool:
    if not _NAME.match(name) or ".." in name or ".-" in name or "-." in name:
        return False
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return False
    try:
        ipaddress.IPv4Address(name)
        return False
    except ValueError:
        return True


class Buckets:
    def __init__(self, core: Core) -> None:
        self._core = core

    def create(self, caller: Caller, name: str, location: str | None = None) -> BucketInfo:
        if not caller.iam_allows("s3:CreateBucket"):
            raise S3Error("AccessDenied")
        if not valid_bucket_name(name):
            raise S3Error("InvalidBucketName", BucketName=name)
        if name == STAGING_BUCKET and self._core.staging_sink is not None:
            raise S3Error("BucketAlreadyExists", BucketName=name)
        region = self._core.region
        if location:
            if location == "us-east-1" or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", location):
                raise S3Error("InvalidLocationConstraint", LocationConstraint=location)
            region = location
        row = BucketRow(
            name, caller.account, caller.arn, region, self._core.clock.now().timestamp()
        )
        existing = self._core.index.create_bucket(row)
        if existing is not None:
            if existing.account != caller.account:
                raise S3Error("BucketAlreadyExists", BucketName=name)
            if existing.region == region == "us-east-1":
                # AWS's legacy us-east-1 behaviour: re-creating your own bucket is a 200
                # that leaves the bucket (and its contents) as it was.
                return codec.bucket_from_row(existing)
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=name)
        return codec.bucket_from_row(row)

    def list(
        self,
        caller: Caller,
        *,
        prefix: str = "",
        region: str | None = None,
        after: str = "",
        limit: int | None = None,
    ) -> tuple[list[BucketInfo], str | None]:
        """ListBuckets: the caller's buckets by name (after `after`), at most `limit`;
        with the last name returned when more follow (the continuation point)."""
        if not caller.iam_allows("s3:ListAllMyBuckets"):
            raise S3Error("AccessDenied")
        rows = [
            r
            for r in self._core.index.list_buckets(caller.account)
            if r.name.startswith(prefix) and r.name > after and region in (None, r.region)
        ]
        if limit is not None and len(rows) > limit:
            return [codec.bucket_from_row(r) for r in rows[:limit]], rows[limit - 1].name
        return [codec.bucket_from_row(r) for r in rows], None

    def head(self, caller: Caller, name: str) -> BucketInfo:
        return self._core.bucket(caller, name, "s3:ListBucket")

    def acl_owner(self, caller: Caller, name: str) -> str:
        """GetBucketAcl: buckets have one grant, the owner's FULL_CONTROL."""
        return self._core.bucket(caller, name, "s3:GetBucketAcl").account

    def delete(self, caller: Caller, name: str) -> None:
        self._core.bucket(caller, name, "s3:DeleteBucket")
        garbage = self._core.index.delete_bucket(name)
        if garbage is None:
            raise S3Error("BucketNotEmpty", BucketName=name)
        self._core.garbage.delete(garbage)

    def location(self, caller: Caller, name: str) -> str | None:
        """GetBucketLocation: None for us-east-1 (AWS's empty LocationConstraint)."""
        region = self._core.bucket(caller, name, "s3:GetBucketLocation").region
        return None if region == "us-east-1" else region

    def put_encryption(self, caller: Caller, name: str, rule: EncryptionRule) -> None:
        self._core.bucket(caller, name, "s3:PutEncryptionConfiguration")
        if rule.algorithm not in ("AES256", "aws:kms"):
            raise S3Error("MalformedXML")
        if rule.algorithm == "AES256" and rule.kms_key_id:
            raise S3Error(
                "InvalidArgument",
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
            )
        self._core.index.set_bucket_encryption(name, codec.encryption_to_json(rule))

    def get_encryption(self, caller: Caller, name: str) -> EncryptionRule:
        """The default encryption; AES256 when none was set (as on AWS since 2023)."""
        info = self._core.bucket(caller, name, "s3:GetEncryptionConfiguration")
        return info.encryption or EncryptionRule("AES256")

    def delete_encryption(self, caller: Caller, name: str) -> None:
        self._core.bucket(caller, name, "s3:PutEncryptionConfiguration")
        self._core.index.set_bucket_encryption(name, None)
