"""S3Service logic with an in-memory blob store and a fake KMS (pure parts only).

The real storage engine and kmscore are exercised in tests/e2e/test_s3_*.py.
"""

from __future__ import annotations

import hashlib
import json
from base64 import b64encode
from dataclasses import dataclass

import pytest

from kmscore import errors as kms_errors
from kmscore.caller import Caller
from kmscore.clock import FixedClock
from s3sim.s3.blobs import BlobHeader, Written
from s3sim.s3.errors import S3Error
from s3sim.s3.models import ChecksumRequest, Conditions, CustomerKey, EncryptionRule, SseRequest
from s3sim.s3.service import S3Service
from s3sim.storage.checksums import checksum

ADMIN = Caller("arn:aws:iam::111122223333:root", "111122223333")
ALICE = Caller("arn:aws:iam::111122223333:user/alice", "111122223333", ("s3:*",))
READER = Caller("arn:aws:iam::111122223333:user/r", "111122223333", ("s3:GetObject",))
OTHER = Caller("arn:aws:iam::444455556666:root", "444455556666")
MiB = 1024 * 1024


@dataclass(frozen=True)
class DataKey:
    key_arn: str
    plaintext: bytes
    ciphertext_blob: bytes
    key_material_id: str = "m1"


class FakeKMS:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.states: dict[str, str] = {}
        self.root = b"fake root key".ljust(32, b"\0")  # the same across restarts

    def derived_secret(self, name: str) -> bytes:
        return hashlib.sha256(self.root + name.encode()).digest()

    def arn(self, key_id: str) -> str:
        if key_id.startswith("arn:"):
            return key_id
        return f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"

    def _check(self, caller: Caller, arn: str) -> None:
        state = self.states.get(arn)
        if state is None:
            raise kms_errors.NotFoundException(f"Key '{arn}' does not exist")
        if state == "Disabled":
            raise kms_errors.DisabledException(f"{arn} is disabled.")
        if caller.account != arn.split(":")[4]:
            raise kms_errors.AccessDeniedException("denied")

    def aws_managed_key(self, account: str, alias: str = "aws/s3") -> str:
        arn = f"arn:aws:kms:us-east-1:{account}:key/managed"
        self.states.setdefault(arn, "Enabled")
        return arn

    def generate_data_key(self, caller, key_id, context, *a, **k):
        arn = self.arn(key_id)
        self._check(caller, arn)
        self.calls.append(("GenerateDataKey", arn, dict(context)))
        pt = hashlib.sha256(json.dumps([arn, len(self.calls)]).encode()).digest()
        blob = json.dumps({"arn": arn, "ctx": context, "pt": pt.hex()}).encode()
        return DataKey(arn, pt, blob)

    def decrypt(self, caller, blob, context, key_id=None, grant_tokens=()):
        d = json.loads(blob)
        self._check(caller, d["arn"])
        self.calls.append(("Decrypt", d["arn"], dict(context)))
        if d["ctx"] != dict(context):
            raise kms_errors.InvalidCiphertextException("")
        return DataKey(d["arn"], bytes.fromhex(d["pt"]), b"")

    def key_state(self, arn: str) -> str:
        return self.states.get(arn, "NotFound")


class MemReader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def iter_range(self, start: int, end: int):
        for i in range(start, end, 65536):
            yield self.data[i : min(i + 65536, end)]


class MemStore:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, bytes, BlobHeader]] = {}
        self.n = 0

    async def write(self, chunks, data_key, header, checksum_algorithms, md5=True):
        data = b"".join([c async for c in chunks])
        self.n += 1
        blob_id = f"blob{self.n}"
        self.blobs[blob_id] = (data, data_key, header)
        checks = {a: checksum(a, data) for a in checksum_algorithms}
        return Written(blob_id, len(data), hashlib.md5(data).hexdigest() if md5 else None, checks)

    async def open(self, blob_id, data_key, header, size=None):
        data, key, hdr = self.blobs[blob_id]
        if key != data_key or hdr != header:
            raise S3Error("InternalError", "corrupt")
        return MemReader(data)

    def delete(self, blob_id):
        del self.blobs[blob_id]

    def list_ids(self):
        return list(self.blobs)


async def body(data: bytes):
    for i in range(0, len(data), 1000):
        yield data[i : i + 1000]


async def read(res) -> bytes:
    return b"".join([c async for c in res.body])


@pytest.fixture
def env(tmp_path):
    kms, store, clock = FakeKMS(), MemStore(), FixedClock()
    kms.states[kms.arn("k1")] = "Enabled"
    s3 = S3Service(tmp_path, "us-east-1", clock, kms, store=store, fsync=False)
    s3.buckets.create(ADMIN, "bkt")
    return s3, kms, store, clock


def code(exc_info) -> tuple[str, int]:
    return exc_info.value.code, exc_info.value.status


async def test_put_get_roundtrip_sse_s3_by_default(env):
    s3, kms, store, _ = env
    res = await s3.put_object(ADMIN, "bkt", "k", body(b"hello world"), sse=SseRequest())
    assert res.etag == hashlib.md5(b"hello world").hexdigest()
    assert res.sse.algorithm == "AES256" and kms.calls == []
    got = await s3.objects.get(ADMIN, "bkt", "k")
    assert await read(got) == b"hello world"
    (data, data_key, hdr) = next(iter(store.blobs.values()))
    assert data_key not in (s3.core.index.get_object("bkt", "k").meta.encode())
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


async def test_multipart(env):
    s3, kms, store, _ = env
    up = await s3.multipart.create(ADMIN, "bkt", "big", sse=SseRequest("aws:kms", "k1"))
    p1, p2 = b"a" * (5 * MiB), b"tail"
    e1 = await s3.multipart.upload_part(ADMIN, "bkt", "big", up.upload_id, 1, body(p1))
    e2 = await s3.multipart.upload_part(ADMIN, "bkt", "big", up.upload_id, 2, body(p2))
    with pytest.raises(S3Error) as e:
        await s3.multipart.complete(ADMIN, "bkt", "big", up.upload_id, [(2, e2.etag), (1, e1.etag)])
    assert code(e) == ("InvalidPartOrder", 400)
    with pytest.raises(S3Error) as e:
        await s3.multipart.complete(ADMIN, "bkt", "big", up.upload_id, [(1, "bad"), (2, e2.etag)])
    assert code(e) == ("InvalidPart", 400)
    with pytest.raises(S3Error) as e:
        await s3.multipart.complete(ADMIN, "bkt", "big", up.upload_id, [(2, e2.etag), (3, "x")])
    assert code(e) == ("InvalidPart", 400)
    up2 = await s3.multipart.create(
        ADMIN, "bkt", "ck", sse=SseRequest(), checksum_algorithm="CRC32"
    )
    c1 = await s3.multipart.upload_part(ADMIN, "bkt", "ck", up2.upload_id, 1, body(b"data"))
    with pytest.raises(S3Error) as e:
        await s3.multipart.complete(
            ADMIN,
            "bkt",
            "ck",
            up2.upload_id,
            [(1, c1.etag)],
            part_checksums={1: {"CRC32": "AAAAAA=="}},
        )
    assert code(e) == ("InvalidPart", 400)
    await s3.multipart.complete(
        ADMIN, "bkt", "ck", up2.upload_id, [(1, c1.etag)], part_checksums={1: dict(c1.checksums)}
    )
    res, _ = await s3.multipart.complete(
        ADMIN, "bkt", "big", up.upload_id, [(1, e1.etag), (2, e2.etag)]
    )
    md5s = hashlib.md5(p1).digest() + hashlib.md5(p2).digest()
    assert res.etag == hashlib.md5(md5s).hexdigest() + "-2"
    got = await s3.objects.get(
        ADMIN, "bkt", "big", range_header=f"bytes={5 * MiB - 2}-{5 * MiB + 1}"
    )
    assert await read(got) == b"aata"
    with pytest.raises(S3Error) as e:
        await s3.multipart.upload_part(ADMIN, "bkt", "big", up.upload_id, 3, body(b"x"))
    assert code(e) == ("NoSuchUpload", 404)


async def test_multipart_entity_too_small_and_abort(env):
    s3, _, store, _ = env
    up = await s3.multipart.create(ADMIN, "bkt", "k", sse=SseRequest())
    e1 = await s3.multipart.upload_part(ADMIN, "bkt", "k", up.upload_id, 1, body(b"small"))
    e2 = await s3.multipart.upload_part(ADMIN, "bkt", "k", up.upload_id, 2, body(b"small"))
    with pytest.raises(S3Error) as e:
        await s3.multipart.complete(ADMIN, "bkt", "k", up.upload_id, [(1, e1.etag), (2, e2.etag)])
    assert code(e) == ("EntityTooSmall", 400)
    with pytest.raises(S3Error) as e:
        await s3.multipart.upload_part(ADMIN, "bkt", "k", up.upload_id, 10001, body(b"x"))
    assert code(e) == ("InvalidArgument", 400)
    s3.multipart.abort(ADMIN, "bkt", "k", up.upload_id)
    assert store.blobs == {}
    with pytest.raises(S3Error) as e:
        s3.multipart.abort(ADMIN, "bkt", "k", up.upload_id)
    assert code(e) == ("NoSuchUpload", 404)


async def test_copy_reencrypts_and_self_copy_rule(env):
    s3, kms, _, _ = env
    await s3.put_object(ADMIN, "bkt", "src", body(b"payload"), sse=SseRequest("aws:kms", "k1"))
    new, _ = await s3.objects.copy(ADMIN, "bkt", "src", "bkt", "dst", sse=SseRequest())
    assert new.sse.algorithm == "AES256"
    assert await read(await s3.objects.get(ADMIN, "bkt", "dst")) == b"payload"
    with pytest.raises(S3Error) as e:
        await s3.objects.copy(ADMIN, "bkt", "src", "bkt", "src", sse=SseRequest())
    assert code(e) == ("InvalidRequest", 400)
    with pytest.raises(S3Error) as e:
        await s3.objects.copy(ADMIN, "bkt", "missing", "bkt", "x", sse=SseRequest())
    assert code(e) == ("NoSuchKey", 404)
    etag = f'"{s3.head_object(ADMIN, "bkt", "src").etag}"'
    for cond in (Conditions(if_none_match=etag), Conditions(if_match='"nope"')):
        with pytest.raises(S3Error) as e:
            await s3.objects.copy(
                ADMIN, "bkt", "src", "bkt", "x", sse=SseRequest(), source_conditions=cond
            )
        assert code(e) == ("PreconditionFailed", 412)


async def test_sse_c(env):
    s3, _, _, _ = env
    key = bytes(range(32))
    ck = CustomerKey("AES256", key, b64encode(hashlib.md5(key).digest()).decode())
    await s3.put_object(ADMIN, "bkt", "k", body(b"secret"), sse=SseRequest(customer=ck))
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k")
    assert code(e) == ("InvalidRequest", 400)
    wrong = bytes(32)
    bad = CustomerKey("AES256", wrong, b64encode(hashlib.md5(wrong).digest()).decode())
    with pytest.raises(S3Error) as e:
        await s3.objects.get(ADMIN, "bkt", "k", customer=bad)
    assert code(e) == ("AccessDenied", 403)
    assert await read(await s3.objects.get(ADMIN, "bkt", "k", customer=ck)) == b"secret"
    with pytest.raises(S3Error) as e:
        s3.check_ssec_transport(False, ck)
    assert code(e) == ("InvalidRequest", 400)


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
