"""S3Service: multipart uploads, copies and SSE-C, over the in-memory store and fake KMS
(tests/unit/s3_env.py)."""

from __future__ import annotations

import hashlib
from base64 import b64encode

import pytest

from s3sim.s3.errors import S3Error
from s3sim.s3.models import Conditions, CustomerKey, SseRequest
from tests.unit.s3_env import (
    ADMIN,
    MiB,
    body,
    code,
    make_env,
    read,
)


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path)


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
