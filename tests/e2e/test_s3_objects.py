"""S3 through the real server with boto3: buckets, objects, listing, multipart, errors.

Uses the `server` fixture of tests/e2e/conftest.py (real SigV4, real kmscore,
real storage engine).
"""

from __future__ import annotations

import hashlib
import os

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.awserr import err

MiB = 1024 * 1024


@pytest.fixture
def s3(server):
    return server.boto("s3", identity="admin")


@pytest.fixture
def bucket(s3):
    name = "b-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=name)
    return name


def test_bucket_operations_and_errors(server, s3):
    s3.create_bucket(Bucket="alpha-bucket")
    assert "alpha-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="alpha-bucket")
    assert s3.get_bucket_location(Bucket="alpha-bucket")["LocationConstraint"] is None
    s3.create_bucket(
        Bucket="west-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert s3.get_bucket_location(Bucket="west-bucket")["LocationConstraint"] == "eu-west-1"
    s3.create_bucket(Bucket="alpha-bucket")  # own bucket in us-east-1: 200 (AWS legacy)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(
            Bucket="west-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert err(e) == ("BucketAlreadyOwnedByYou", 409)
    with pytest.raises(ClientError) as e:
        server.boto("s3", identity="other").create_bucket(Bucket="alpha-bucket")
    assert err(e) == ("BucketAlreadyExists", 409)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="NOT_valid")
    assert err(e) == ("InvalidBucketName", 400)
    with pytest.raises(ClientError) as e:
        server.boto("s3", identity="other").list_objects_v2(Bucket="alpha-bucket")
    assert err(e) == ("AccessDenied", 403)
    s3.put_object(Bucket="alpha-bucket", Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="alpha-bucket")
    assert err(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="alpha-bucket", Key="k")
    s3.delete_bucket(Bucket="alpha-bucket")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="alpha-bucket")
    assert err(e) == ("404", 404)


def test_put_get_head_delete(s3, bucket):
    data = os.urandom(100_000)
    r = s3.put_object(Bucket=bucket, Key="d/f.bin", Body=data, Metadata={"a": "1"})
    assert r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert r["ServerSideEncryption"] == "AES256"
    g = s3.get_object(Bucket=bucket, Key="d/f.bin", ChecksumMode="ENABLED")
    assert g["Body"].read() == data and g["Metadata"] == {"a": "1"}
    h = s3.head_object(Bucket=bucket, Key="d/f.bin")
    assert h["ContentLength"] == len(data) and h["ServerSideEncryption"] == "AES256"
    part = s3.get_object(Bucket=bucket, Key="d/f.bin", Range="bytes=70000-70009")
    assert part["Body"].read() == data[70000:70010]
    s3.delete_object(Bucket=bucket, Key="d/f.bin")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="d/f.bin")
    assert err(e) == ("NoSuchKey", 404)


def test_checksum_mismatch_is_bad_digest(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"abc", ChecksumCRC32="AAAAAA==")
    assert err(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert err(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert err(e) == ("404", 404)


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == b"v"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"0"')
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert err(e) == ("304", 304)


def test_listing_pages_and_prefixes(s3, bucket):
    keys = [f"p/{i:03d}" for i in range(25)] + ["q/1", "top"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 10}
    )
    assert [c["Key"] for p in pages for c in p.get("Contents", [])] == sorted(keys)
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["p/", "q/"]
    assert [c["Key"] for c in r["Contents"]] == ["top"]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="p/", MaxKeys=3, EncodingType="url")
    assert r["IsTruncated"] and r["KeyCount"] == 3
    v = s3.list_object_versions(Bucket=bucket, Prefix="q/")
    assert v["Versions"][0]["VersionId"] == "null" and v["Versions"][0]["IsLatest"]
    d = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:5]]})
    assert len(d["Deleted"]) == 5


def test_multipart_upload_file_and_errors(s3, bucket, tmp_path):
    src = tmp_path / "big.bin"
    data = os.urandom(11 * MiB)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(str(src), bucket, "big", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="big")
    assert h["ETag"].endswith('-3"') and h["ContentLength"] == len(data)
    out = tmp_path / "out.bin"
    s3.download_file(bucket, "big", str(out), Config=cfg)
    assert out.read_bytes() == data
    uid = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="m", UploadId=uid, PartNumber=1, Body=b"x" * 10)
    p2 = s3.upload_part(Bucket=bucket, Key="m", UploadId=uid, PartNumber=2, Body=b"y")
    parts = [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=uid, MultipartUpload={"Parts": parts}
        )
    assert err(e) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=uid, MultipartUpload={"Parts": parts[::-1]}
        )
    assert err(e) == ("InvalidPartOrder", 400)
    bad = [{"PartNumber": 1, "ETag": '"00"'}]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=uid, MultipartUpload={"Parts": bad}
        )
    assert err(e) == ("InvalidPart", 400)
    s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=uid)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="m", UploadId=uid)
    assert err(e) == ("NoSuchUpload", 404)


def test_an_empty_last_part_completes_and_reads_back(s3, bucket):
    """S3 sets no minimum on the last part: an upload of one empty part is an empty
    object (the part's blob was once taken for an inline one, and the GET failed)."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="empty-mp")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="empty-mp", UploadId=uid, PartNumber=1, Body=b"")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="empty-mp",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}]},
    )
    assert done["ETag"].endswith('-1"')
    got = s3.get_object(Bucket=bucket, Key="empty-mp")
    assert got["ContentLength"] == 0 and got["Body"].read() == b""


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", Metadata={"m": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    g = s3.get_object(Bucket=bucket, Key="dst")
    assert g["Body"].read() == b"copy me" and g["Metadata"] == {"m": "1"}
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"n": "2"},
    )
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"n": "2"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert err(e) == ("InvalidRequest", 400)


def test_presigned_get_and_put(s3, bucket):
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=60
    )
    assert requests.put(put_url, data=b"presigned", timeout=10).status_code == 200
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=60
    )
    r = requests.get(get_url, timeout=10)
    assert r.status_code == 200 and r.content == b"presigned"


def test_ack_put_survives_kill9(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="durable", Body=b"still here")
    server.kill9()
    server.restart()
    s3 = server.boto("s3", identity="admin")
    assert s3.get_object(Bucket=bucket, Key="durable")["Body"].read() == b"still here"
