"""Encryption at rest through the real server: SSE-KMS via kmscore, audit, bucket keys,
SSE-C, a plaintext scan of the data dir and tamper detection."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from s3sim.storage import inline
from tests.awserr import err

MiB = 1024 * 1024


@pytest.fixture
def s3(server):
    return server.boto("s3", identity="admin")


@pytest.fixture
def kms(server):
    return server.boto("kms", identity="admin")


@pytest.fixture
def bucket(s3):
    name = "enc-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=name)
    return name


def files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_sse_kms_roundtrip_headers_and_audit(server, s3, kms, bucket):
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/s3test", TargetKeyId=key["KeyId"])
    ctx = base64.b64encode(json.dumps({"dept": "sales"}).encode()).decode()
    r = s3.put_object(
        Bucket=bucket,
        Key="doc",
        Body=b"kms protected",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="alias/s3test",
        SSEKMSEncryptionContext=ctx,
    )
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == key["Arn"]
    assert "SSEKMSEncryptionContext" in r
    g = s3.get_object(Bucket=bucket, Key="doc")
    assert g["Body"].read() == b"kms protected" and g["SSEKMSKeyId"] == key["Arn"]
    assert "SSEKMSEncryptionContext" not in g
    trail = server.boto("cloudtrail", identity="admin")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GenerateDataKey"}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    ours = [
        x
        for x in records
        if x["requestParameters"]["encryptionContext"].get("aws:s3:arn")
        == f"arn:aws:s3:::{bucket}/doc"
    ]
    assert ours and ours[0]["userIdentity"]["invokedBy"] == "s3.amazonaws.com"
    assert ours[0]["requestParameters"]["encryptionContext"]["dept"] == "sales"


def test_default_aws_managed_key(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    assert ":key/" in r["SSEKMSKeyId"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_kms_key_states_decide(server, s3, kms, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="nope"
        )
    assert err(e) == ("KMS.NotFoundException", 400)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.put_object(
        Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
    )
    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert err(e) == ("KMS.DisabledException", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket=bucket, Key="k2", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
        )
    assert err(e) == ("KMS.DisabledException", 400)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert err(e) == ("KMS.KMSInvalidStateException", 400)
    server.advance_clock(8 * 86400)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert err(e)[1] == 400


def test_principal_without_kms_permission_is_denied(server, kms, s3, bucket):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    alice = server.boto("s3", identity="alice")
    with pytest.raises(ClientError) as e:
        alice.put_object(
            Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
        )
    assert err(e) == ("AccessDenied", 403)
    alice.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    assert alice.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_bucket_key_reduces_kms_calls(server, s3, kms, bucket):
    key = kms.create_key()["KeyMetadata"]
    cfg = {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": key["Arn"],
                },
                "BucketKeyEnabled": True,
            }
        ]
    }
    s3.put_object(Bucket=bucket, Key="before", Body=b"x")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=cfg)
    for i in range(10):
        r = s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
        assert r["BucketKeyEnabled"] and r["SSEKMSKeyId"] == key["Arn"]
    assert s3.head_object(Bucket=bucket, Key="before")["ServerSideEncryption"] == "AES256"
    trail = server.boto("cloudtrail", identity="admin")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    )["Events"]
    gens = [e for e in events if e["EventName"] == "GenerateDataKey"]
    assert len(gens) == 1
    ctx = json.loads(gens[0]["CloudTrailEvent"])["requestParameters"]["encryptionContext"]
    assert ctx == {"aws:s3:arn": f"arn:aws:s3:::{bucket}"}


def test_sse_c_needs_https(server, s3, bucket):
    key = os.urandom(32)
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket=bucket, Key="c", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=key
        )
    assert err(e) == ("InvalidRequest", 400)


def test_no_plaintext_on_disk(server, s3, bucket, tmp_path):
    secrets = [os.urandom(4096), os.urandom(300_000)]
    s3.put_object(Bucket=bucket, Key="small", Body=secrets[0])
    s3.put_object(Bucket=bucket, Key="kms", Body=secrets[1], ServerSideEncryption="aws:kms")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = os.urandom(5 * MiB)
    secrets.append(part)
    p = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]},
    )
    needles = [s[i : i + 32] for s in secrets for i in (0, len(s) // 2, len(s) - 32)]
    for path in Path(server.data_dir).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert not any(n in blob for n in needles), f"plaintext found in {path}"


def tamper_file(data_dir: Path, put) -> None:
    """Flip a byte in the middle of the one new file at least as big as the object."""
    before = files(data_dir)
    size = put()
    new = [p for p, n in files(data_dir).items() if p not in before and n >= size]
    assert len(new) == 1
    raw = bytearray(new[0].read_bytes())
    raw[len(raw) // 2] ^= 0x01
    new[0].write_bytes(bytes(raw))


def tamper_inline(data_dir: Path, put, bucket: str, key: str) -> None:
    """Flip a byte in the middle of the object's inline blob, in the index database."""
    put()
    db = sqlite3.connect(data_dir / "s3" / "index.sqlite3", timeout=30)
    try:
        where = "WHERE bucket=? AND key=?"
        (segments,) = db.execute(f"SELECT segments FROM objects {where}", (bucket, key)).fetchone()
        ((blob_id, *_),) = json.loads(segments)
        (sealed, named) = db.execute(
            f"SELECT data, blob_id FROM inline_files {where}", (bucket, key)
        ).fetchone()
        assert named == blob_id
        raw = bytearray(sealed)
        raw[len(raw) // 2] ^= 0x01
        with db:
            db.execute(f"UPDATE inline_files SET data=? {where}", (bytes(raw), bucket, key))
    finally:
        db.close()


@pytest.mark.parametrize(  # inline blobs (in the index) / a file read whole / streamed
    "size", [4096, inline.MAX_PLAIN, inline.MAX_PLAIN + 1, 65536, 200_000]
)
def test_tampered_blob_is_never_served(server, s3, bucket, size):
    data = os.urandom(size)

    def put() -> int:
        s3.put_object(Bucket=bucket, Key="t", Body=data)
        return size

    if size <= inline.MAX_PLAIN:
        tamper_inline(Path(server.data_dir), put, bucket, "t")
    else:
        tamper_file(Path(server.data_dir), put)
    try:
        got = s3.get_object(Bucket=bucket, Key="t")["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError):
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] >= 500
        return
    assert hashlib.sha256(got).digest() != hashlib.sha256(data).digest()
    pytest.fail("tampered object was served without an error")


def test_grant_constraint_scopes_s3_use_to_one_object(server, kms, s3, bucket):
    key = kms.create_key()["KeyMetadata"]
    alice_arn = "arn:aws:iam::111122223333:user/alice"
    kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=alice_arn,
        Operations=["GenerateDataKey", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"aws:s3:arn": f"arn:aws:s3:::{bucket}/allowed"}},
    )
    alice = server.boto("s3", identity="alice")
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key["Arn"]}
    alice.put_object(Bucket=bucket, Key="allowed", Body=b"ok", **sse)
    assert alice.get_object(Bucket=bucket, Key="allowed")["Body"].read() == b"ok"
    with pytest.raises(ClientError) as e:
        alice.put_object(Bucket=bucket, Key="other", Body=b"no", **sse)
    assert err(e) == ("AccessDenied", 403)


def test_crypto_shredding_after_deletion_window(server, s3, kms, bucket):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    s3.put_object(Bucket=bucket, Key="gone", Body=b"secret", **sse)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    server.advance_clock(8 * 86400)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="gone")
    assert err(e) == ("KMS.NotFoundException", 400)
    assert s3.head_object(Bucket=bucket, Key="gone")["ServerSideEncryption"] == "aws:kms"


def test_etag_is_the_md5_only_for_sse_s3_objects(server, s3, kms, bucket):
    """As on AWS: SSE-S3 ETags are the data's MD5; SSE-KMS ones are not (no MD5 of the
    plaintext is computed or stored for them), yet Content-MD5 is still checked."""
    data = os.urandom(5000)
    md5 = hashlib.md5(data)
    plain = s3.put_object(Bucket=bucket, Key="s3", Body=data)["ETag"]
    assert plain == f'"{md5.hexdigest()}"'
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    etags = set()
    for name in ("kms1", "kms2"):
        etag = s3.put_object(
            Bucket=bucket, Key=name, Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId=key
        )["ETag"]
        assert len(etag) == 34 and etag != plain
        assert s3.head_object(Bucket=bucket, Key=name)["ETag"] == etag
        etags.add(etag)
    assert len(etags) == 2  # a fresh data key, a fresh ETag
    good = base64.b64encode(md5.digest()).decode()
    s3.put_object(
        Bucket=bucket, Key="kms3", Body=data, ServerSideEncryption="aws:kms", ContentMD5=good
    )
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket=bucket, Key="kms4", Body=data, ServerSideEncryption="aws:kms", ContentMD5=bad
        )
    assert err(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="kms4")
    assert err(e) == ("404", 404)
