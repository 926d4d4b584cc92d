"""Helpers for the Connect end-to-end tests (real server, real boto3 clients)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable
from typing import Any


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


def items(server, instance_id: str) -> list[dict]:
    url = f"{server.endpoint}/_s3sim/connect/instances/{instance_id}/items"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["Items"]


def statuses(server, instance_id: str) -> dict[str, str]:
    return {i["ContactId"]: i["Status"] for i in items(server, instance_id)}


def new_instance(connect, alias: str | None = None) -> dict:
    alias = alias or "e2e-" + os.urandom(3).hex()
    out = connect.create_instance(
        IdentityManagementType="CONNECT_MANAGED",
        InstanceAlias=alias,
        InboundCallsEnabled=True,
        OutboundCallsEnabled=True,
    )
    return connect.describe_instance(InstanceId=out["Id"])["Instance"]


def s3_config(bucket: str, prefix: str, key_arn: str) -> dict:
    return {
        "StorageType": "S3",
        "S3Config": {
            "BucketName": bucket,
            "BucketPrefix": prefix,
            "EncryptionConfig": {"EncryptionType": "KMS", "KeyId": key_arn},
        },
    }


def staging_key(instance_id: str, contact_id: str, rtype: str = "CALL_RECORDINGS") -> str:
    ext = {"CALL_RECORDINGS": "wav", "SCREEN_RECORDINGS": "webm", "CHAT_TRANSCRIPTS": "json"}
    return f"{instance_id}/{rtype}/{contact_id}.{ext[rtype]}"


def configured_instance(
    connect, s3, kms, prefix: str = "p", name: str = "rec"
) -> tuple[dict, str, str, str]:
    """A new instance whose CALL_RECORDINGS go to a new bucket under a new customer key:
    (instance, bucket, key ARN, association id)."""
    bucket = f"{name}-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=bucket)
    inst = new_instance(connect)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    assoc = connect.associate_instance_storage_config(
        InstanceId=inst["Id"],
        ResourceType="CALL_RECORDINGS",
        StorageConfig=s3_config(bucket, prefix, key),
    )["AssociationId"]
    return inst, bucket, key, assoc
