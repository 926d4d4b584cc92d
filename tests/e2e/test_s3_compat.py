"""S3 behaviours the ceph/s3-tests run found missing (docs/COMPAT.md), checked with boto3
against the real server: each asserts AWS's status and error code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

MiB = 1024 * 1024

pytest.importorskip("s3sim.server")


def err(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def s3(module_server):
    return module_server.boto("s3", identity="admin")


@pytest.fixture
def bucket(s3):
    name = "c-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=name)
    return name


def blob_files(server) -> set[Path]:
    return {p for p in Path(server.data_dir).rglob("*") if p.is_file() and "blobs" in p.parts}


def test_delete_bucket_with_only_uploads_drops_them(module_server, s3, bucket):
    before = blob_files(module_server)
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=up, PartNumber=1, Body=b"a" * 1000)
    s3.create_multipart_upload(Bucket=bucket, Key="j")
    assert len(blob_files(module_server) - before) == 1
    s3.delete_bucket(Bucket=bucket)
    assert blob_files(module_server) - before == set()
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert err(e) == ("404", 404)
    s3.create_bucket(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=up, PartNumber=1, Body=b"x")
    assert err(e) == ("NoSuchUpload", 404)


def test_delete_bucket_with_object_and_upload_is_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert err(e) == ("BucketNotEmpty", 409)
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [up]
