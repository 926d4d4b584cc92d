"""S3 behaviours the ceph/s3-tests run found missing (docs/COMPAT.md), checked with boto3
against the real server: each asserts AWS's status and error code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.awserr import err

MiB = 1024 * 1024


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


def mpu(s3, bucket, key, parts, **create):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=data)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return up, done


def test_complete_retried_returns_the_same_result(s3, bucket):
    up, parts = mpu(s3, bucket, "k", [b"a" * (5 * MiB), b"b" * 10])
    first = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts}
    )
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts}
    )
    assert again["ETag"] == first["ETag"] and again["ETag"].endswith('-2"')
    assert again["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 5 * MiB + 10
    # A retry naming other parts is not the same Complete.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts[:1]}
        )
    assert err(e) == ("NoSuchUpload", 404)
    # Once the key holds another object, the upload is gone for good.
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts}
        )
    assert err(e) == ("NoSuchUpload", 404)


def test_complete_after_abort_is_no_such_upload(s3, bucket):
    up, parts = mpu(s3, bucket, "k", [b"a"])
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=up)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts}
        )
    assert err(e) == ("NoSuchUpload", 404)


def test_complete_retried_keeps_checksum_and_type(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
    r = s3.upload_part(
        Bucket=bucket,
        Key="k",
        UploadId=up["UploadId"],
        PartNumber=1,
        Body=b"x" * 100,
        ChecksumAlgorithm="SHA256",
    )
    parts = [{"PartNumber": 1, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]}]
    args = {"Bucket": bucket, "Key": "k", "UploadId": up["UploadId"]}
    first = s3.complete_multipart_upload(**args, MultipartUpload={"Parts": parts})
    assert first["ChecksumSHA256"].endswith("-1") and first["ChecksumType"] == "COMPOSITE"
    again = s3.complete_multipart_upload(**args, MultipartUpload={"Parts": parts})
    assert (again["ChecksumSHA256"], again["ChecksumType"]) == (
        first["ChecksumSHA256"],
        "COMPOSITE",
    )


@pytest.mark.parametrize("checksum_type", ["FULL_OBJECT", "COMPOSITE"])
def test_complete_body_has_checksum_type(s3, bucket, checksum_type):
    up = s3.create_multipart_upload(
        Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32", ChecksumType=checksum_type
    )["UploadId"]
    r = s3.upload_part(
        Bucket=bucket,
        Key="k",
        UploadId=up,
        PartNumber=1,
        Body=b"x" * 100,
        ChecksumAlgorithm="CRC32",
    )
    parts = [{"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]}]
    res = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts}
    )
    assert res["ChecksumType"] == checksum_type and res["ChecksumCRC32"]


def test_complete_without_checksum_has_no_checksum_type(s3, bucket):
    up, parts = mpu(s3, bucket, "k", [b"a"])
    res = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts}
    )
    assert "ChecksumType" not in res


def test_complete_checks_a_composite_whole_object_checksum(s3, bucket):
    def upload() -> tuple[str, list]:
        up = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
        r = s3.upload_part(
            Bucket=bucket,
            Key="k",
            UploadId=up["UploadId"],
            PartNumber=1,
            Body=b"A" * 1024,
            ChecksumAlgorithm="SHA256",
        )
        return up["UploadId"], [
            {"PartNumber": 1, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]}
        ]

    up, parts = upload()
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=up,
            ChecksumSHA256="bad",
            MultipartUpload={"Parts": parts},
        )
    assert err(e) == ("BadDigest", 400)
    composite = "Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1"  # SHA256 of the part's SHA256
    res = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="k",
        UploadId=up,
        ChecksumSHA256=composite,
        MultipartUpload={"Parts": parts},
    )
    assert res["ChecksumSHA256"] == composite


@pytest.fixture(scope="module")
def kms_arn(module_server):
    return module_server.boto("kms").create_key()["KeyMetadata"]["Arn"]


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_upload_part_copy_has_the_uploads_sse_headers(s3, bucket, kms_arn, sse):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    create = {"ServerSideEncryption": sse}
    if sse == "aws:kms":
        create["SSEKMSKeyId"] = kms_arn
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst", **create)["UploadId"]
    r = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=up,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=2-5",
    )
    assert r["ServerSideEncryption"] == sse
    assert r.get("SSEKMSKeyId") == (kms_arn if sse == "aws:kms" else None)
    parts = [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="dst", UploadId=up, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"2345"


@pytest.mark.parametrize("rng", ["bytes=0-21", "bytes=5-5", "bytes=10-12"])
def test_upload_part_copy_range_past_the_end(s3, bucket, rng):
    s3.put_object(Bucket=bucket, Key="src", Body=b"01234")
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=up,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=rng,
        )
    assert err(e) == ("InvalidArgument", 400)
    assert "source object of size: 5" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("rng", ["bytes=3-1", "0-2", "bytes=0-", "bytes=-2", "bytes=0-1,2-3"])
def test_upload_part_copy_malformed_range(s3, bucket, rng):
    s3.put_object(Bucket=bucket, Key="src", Body=b"01234")
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=up,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=rng,
        )
    assert err(e) == ("InvalidArgument", 400)


def add_headers(client, event, headers):
    client.meta.events.register(event, lambda params, **_: params["headers"].update(headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-server-side-encryption": "aws:kms"},
        {"x-amz-server-side-encryption": "AES256"},
        {"x-amz-server-side-encryption-aws-kms-key-id": "k"},
        {"x-amz-server-side-encryption-bucket-key-enabled": "true"},
    ],
)
@pytest.mark.parametrize("op", ["GetObject", "HeadObject"])
def test_get_head_refuse_sse_request_headers(module_server, bucket, headers, op):
    s3 = module_server.boto("s3")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    add_headers(s3, f"before-call.s3.{op}", headers)
    call = s3.get_object if op == "GetObject" else s3.head_object
    with pytest.raises(ClientError) as e:
        call(Bucket=bucket, Key="k")
    code, status = err(e)
    assert status == 400 and code == ("InvalidArgument" if op == "GetObject" else "400")


def test_create_own_bucket_again_in_us_east_1_is_ok(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    r = s3.create_bucket(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    with pytest.raises(ClientError) as e:
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert err(e) == ("BucketAlreadyOwnedByYou", 409)


def test_create_own_bucket_again_elsewhere_is_already_owned(s3):
    name = "c-eu-" + os.urandom(4).hex()
    conf = {"LocationConstraint": "eu-west-1"}
    s3.create_bucket(Bucket=name, CreateBucketConfiguration=conf)
    for kwargs in ({"CreateBucketConfiguration": conf}, {}):
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=name, **kwargs)
        assert err(e) == ("BucketAlreadyOwnedByYou", 409)


def test_create_someone_elses_bucket_is_already_exists(module_server, bucket):
    with pytest.raises(ClientError) as e:
        module_server.boto("s3", identity="other").create_bucket(Bucket=bucket)
    assert err(e) == ("BucketAlreadyExists", 409)


def unsigned(server):
    from botocore import UNSIGNED
    from botocore.config import Config

    return server.boto("s3", config=Config(signature_version=UNSIGNED))


@pytest.mark.parametrize("op", ["get_object", "head_object", "delete_object", "put_object"])
def test_unsigned_request_to_missing_bucket_is_no_such_bucket(module_server, op):
    anon = unsigned(module_server)
    with pytest.raises(ClientError) as e:
        getattr(anon, op)(Bucket="c-gone-" + os.urandom(4).hex(), Key="k")
    assert err(e) == ("404" if op == "head_object" else "NoSuchBucket", 404)


def test_unsigned_request_to_existing_bucket_is_denied(module_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    anon = unsigned(module_server)
    for call in (
        lambda: anon.get_object(Bucket=bucket, Key="k"),
        lambda: anon.get_object(Bucket=bucket, Key="missing"),
        lambda: anon.list_objects_v2(Bucket=bucket),
        lambda: anon.delete_object(Bucket=bucket, Key="k"),
        lambda: anon.put_object(Bucket=bucket, Key="k", Body=b"x"),
        lambda: anon.delete_bucket(Bucket=bucket),
        lambda: anon.list_buckets(),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        anon.create_bucket(Bucket="c-new-" + os.urandom(4).hex())
    assert err(e) == ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"


def test_unsigned_request_body_is_not_read(module_server, bucket):
    import requests

    r = requests.put(f"{module_server.endpoint}/{bucket}/k", data=b"x" * 100_000, timeout=5)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert f"<Resource>/{bucket}/k</Resource>" in r.text


def test_list_buckets_paginated(module_server):
    s3 = module_server.boto("s3", identity="alice")
    mine = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    names = sorted("c-page-" + os.urandom(3).hex() + str(i) for i in range(3))
    for n in names:
        s3.create_bucket(Bucket=n)
    expected = sorted(mine | set(names))
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_buckets(MaxBuckets=2, **kw)
        assert len(r["Buckets"]) <= 2
        seen += [b["Name"] for b in r["Buckets"]]
        token = r.get("ContinuationToken")
        if not token:
            break
    assert seen == expected
    r = s3.list_buckets(MaxBuckets=len(expected))
    assert [b["Name"] for b in r["Buckets"]] == expected and "ContinuationToken" not in r
    r = s3.list_buckets(Prefix="c-page-")
    assert [b["Name"] for b in r["Buckets"]] == names and r["Prefix"] == "c-page-"
    with pytest.raises(ClientError) as e:
        s3.list_buckets(MaxBuckets=10_001)
    assert err(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.list_buckets(ContinuationToken="not-a-token")
    assert err(e) == ("InvalidArgument", 400)


def test_list_objects_v2_empty_continuation_token(s3, bucket):
    for k in ("bar", "baz", "foo"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    r = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert r["ContinuationToken"] == "" and r["IsTruncated"] is False
    assert [o["Key"] for o in r["Contents"]] == ["bar", "baz", "foo"]


def test_sse_c_upload_part_without_the_key(server_factory):
    srv = server_factory(args=("--no-fsync", "--allow-ssec-over-http"))
    s3 = srv.boto("s3")
    s3.create_bucket(Bucket="ssec")
    key = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
    up = s3.create_multipart_upload(Bucket="ssec", Key="k", **key)["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket="ssec", Key="k", UploadId=up, PartNumber=1, Body=b"x")
    assert err(e) == ("InvalidRequest", 400)
    assert "Subsequent part requests must include" in e.value.response["Error"]["Message"]
    r = s3.upload_part(Bucket="ssec", Key="k", UploadId=up, PartNumber=1, Body=b"x", **key)
    assert r["SSECustomerAlgorithm"] == "AES256"
    s3.put_object(Bucket="ssec", Key="src", Body=b"0123456789")
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(
            Bucket="ssec",
            Key="k",
            UploadId=up,
            PartNumber=2,
            CopySource={"Bucket": "ssec", "Key": "src"},
        )
    assert err(e) == ("InvalidRequest", 400)
    r = s3.upload_part_copy(
        Bucket="ssec",
        Key="k",
        UploadId=up,
        PartNumber=2,
        CopySource={"Bucket": "ssec", "Key": "src"},
        **key,
    )
    assert r["SSECustomerAlgorithm"] == "AES256" and r["SSECustomerKeyMD5"]
