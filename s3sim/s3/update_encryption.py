"""UpdateObjectEncryption: move an existing object to SSE-KMS (or another KMS key)."""

from __future__ import annotations

import re

from kmscore.caller import Caller
from s3sim.s3.errors import S3Error
from s3sim.s3.models import ObjectInfo, SseRequest
from s3sim.s3.objects import Objects

KMS_KEY_ARN = re.compile(r"arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+")


async def update_encryption(
    objects: Objects, caller: Caller, bucket: str, key: str, kms_key_arn: str, bucket_key: bool
) -> ObjectInfo:
    """UpdateObjectEncryption: the object re-encrypted under SSE-KMS, ETag and metadata kept.

    Our file format binds the wrapped key into each file's header, so this rewrites
    the object (atomically, committed only if the object did not change meanwhile).
    """
    if not KMS_KEY_ARN.fullmatch(kms_key_arn):
        raise S3Error("InvalidRequest", "KMSKeyArn must be the full ARN of a KMS key")
    src = objects.lookup(caller, bucket, key, "s3:PutObject")
    if src.sse.algorithm == "SSE-C":
        raise S3Error("InvalidRequest", "UpdateObjectEncryption is not supported for SSE-C objects")
    dst = objects.core.bucket(caller, bucket, "s3:PutObject")
    body = await objects.open_source(caller, src, None, 0, src.size)
    sse = SseRequest("aws:kms", kms_key_arn, bucket_key_enabled=bucket_key)
    try:
        return await objects.store_object(
            caller,
            dst,
            key,
            body,
            sse,
            src.content_type,
            src.metadata,
            src.headers,
            None,
            preserve=src,
        )
    finally:
        await body.aclose()
