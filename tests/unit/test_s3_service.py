"""S3Service logic with an in-memory blob store and a fake KMS (pure parts only).

The real storage engine and kmscore are exercised in tests/e2e/test_s3_*.py.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode

import pytest

from kmscore.clock import FixedClock
from s3sim.s3.errors import S3Error
from s3sim.s3.models import ChecksumRequest, Conditions, CustomerKey, EncryptionRule, SseRequest
from s3sim.s3.service import S3Service
from s3sim.storage.checksums import checksum
from tests.unit.s3_env import (
    ADMIN,
    ALICE,
    OTHER,
    READER,
    FakeKMS,
    MemStore,
    body,
    code,
    make_env,
    read,
)


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path)


async def test_put_get_roundtrip_sse_s3_by_default(env):
    s3, kms, store, _ = env
    res = await s3.put_object(ADMIN, "bkt", "k", body(b"hello world"), sse=SseRequest())
    assert res.etag == hashlib.md5(b"hello world").hexdigest()
    assert res.sse.algorithm == "AES256" and kms.calls == []
    got = await s3.objects.get(ADMIN, "bkt", "k")
    assert await read(got) == b"hello world"
    (data, data_key, hdr) = next(iter(store.blobs.values()))
    assert data_key not in s3.core.index.get_object("bkt", "k").meta
    assert res.sse.wrapped_key and data_key not in res.sse.wrapped_key


async def test_sse_kms_context_and_key_arn(env):
    s3, kms, _, _ = env
    sse = SseRequest("aws:kms", "k1", {"team": "x"}, "e30=")
    res = await s3.put_object(ADMIN, "bkt", "a/b", body(b"data"), sse=sse)
    assert res.sse.key_arn == kms.arn("k1")
    assert kms.calls[-1] == (
        "GenerateDataKey",
        kms.arn("k1"),
        {"team": "x", "aws:s3:arn": "arn:aws:s3:::bkt/a/b"},
    )
    assert await read(await s3.objects.get(ADMIN, "bkt", "a/b")) == b"data"
    assert kms.calls[-1][0] == "Decrypt" and kms.calls[-1][2]["team"] == "x"


async def test_sse_kms_default_managed_key(env):
    s3, kms, _, _ = env
    res = await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms"))
    assert res.sse.key_arn.endswith("key/managed")


async def test_kms_errors_map_to_s3(env):
    s3, kms, _, _ = env
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms", "nope"))
    assert code(e) == ("KMS.NotFoundException", 400)
    await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest("aws:kms", "k1"))
    kms.states[kms.arn("k1")] = "Disabled"
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k")
    assert code(e) == ("KMS.DisabledException", 400)


async def test_bucket_key_one_generate_per_period(env):
    s3, kms, _, clock = env
    sse = SseRequest("aws:kms", "k1", bucket_key_enabled=True)
    for i in range(5):
        await s3.put_object(ADMIN, "bkt", f"k{i}", body(b"x"), sse=sse)
    gens = [c for c in kms.calls if c[0] == "GenerateDataKey"]
    assert len(gens) == 1 and gens[0][2] == {"aws:s3:arn": "arn:aws:s3:::bkt"}
    for i in range(5):
        assert await read(await s3.objects.get(ADMIN, "bkt", f"k{i}")) == b"x"
    assert len([c for c in kms.calls if c[0] == "Decrypt"]) == 1
    kms.states[kms.arn("k1")] = "Disabled"
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "bkt", "k9", body(b"x"), sse=sse)
    assert code(e) == ("KMS.DisabledException", 400)
    kms.states[kms.arn("k1")] = "Enabled"
    clock.advance(301)
    await s3.put_object(ADMIN, "bkt", "k9", body(b"x"), sse=sse)
    assert len([c for c in kms.calls if c[0] == "GenerateDataKey"]) == 2


async def test_bucket_default_encryption_applies_to_new_objects_only(env):
    s3, _, _, _ = env
    await s3.put_object(ADMIN, "bkt", "before", body(b"x"), sse=SseRequest())
    s3.buckets.put_encryption(ADMIN, "bkt", EncryptionRule("aws:kms", "k1", True))
    await s3.put_object(ADMIN, "bkt", "after", body(b"x"), sse=SseRequest())
    assert s3.head_object(ADMIN, "bkt", "before").sse.algorithm == "AES256"
    after = s3.head_object(ADMIN, "bkt", "after").sse
    assert after.algorithm == "aws:kms" and after.bucket_key


async def test_access_control(env):
    s3, _, _, _ = env
    await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest())
    with pytest.raises(S3Error) as e:
        await s3.objects.get(OTHER, "bkt", "k")
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(S3Error) as e:
        await s3.put_object(READER, "bkt", "k", body(b"x"), sse=SseRequest())
    assert code(e) == ("AccessDenied", 403)
    assert await read(await s3.objects.get(READER, "bkt", "k")) == b"x"
    await s3.put_object(ALICE, "bkt", "k2", body(b"y"), sse=SseRequest())
    with pytest.raises(S3Error) as e:
        await s3.objects.get(OTHER, "nobucket", "k")
    assert code(e) == ("NoSuchBucket", 404)


async def test_bucket_errors(env):
    s3, _, _, _ = env
    # us-east-1 (the env's region): re-creating your own bucket is a 200 (AWS legacy).
    assert s3.buckets.create(ADMIN, "bkt").name == "bkt"
    s3.buckets.create(ADMIN, "eu-bkt", "eu-west-1")
    for name, loc, err in [
        ("eu-bkt", "eu-west-1", "BucketAlreadyOwnedByYou"),
        ("bkt", "eu-west-1", "BucketAlreadyOwnedByYou"),
        ("Bad_Name", None, "InvalidBucketName"),
    ]:
        with pytest.raises(S3Error) as e:
            s3.buckets.create(ADMIN, name, loc)
        assert e.value.code == err
    with pytest.raises(S3Error) as e:
        s3.buckets.create(OTHER, "bkt")
    assert code(e) == ("BucketAlreadyExists", 409)
    await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest())
    with pytest.raises(S3Error) as e:
        s3.buckets.delete(ADMIN, "bkt")
    assert code(e) == ("BucketNotEmpty", 409)


async def test_checksums_and_md5(env):
    s3, _, store, _ = env
    crc = checksum("CRC32", b"abc")
    ck = ChecksumRequest("CRC32", crc)
    res = await s3.put_object(ADMIN, "bkt", "k", body(b"abc"), sse=SseRequest())
    res = await s3.objects.put(ADMIN, "bkt", "k", body(b"abc"), sse=SseRequest(), checksum=ck)
    assert res.checksums == {"CRC32": crc}
    before = set(store.blobs)
    with pytest.raises(S3Error) as e:
        bad = ChecksumRequest("CRC32", b64encode(b"\0\0\0\0").decode())
        await s3.objects.put(ADMIN, "bkt", "k", body(b"abc"), sse=SseRequest(), checksum=bad)
    assert code(e) == ("BadDigest", 400)
    md5 = b64encode(hashlib.md5(b"zzz").digest()).decode()
    with pytest.raises(S3Error) as e:
        ck = ChecksumRequest(content_md5=md5)
        await s3.objects.put(ADMIN, "bkt", "k", body(b"abc"), sse=SseRequest(), checksum=ck)
    assert code(e) == ("BadDigest", 400)
    with pytest.raises(S3Error) as e:
        ck = ChecksumRequest(content_md5="nope")
        await s3.objects.put(ADMIN, "bkt", "k", body(b"abc"), sse=SseRequest(), checksum=ck)
    assert code(e) == ("InvalidDigest", 400)
    assert set(store.blobs) == before


async def test_overwrite_frees_old_blob_after_readers(env):
    s3, _, store, _ = env
    await s3.put_object(ADMIN, "bkt", "k", body(b"old-data"), sse=SseRequest())
    reader = await s3.objects.get(ADMIN, "bkt", "k")
    await s3.put_object(ADMIN, "bkt", "k", body(b"new"), sse=SseRequest())
    assert len(store.blobs) == 2
    assert await read(reader) == b"old-data"
    assert len(store.blobs) == 1
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"new"


async def test_conditional_put(env):
    s3, _, store, _ = env
    create_only = Conditions(if_none_match="*")
    await s3.objects.put(
        ADMIN, "bkt", "k", body(b"1"), sse=SseRequest(), write_conditions=create_only
    )
    with pytest.raises(S3Error) as e:
        await s3.objects.put(
            ADMIN, "bkt", "k", body(b"2"), sse=SseRequest(), write_conditions=create_only
        )
    assert code(e) == ("PreconditionFailed", 412)
    assert len(store.blobs) == 1
    with pytest.raises(S3Error) as e:
        await s3.objects.put(
            ADMIN, "bkt", "k", body(b"2"), sse=SseRequest(), write_conditions=Conditions('"x"')
        )
    assert code(e) == ("PreconditionFailed", 412)
    etag = f'"{s3.head_object(ADMIN, "bkt", "k").etag}"'
    await s3.objects.put(
        ADMIN, "bkt", "k", body(b"2"), sse=SseRequest(), write_conditions=Conditions(etag)
    )
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"2"


async def test_range_and_conditions(env):
    s3, _, _, clock = env
    await s3.put_object(ADMIN, "bkt", "k", body(b"0123456789"), sse=SseRequest())
    etag = s3.head_object(ADMIN, "bkt", "k").etag
    assert await read(await s3.objects.get(ADMIN, "bkt", "k", range_header="bytes=2-4")) == b"234"
    assert await read(await s3.objects.get(ADMIN, "bkt", "k", range_header="bytes=-3")) == b"789"
    assert await read(await s3.objects.get(ADMIN, "bkt", "k", range_header="bytes=8-")) == b"89"
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", range_header="bytes=10-")
    assert code(e) == ("InvalidRange", 416)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", conditions=Conditions(if_match='"nope"'))
    assert code(e) == ("PreconditionFailed", 412)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", conditions=Conditions(if_none_match=f'"{etag}"'))
    assert code(e) == ("NotModified", 304)
    later = clock.now().replace(year=2030)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", conditions=Conditions(if_modified_since=later))
    assert e.value.code == "NotModified"
    earlier = clock.now().replace(year=2020)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", conditions=Conditions(if_unmodified_since=earlier))
    assert e.value.code == "PreconditionFailed"


async def test_small_objects_can_be_read_whole_at_once(env):
    s3, kms, store, _ = env
    await s3.put_object(ADMIN, "bkt", "k", body(b"0123456789"), sse=SseRequest())
    whole = await s3.objects.get(ADMIN, "bkt", "k", whole_max=10)
    assert whole.body == b"0123456789" and (whole.start, whole.end, whole.partial) == (0, 10, False)
    bigger = await s3.objects.get(ADMIN, "bkt", "k", whole_max=9)  # over the limit: a Body
    assert not isinstance(bigger.body, bytes) and await read(bigger) == b"0123456789"
    ranged = await s3.objects.get(ADMIN, "bkt", "k", range_header="bytes=2-4", whole_max=10)
    assert await read(ranged) == b"234"
    sse = SseRequest("aws:kms", kms.arn("k1"))
    await s3.put_object(ADMIN, "bkt", "kms", body(b"secret"), sse=sse)
    kms.states[kms.arn("k1")] = "Disabled"  # the key is still asked on the short path
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "kms", whole_max=64)
    assert code(e)[1] == 400
    blob_id = next(iter(store.blobs))
    data, key, header = store.blobs[blob_id]
    store.blobs[blob_id] = (data, b"another key", header)  # the file's key does not match
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", whole_max=10)
    assert code(e) == ("InternalError", 500)


async def test_staging_bucket_goes_to_sink(env):
    s3, _, _, _ = env

    class Sink:
        got: dict[str, bytes] = {}

        def validate(self, caller, key):
            if not key.startswith("inst/"):
                raise S3Error("AccessDenied")

        async def ingest(self, caller, key, chunks, content_type, size_hint):
            data = b"".join([c async for c in chunks])
            self.got[key] = data
            return hashlib.md5(data).hexdigest(), len(data)

    sink = Sink()
    s3.set_staging_sink(sink)
    await s3.put_object(ADMIN, "connect-staging", "inst/a.wav", body(b"rec"), sse=SseRequest())
    assert sink.got["inst/a.wav"] == b"rec"
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "connect-staging", "bad", body(b"rec"), sse=SseRequest())
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "connect-staging", "inst/a.wav")
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(S3Error) as e:
        s3.list_objects(ADMIN, "connect-staging")
    assert code(e) == ("AccessDenied", 403)
    up = await s3.multipart.create(ADMIN, "connect-staging", "inst/b.wav", sse=SseRequest())
    p = await s3.multipart.upload_part(
        ADMIN, "connect-staging", "inst/b.wav", up.upload_id, 1, body(b"mp")
    )
    await s3.multipart.complete(ADMIN, "connect-staging", "inst/b.wav", up.upload_id, [(1, p.etag)])
    assert sink.got["inst/b.wav"] == b"mp"


async def test_orphan_blobs_swept_at_startup(tmp_path):
    kms, store, clock = FakeKMS(), MemStore(), FixedClock()
    s3 = S3Service(tmp_path, "us-east-1", clock, kms, store=store, fsync=False)
    s3.buckets.create(ADMIN, "bkt")
    await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest())
    store.blobs["leftover"] = (b"", b"", None)
    s3.close()
    s3 = S3Service(tmp_path, "us-east-1", clock, kms, store=store, fsync=False)
    assert s3.orphans_removed == 1 and len(store.blobs) == 1
    assert await read(await s3.objects.get(ADMIN, "bkt", "k")) == b"x"


async def test_size_and_sse_c_algorithm_limits(env):
    s3, _, _, _ = env
    with pytest.raises(S3Error) as e:
        await s3.objects.put(
            ADMIN, "bkt", "k", body(b""), sse=SseRequest(), size_hint=5 * 1024**3 + 1
        )
    assert code(e) == ("EntityTooLarge", 400)
    key = bytes(32)
    ck = CustomerKey("AES128", key, b64encode(hashlib.md5(key).digest()).decode())
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest(customer=ck))
    assert code(e) == ("InvalidEncryptionAlgorithmError", 400)
    bad_md5 = CustomerKey("AES256", key, "AAAAAAAAAAAAAAAAAAAAAA==")
    with pytest.raises(S3Error) as e:
        await s3.put_object(ADMIN, "bkt", "k", body(b"x"), sse=SseRequest(customer=bad_md5))
    assert code(e) == ("InvalidArgument", 400)
