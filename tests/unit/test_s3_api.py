"""The S3 REST adapter against real boto3 parsing, on a stub app (no SigV4, fake KMS).

Authentication and payload decoding belong to the HTTP foundation; here a stub
middleware picks the caller from the access key and the body is read raw. The
full stack is tested in tests/e2e/test_s3_*.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import warnings
from types import SimpleNamespace

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from kmscore.clock import FixedClock
from s3sim.http import s3_api
from s3sim.http.s3_objects import Req
from s3sim.s3.service import S3Service
from tests.awserr import err
from tests.unit.test_s3_service import ADMIN, OTHER, FakeKMS, MemStore

CALLERS = {"AKIAADMIN": ADMIN, "AKIAOTHER": OTHER}


class RawPayload:
    def __init__(self, request: web.Request) -> None:
        self._it = request.content.iter_chunked(65536).__aiter__()
        self.trailers: dict[str, str] = {}

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        return await self._it.__anext__()

    async def read_all(self, limit: int) -> bytes:
        return b"".join([c async for c in self])


def make_app(service: S3Service) -> web.Application:
    @web.middleware
    async def auth(request, handler):
        akid = re.search(r"Credential=([A-Z]+)/", request.headers.get("Authorization", ""))
        caller = CALLERS[akid.group(1)] if akid else ADMIN
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            request["auth"] = SimpleNamespace(caller=caller, request_id="REQ1")
        return await handler(request)

    app = web.Application(middlewares=[auth])
    app.router.add_route("*", "/{tail:.*}", s3_api.handler(SimpleNamespace(s3=service)))
    return app


@pytest.fixture
def endpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(Req, "payload", lambda self: RawPayload(self.request))
    kms = FakeKMS()
    kms.states[kms.arn("k1")] = "Enabled"
    service = S3Service(tmp_path, "us-east-1", FixedClock(), kms, store=MemStore(), fsync=False)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(service))
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.run_until_complete(runner.cleanup())


def client(endpoint: str, akid: str = "AKIAADMIN"):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=akid,
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_bucket_lifecycle(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["bkt"]
    s3.head_bucket(Bucket="bkt")
    assert s3.get_bucket_location(Bucket="bkt")["LocationConstraint"] is None
    s3.create_bucket(Bucket="bkt")  # your own bucket, us-east-1: 200 (AWS legacy)
    with pytest.raises(ClientError) as e:
        client(endpoint, "AKIAOTHER").create_bucket(Bucket="bkt")
    assert err(e) == ("BucketAlreadyExists", 409)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert err(e) == ("InvalidBucketName", 400)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="nope")
    assert err(e) == ("404", 404)
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="bkt")
    assert err(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="bkt", Key="k")
    s3.delete_bucket(Bucket="bkt")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="bkt")
    assert err(e) == ("NoSuchBucket", 404)


def test_bucket_encryption(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    rules = s3.get_bucket_encryption(Bucket="bkt")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    cfg = {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": "k1",
                },
                "BucketKeyEnabled": True,
            }
        ]
    }
    s3.put_bucket_encryption(Bucket="bkt", ServerSideEncryptionConfiguration=cfg)
    got = s3.get_bucket_encryption(Bucket="bkt")["ServerSideEncryptionConfiguration"]
    assert got["Rules"][0]["BucketKeyEnabled"] is True
    r = s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    assert r["ServerSideEncryption"] == "aws:kms" and r["BucketKeyEnabled"] is True
    assert r["SSEKMSKeyId"].endswith("key/k1")
    s3.delete_bucket_encryption(Bucket="bkt")
    assert s3.put_object(Bucket="bkt", Key="k2", Body=b"x")["ServerSideEncryption"] == "AES256"


def test_object_roundtrip_headers(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    r = s3.put_object(
        Bucket="bkt",
        Key="dir/ü ?&+.txt",
        Body=b"hello",
        ContentType="text/plain",
        Metadata={"Color": "blue"},
        CacheControl="max-age=1",
        ChecksumAlgorithm="SHA256",
    )
    assert r["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    assert r["ServerSideEncryption"] == "AES256"
    g = s3.get_object(Bucket="bkt", Key="dir/ü ?&+.txt", ChecksumMode="ENABLED")
    assert g["Body"].read() == b"hello"
    assert g["ContentType"] == "text/plain" and g["Metadata"] == {"color": "blue"}
    assert g["CacheControl"] == "max-age=1" and g["ChecksumSHA256"]
    h = s3.head_object(Bucket="bkt", Key="dir/ü ?&+.txt")
    assert h["ContentLength"] == 5 and h["ServerSideEncryption"] == "AES256"
    g = s3.get_object(
        Bucket="bkt", Key="dir/ü ?&+.txt", Range="bytes=1-2", ResponseContentType="x/y"
    )
    assert g["Body"].read() == b"el" and g["ContentRange"] == "bytes 1-2/5"
    assert g["ContentType"] == "x/y"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="bkt", Key="missing")
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="bkt", Key="missing")
    assert err(e) == ("404", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="bkt", Key="dir/ü ?&+.txt", IfMatch='"nope"')
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="bkt", Key="dir/ü ?&+.txt", IfNoneMatch=r["ETag"])
    assert err(e) == ("304", 304)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="bkt", Key="dir/ü ?&+.txt", Range="bytes=10-")
    assert err(e) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as e:
        client(endpoint, "AKIAOTHER").get_object(Bucket="bkt", Key="dir/ü ?&+.txt")
    assert err(e) == ("AccessDenied", 403)


def test_sse_kms_headers(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    ctx = "eyJhIjoiYiJ9"  # {"a":"b"}
    r = s3.put_object(
        Bucket="bkt",
        Key="k",
        Body=b"x",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="k1",
        SSEKMSEncryptionContext=ctx,
    )
    assert r["SSEKMSKeyId"].endswith(":key/k1") and "SSEKMSEncryptionContext" in r
    g = s3.get_object(Bucket="bkt", Key="k")
    assert g["ServerSideEncryption"] == "aws:kms" and "SSEKMSEncryptionContext" not in g
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket="bkt", Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="nope"
        )
    assert err(e) == ("KMS.NotFoundException", 400)
    s3.put_object(Bucket="bkt", Key="plain", Body=b"p")
    arn = "arn:aws:kms:us-east-1:111122223333:key/k1"
    s3.update_object_encryption(
        Bucket="bkt", Key="plain", ObjectEncryption={"SSEKMS": {"KMSKeyArn": arn}}
    )
    h = s3.head_object(Bucket="bkt", Key="plain")
    assert h["ServerSideEncryption"] == "aws:kms" and h["SSEKMSKeyId"] == arn


def test_listing(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    for k in ["a/1", "a/2", "b", "c d"]:
        s3.put_object(Bucket="bkt", Key=k, Body=b"x")
    r = s3.list_objects_v2(Bucket="bkt", Delimiter="/")
    assert [c["Key"] for c in r["Contents"]] == ["b", "c d"]
    assert r["CommonPrefixes"] == [{"Prefix": "a/"}] and r["KeyCount"] == 3
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="bkt", PaginationConfig={"PageSize": 1}
    )
    assert [c["Key"] for p in pages for c in p.get("Contents", [])] == ["a/1", "a/2", "b", "c d"]
    r = s3.list_objects_v2(Bucket="bkt", StartAfter="a/2", FetchOwner=True)
    assert r["Contents"][0]["Key"] == "b" and r["Contents"][0]["Owner"]["ID"]
    r = s3.list_objects(Bucket="bkt", Prefix="a/", MaxKeys=1)
    assert r["IsTruncated"] and [c["Key"] for c in r["Contents"]] == ["a/1"]
    v = s3.list_object_versions(Bucket="bkt")
    assert [x["VersionId"] for x in v["Versions"]] == ["null"] * 4
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="bkt", ContinuationToken="garbage!")
    assert err(e) == ("InvalidArgument", 400)
    d = s3.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "a/1"}, {"Key": "zz"}]})
    assert sorted(x["Key"] for x in d["Deleted"]) == ["a/1", "zz"]


def test_multipart_and_copy(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    up = s3.create_multipart_upload(Bucket="bkt", Key="mp", ServerSideEncryption="aws:kms")
    uid = up["UploadId"]
    assert up["ServerSideEncryption"] == "aws:kms"
    p1 = s3.upload_part(Bucket="bkt", Key="mp", UploadId=uid, PartNumber=1, Body=b"a" * 5242880)
    p2 = s3.upload_part(Bucket="bkt", Key="mp", UploadId=uid, PartNumber=2, Body=b"end")
    assert [
        p["PartNumber"] for p in s3.list_parts(Bucket="bkt", Key="mp", UploadId=uid)["Parts"]
    ] == [1, 2]
    assert s3.list_multipart_uploads(Bucket="bkt")["Uploads"][0]["UploadId"] == uid
    parts = [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket="bkt", Key="mp", UploadId=uid, MultipartUpload={"Parts": parts[::-1]}
        )
    assert err(e) == ("InvalidPartOrder", 400)
    r = s3.complete_multipart_upload(
        Bucket="bkt", Key="mp", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    assert r["ETag"].endswith('-2"') and r["ServerSideEncryption"] == "aws:kms"
    assert s3.get_object(Bucket="bkt", Key="mp")["Body"].read()[-4:] == b"aend"
    g = s3.get_object(Bucket="bkt", Key="mp", PartNumber=2)
    assert g["Body"].read() == b"end" and g["PartsCount"] == 2
    assert s3.head_object(Bucket="bkt", Key="mp", PartNumber=1)["ContentLength"] == 5242880
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="bkt", Key="mp", PartNumber=3)
    assert err(e) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket="bkt", Key="mp", UploadId=uid, PartNumber=3, Body=b"x")
    assert err(e) == ("NoSuchUpload", 404)
    c = s3.copy_object(Bucket="bkt", Key="cp", CopySource={"Bucket": "bkt", "Key": "mp"})
    assert c["CopyObjectResult"]["ETag"] and c["ServerSideEncryption"] == "AES256"
    up2 = s3.create_multipart_upload(Bucket="bkt", Key="mp2")["UploadId"]
    pc = s3.upload_part_copy(
        Bucket="bkt",
        Key="mp2",
        UploadId=up2,
        PartNumber=1,
        CopySource={"Bucket": "bkt", "Key": "mp"},
        CopySourceRange="bytes=0-9",
    )
    assert pc["CopyPartResult"]["ETag"] == f'"{hashlib.md5(b"a" * 10).hexdigest()}"'
    s3.abort_multipart_upload(Bucket="bkt", Key="mp2", UploadId=up2)
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket="bkt", Key="mp2", UploadId=up2)
    assert err(e) == ("NoSuchUpload", 404)


def test_presigned_style_query_parameters_do_not_change_the_operation(endpoint):
    import urllib.request

    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "bkt", "Key": "p"})
    req = urllib.request.Request(url, data=b"pre", method="PUT")
    assert urllib.request.urlopen(req).status == 200
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "p"})
    assert urllib.request.urlopen(url).read() == b"pre"


def test_expected_bucket_owner(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    s3.head_bucket(Bucket="bkt", ExpectedBucketOwner="111122223333")
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="bkt", ExpectedBucketOwner="444455556666")
    assert err(e) == ("AccessDenied", 403)


def test_unsupported_subresource_and_owner_only_acl(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    acl = s3.get_bucket_acl(Bucket="bkt")
    assert acl["Owner"]["ID"] == "111122223333"
    assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    assert s3.get_object_acl(Bucket="bkt", Key="k")["Grants"][0]["Permission"] == "FULL_CONTROL"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket="bkt", ACL="public-read")
    assert err(e) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket="bkt")
    assert err(e) == ("NotImplemented", 501)


def test_request_validation_errors(endpoint):
    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(
            Bucket="bkt2", CreateBucketConfiguration={"LocationConstraint": "us-east-1"}
        )
    assert err(e) == ("InvalidLocationConstraint", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="bkt", Key="k" * 1025, Body=b"x")
    assert err(e) == ("KeyTooLongError", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="bkt", Key="k", Body=b"x", Metadata={"m": "v" * 2100})
    assert err(e) == ("MetadataTooLarge", 400)
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket="bkt", Delete={"Objects": []})
    assert err(e) == ("MalformedXML", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="bkt", Key="k", Body=b"x", ServerSideEncryption="rot13")
    assert err(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="bkt", Key="k", Body=b"x", SSEKMSKeyId="k1")
    assert err(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket="bkt",
            Key="k",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSEncryptionContext="not-base64-json",
        )
    assert err(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="bkt", MaxKeys=-1)
    assert err(e) == ("InvalidArgument", 400)


def test_full_object_multipart_checksum(endpoint, tmp_path):
    from boto3.s3.transfer import TransferConfig

    from s3sim.storage.checksums import checksum

    s3 = client(endpoint)
    s3.create_bucket(Bucket="bkt")
    data = os.urandom(11 * 1024 * 1024)
    (tmp_path / "f").write_bytes(data)
    full = checksum("CRC32", data)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(
        str(tmp_path / "f"), "bkt", "full", Config=cfg, ExtraArgs={"ChecksumCRC32": full}
    )
    h = s3.head_object(Bucket="bkt", Key="full", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == full and h["ChecksumType"] == "FULL_OBJECT"
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(
            Bucket="bkt", Key="x", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"
        )
    assert err(e) == ("InvalidRequest", 400)
