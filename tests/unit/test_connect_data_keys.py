"""Phase 1's per-instance data keys: isolation, rotation, retention, destruction."""

import pytest

from kmscore import Caller
from kmscore import errors as kms_errors
from s3sim.connect.models import CONTEXT_KEY
from s3sim.connect.staging import instance_context
from s3sim.s3.errors import S3Error
from s3sim.s3.models import SseRequest
from tests.unit.connect_env import (
    ACCOUNT,
    DATA,
    ROOT,
    deliver_all,
    expected_key,
    items,
    make_env,
)


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.connect.close()


async def test_data_keys_are_per_instance_and_not_interchangeable(env):
    a, b = env.instance("a"), env.instance("b")
    await env.ingest(a, "c", DATA)
    await env.ingest(b, "c", DATA)
    (ka,) = env.connect.store.data_keys(a.instance_id)
    (kb,) = env.connect.store.data_keys(b.instance_id)
    assert ka.ciphertext_blob != kb.ciphertext_blob
    connect = Caller(arn="", account=ACCOUNT, service_principal="connect.amazonaws.com")
    # A's wrapped data key does not open under B's context
    with pytest.raises(kms_errors.InvalidCiphertextException):
        env.kms.decrypt(connect, ka.ciphertext_blob, instance_context(b))
    plain_a = env.kms.decrypt(connect, ka.ciphertext_blob, instance_context(a)).plaintext
    plain_b = env.kms.decrypt(connect, kb.ciphertext_blob, instance_context(b)).plaintext
    assert plain_a != plain_b
    # A's staged bytes do not open with B's data key
    from s3sim.connect.staging import blob_header

    (item_a,) = items(env, a)
    blobs = env.connect.staging._blobs
    with pytest.raises(Exception):  # noqa: B017 - any integrity failure will do
        reader = await blobs.open(item_a.blob_id, plain_b, blob_header(a, item_a.item_id, ka))
        async for _ in reader.iter_range(0, item_a.size):
            pass
    reader = await blobs.open(item_a.blob_id, plain_a, blob_header(a, item_a.item_id, ka))
    got = b"".join([c async for c in reader.iter_range(0, item_a.size)])
    assert got == DATA
    # a customer cannot use Connect's AWS-owned key
    with pytest.raises(kms_errors.KMSError):
        env.kms.decrypt(ROOT, ka.ciphertext_blob, instance_context(a))
    assert instance_context(a) == {CONTEXT_KEY: a.arn}


async def test_data_key_rotation_by_count_and_time(tmp_path):
    env = make_env(tmp_path, rotate_items=2, rotate_seconds=60)
    inst = env.instance()
    for n in range(5):
        await env.ingest(inst, f"c{n}", b"x")
    keys = {i.dk_id for i in items(env, inst)}
    assert len(keys) == 3
    env.clock.advance(61)
    await env.ingest(inst, "late", b"x")
    assert len({i.dk_id for i in items(env, inst)}) == 4
    env.connect.close()


async def test_audit_shows_connect_using_its_owned_key(env):
    inst = env.instance()
    await env.ingest(inst, "c", b"x")
    events, _ = env.kms.lookup_events(ACCOUNT, [("EventName", "GenerateDataKey")])
    mine = [
        e for e in events if e.get("userIdentity", {}).get("invokedBy") == "connect.amazonaws.com"
    ]
    assert mine and mine[0]["requestParameters"]["encryptionContext"] == {CONTEXT_KEY: inst.arn}


async def test_retention_expiry_destroys_data(tmp_path):
    env = make_env(tmp_path, retention_seconds=100, rotate_seconds=50)
    inst = env.instance()
    await env.ingest(inst, "c", DATA)
    (item,) = items(env, inst)
    assert env.connect.store.data_keys(inst.instance_id)
    env.clock.advance(101)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "EXPIRED" and item.blob_id is None
    assert env.connect.store.data_keys(inst.instance_id) == []
    assert list(env.connect.staging._blobs.list_ids()) == []
    env.connect.close()


async def test_rotation_bound_holds_under_concurrent_ingests(tmp_path):
    import asyncio
    from collections import Counter

    env = make_env(tmp_path, rotate_items=3)
    inst = env.instance()
    await asyncio.gather(*(env.ingest(inst, f"c{n}", b"y" * 3000) for n in range(10)))
    per_key = Counter(i.dk_id for i in items(env, inst))
    assert sum(per_key.values()) == 10 and max(per_key.values()) <= 3
    assert {d.dk_id: d.items for d in env.connect.store.data_keys(inst.instance_id)} == dict(
        per_key
    )
    env.connect.close()


async def test_data_key_kept_while_an_ingest_uses_it(tmp_path):
    """Rotation and cleanup during a long upload do not destroy the key it is written under."""
    env = make_env(tmp_path, rotate_seconds=60)
    inst, key = env.instance(), env.key()
    env.bucket("rec")

    async def slow_body():
        yield b"first half "
        env.clock.advance(120)
        env.connect.staging.maintain(env.clock.now(), 86400)
        yield b"second half"

    k = f"{inst.instance_id}/CALL_RECORDINGS/long.wav"
    await env.s3.put_object(ROOT, "connect-staging", k, slow_body(), sse=SseRequest())
    (item,) = items(env, inst)
    assert env.connect.store.get_data_key(item.dk_id) is not None
    env.associate(inst, "rec", key)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED"
    assert await env.read("rec", expected_key(item)) == b"first half second half"
    await deliver_all(env)  # retired and no longer needed: now it is destroyed
    assert env.connect.store.data_keys(inst.instance_id) == []
    env.connect.close()


async def test_delete_instance_destroys_staged_data(env):
    inst = env.instance()
    await env.ingest(inst, "c", DATA)
    assert list(env.connect.staging._blobs.list_ids())
    env.connect.delete_instance(ROOT, inst.instance_id)
    assert list(env.connect.staging._blobs.list_ids()) == []
    assert env.connect.store.data_keys(inst.instance_id) == []
    assert env.connect.staging._plain == {}


async def test_ingest_whose_data_key_another_process_destroyed_is_refused(env):
    """Another server process's maintenance may destroy the data key an ingest chose
    while its bytes are written: the ingest answers 503 (retryable) and stages nothing."""
    inst = env.instance()
    await env.ingest(inst, "c-1", DATA)
    staging, store = env.connect.staging, env.connect.store
    write = staging._blobs.write

    async def write_then_lose_the_key(*args, **kwargs):
        out = await write(*args, **kwargs)
        dk = store.current_data_key(inst.instance_id)
        with store.tx() as db:
            db.execute("DELETE FROM data_keys WHERE dk_id=?", (dk.dk_id,))
        return out

    staging._blobs.write = write_then_lose_the_key
    with pytest.raises(S3Error) as exc:
        await env.ingest(inst, "c-2", DATA)
    assert (exc.value.code, exc.value.status) == ("ServiceUnavailable", 503)
    assert [i.contact_id for i in items(env, inst)] == ["c-1"]
