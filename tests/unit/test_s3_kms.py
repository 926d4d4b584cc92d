"""S3Service with the real kmscore (blobs in memory): KMS decides every SSE-KMS read/write."""

from __future__ import annotations

import pytest

from kmscore import KMS
from kmscore.clock import FixedClock
from s3sim.s3.errors import S3Error
from s3sim.s3.models import SseRequest
from s3sim.s3.service import S3Service
from tests.unit.test_s3_service import ADMIN, ALICE, MemStore, body, read


@pytest.fixture
def env(tmp_path):
    clock = FixedClock()
    kms = KMS(tmp_path / "kms", "us-east-1", clock, root_key=b"\x01" * 32)
    s3 = S3Service(tmp_path, "us-east-1", clock, kms, store=MemStore(), fsync=False)
    s3.buckets.create(ADMIN, "bkt")
    return s3, kms, clock


def code(e) -> tuple[str, int]:
    return e.value.code, e.value.status


async def test_customer_key_lifecycle_decides_reads_and_writes(env):
    s3, kms, clock = env
    key = kms.create_key(ADMIN)
    res = await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms", key.key_id))
    assert res.sse.key_arn == key.arn
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"x"
    kms.disable_key(ADMIN, key.key_id)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k")
    assert code(e) == ("KMS.DisabledException", 400)
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "bkt", "k2", body(b"x"), sse=SseRequest("aws:kms", key.arn))
    assert code(e) == ("KMS.DisabledException", 400)
    kms.schedule_key_deletion(ADMIN, key.key_id, 7)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k")
    assert code(e) == ("KMS.KMSInvalidStateException", 400)
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "bkt", "k3", body(b"x"), sse=SseRequest("aws:kms", "nope"))
    assert code(e) == ("KMS.NotFoundException", 400)


async def test_iam_without_kms_is_denied_but_aws_managed_key_works(env):
    s3, kms, _ = env
    key = kms.create_key(ADMIN)
    with pytest.raises(S3Error) as e:
        await s3.put_object(ALICE, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms", key.arn))
    assert code(e) == ("AccessDenied", 403)
    res = await s3.put_object(ALICE, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms"))
    assert res.sse.key_arn == kms.aws_managed_key(ADMIN.account, "aws/s3")
    assert await read(await s3.objects.get(ALICE, "bkt", "k")) == b"x"


async def test_audit_names_s3_and_the_object_context(env):
    s3, kms, _ = env
    key = kms.create_key(ADMIN)
    await s3.put_object(ADMIN, "bkt", "a/b", body(b"x"), sse=SseRequest("aws:kms", key.arn))
    await read(await s3.objects.get(ADMIN, "bkt", "a/b"))
    events, _ = kms.lookup_events(ADMIN.account)
    byname = {e["eventName"]: e for e in events if e["eventName"] in ("GenerateDataKey", "Decrypt")}
    for name in ("GenerateDataKey", "Decrypt"):
        ev = byname[name]
        assert ev["userIdentity"]["invokedBy"] == "s3.amazonaws.com"
        assert ev["requestParameters"]["encryptionContext"] == {
            "aws:s3:arn": "arn:aws:s3:::bkt/a/b"
        }


async def test_bucket_key_generates_once(env):
    s3, kms, clock = env
    key = kms.create_key(ADMIN)
    sse = SseRequest("aws:kms", key.arn, bucket_key_enabled=True)
    for i in range(5):
        await s3.put_object(ADMIN, "bkt", f"k{i}", body(b"x"), sse=sse)
    events, _ = kms.lookup_events(ADMIN.account)
    gens = [e for e in events if e["eventName"] == "GenerateDataKey"]
    assert len(gens) == 1
    assert gens[0]["requestParameters"]["encryptionContext"] == {"aws:s3:arn": "arn:aws:s3:::bkt"}


async def test_update_object_encryption_keeps_etag_and_data(env):
    from s3sim.s3.update_encryption import update_encryption

    s3, kms, _ = env
    key = kms.create_key(ADMIN)
    res = await s3.put_object(ADMIN, "bkt", "k", body(b"payload"), sse=SseRequest())
    with pytest.raises(S3Error) as e:
        await update_encryption(s3.objects, ADMIN, "bkt", "k", key.key_id, False)
    assert code(e) == ("InvalidRequest", 400)
    info = await update_encryption(s3.objects, ADMIN, "bkt", "k", key.arn, True)
    assert info.etag == res.etag and info.sse.key_arn == key.arn and info.sse.bucket_key
    head = s3.head_object(ADMIN, "bkt", "k")
    assert head.sse.algorithm == "aws:kms" and head.last_modified == res.last_modified
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"payload"


@pytest.mark.parametrize("fsync", [False, True])
async def test_kms_is_called_inline_unless_it_fsyncs(tmp_path, fsync):
    import threading

    kms = KMS(tmp_path / "kms", "us-east-1", FixedClock(), root_key=b"\x01" * 32, fsync=fsync)
    s3 = S3Service(tmp_path, "us-east-1", FixedClock(), kms, store=MemStore(), fsync=False)
    s3.buckets.create(ADMIN, "bkt")
    key = kms.create_key(ADMIN)
    threads: list[int] = []
    real = kms.generate_data_key

    def generate(*args):
        threads.append(threading.get_ident())
        return real(*args)

    kms.generate_data_key = generate  # type: ignore[method-assign]
    await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms", key.key_id))
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"x"
    # an fsync of the audit trail would stall every request of the process
    assert (threads == [threading.get_ident()]) is not fsync
