"""The two-phase pipeline: ingest, delivery, failures and retries, idempotency, the worker
(the per-instance data keys: test_connect_data_keys.py)."""

import hashlib

import pytest

from s3sim.s3.errors import S3Error
from s3sim.s3.models import SseRequest
from tests.unit.connect_env import (
    DATA,
    OTHER_ROOT,
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


async def test_ingest_then_delivery_byte_identical(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    res = await env.ingest(inst, "c-1", DATA)
    (item,) = items(env, inst)
    assert item.status == "STAGED" and item.size == len(DATA) and res.etag == item.etag
    assert await deliver_all(env) == 1
    (item,) = items(env, inst)
    target = expected_key(item)
    assert item.status == "DELIVERED" and item.location == f"rec/{target}" and item.attempts == 1
    assert await env.read("rec", target) == DATA
    head = env.s3.head_object(ROOT, "rec", target)
    assert head.sse.algorithm == "aws:kms" and head.sse.key_arn == key
    assert head.sse.context["aws:s3:arn"] == f"arn:aws:s3:::rec/{target}"
    assert len(head.etag) == 32 and head.etag != hashlib.md5(DATA).hexdigest()  # as on AWS
    assert item.blob_id is None  # the staged copy is destroyed
    view = env.connect.describe_contact(ROOT, inst.instance_id, "c-1")
    assert view.contact.channel == "VOICE"
    assert [r.location for r in view.recordings] == [f"rec/{target}"]


async def test_staging_is_internal(env):
    inst = env.instance()
    await env.ingest(inst, "c", DATA)
    key = f"{inst.instance_id}/CALL_RECORDINGS/c.wav"
    with pytest.raises(S3Error) as exc:
        await env.s3.objects.get(ROOT, "connect-staging", key)
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    with pytest.raises(S3Error):
        env.s3.list_objects(ROOT, "connect-staging")


@pytest.mark.parametrize(
    "key,code",
    [
        ("{iid}/CALL_RECORDINGS/c.mp3", "InvalidArgument"),
        ("{iid}/AGENT_EVENTS/c.wav", "InvalidArgument"),
        ("{iid}/c.wav", "InvalidArgument"),
        ("00000000-0000-4000-8000-000000000000/CALL_RECORDINGS/c.wav", "AccessDenied"),
    ],
)
async def test_ingest_rejects(env, key, code):
    from tests.unit.connect_env import body

    inst = env.instance()
    key = key.format(iid=inst.instance_id)
    with pytest.raises(S3Error) as exc:
        await env.s3.put_object(ROOT, "connect-staging", key, body(DATA), sse=SseRequest())
    assert exc.value.code == code and "connect-staging" in exc.value.message
    assert items(env, inst) == []


async def test_ingest_foreign_account_denied(env):
    from tests.unit.connect_env import body

    inst = env.instance()
    key = f"{inst.instance_id}/CALL_RECORDINGS/c.wav"
    with pytest.raises(S3Error) as exc:
        await env.s3.put_object(OTHER_ROOT, "connect-staging", key, body(DATA), sse=SseRequest())
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    assert items(env, inst) == []


async def test_waiting_for_config_then_delivered(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    await env.ingest(inst, "c", b"hello")
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "WAITING_FOR_CONFIG" and item.attempts == 0
    env.associate(inst, "rec", key)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED"
    assert await env.read("rec", expected_key(item)) == b"hello"


async def test_chat_transcript_goes_to_its_config(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key, "CHAT_TRANSCRIPTS")
    await env.ingest(inst, "chat1", b'{"t":1}', "CHAT_TRANSCRIPTS", "json")
    await env.ingest(inst, "call1", b"wav", "CALL_RECORDINGS", "wav")
    await deliver_all(env)
    by = {i.contact_id: i for i in items(env, inst)}
    assert by["chat1"].status == "DELIVERED" and by["call1"].status == "WAITING_FOR_CONFIG"
    view = env.connect.describe_contact(ROOT, inst.instance_id, "chat1")
    assert view.contact.channel == "CHAT"
    head = env.s3.head_object(ROOT, "rec", expected_key(by["chat1"]))
    assert head.content_type == "application/json"


async def test_disabled_key_fails_with_backoff_then_recovers(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    env.kms.disable_key(ROOT, key)
    await env.ingest(inst, "c", DATA)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "FAILED" and item.attempts == 1
    assert item.last_error_code == "DisabledException"
    assert (item.next_attempt_at - env.clock.now()).total_seconds() == 1.0
    assert await deliver_all(env) == 0  # not due yet
    env.clock.advance(1)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.attempts == 2
    assert (item.next_attempt_at - env.clock.now()).total_seconds() == 2.0
    env.kms.enable_key(ROOT, key)
    env.clock.advance(2)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED" and item.last_error_code is None
    assert await env.read("rec", expected_key(item)) == DATA


async def test_revoked_grant_access_denied_then_update_restores(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    assoc = env.associate(inst, "rec", key)
    (g,) = env.kms.list_grants(ROOT, key).items
    env.kms.revoke_grant(ROOT, key, g.grant_id)
    await env.ingest(inst, "c", DATA)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "FAILED" and item.last_error_code == "AccessDeniedException"
    assert "kms:GenerateDataKey" in item.last_error_message
    from s3sim.connect.storage_configs import S3ConfigInput

    env.connect.update_storage_config(
        ROOT,
        inst.instance_id,
        assoc,
        "CALL_RECORDINGS",
        S3ConfigInput("S3", "rec", "connect/rec", "KMS", key),
    )
    env.clock.advance(1)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED"


async def test_missing_bucket_is_failed_not_dropped(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    env.s3.buckets.delete(ROOT, "rec")
    await env.ingest(inst, "c", DATA)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert (item.status, item.last_error_code) == ("FAILED", "NoSuchBucket")
    env.bucket("rec")
    env.clock.advance(1)
    await deliver_all(env)
    assert items(env, inst)[0].status == "DELIVERED"


async def test_redelivery_is_idempotent(env):
    """A delivery whose PUT committed but whose status did not (a crash) is not repeated."""
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    await env.ingest(inst, "c", DATA)
    (item,) = items(env, inst)
    # a first delivery that "crashed" right after its PUT: the row still says DELIVERING
    env.connect.store.update_item(item.item_id, status="DELIVERING", attempts=1)
    target = expected_key(item)
    await env.connect.worker._put(
        env.connect.store.get_instance(inst.instance_id),
        item,
        env.connect.store.config_for(inst.instance_id, "CALL_RECORDINGS"),
        target,
    )
    first = env.s3.head_object(ROOT, "rec", target)
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED" and item.attempts == 2
    again = env.s3.head_object(ROOT, "rec", target)
    assert again.object_id == first.object_id  # no second write
    page = env.s3.list_objects(ROOT, "rec")
    assert [e.key for e in page.entries] == [target]


async def test_first_delivery_skips_the_already_there_head(env):
    """Only a retry or a re-stage can find its own earlier PUT: a first attempt does not HEAD."""
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    heads: list[str] = []
    real = env.s3

    class Counting:
        put_object = staticmethod(real.put_object)

        @staticmethod
        def head_object(*a, **kw):
            heads.append(a[2])
            return real.head_object(*a, **kw)

    env.connect.worker._s3 = Counting()
    await env.ingest(inst, "c", DATA)
    await deliver_all(env)
    assert heads == []
    await env.ingest(inst, "c", DATA + b"2")  # a re-stage of the same contact
    await deliver_all(env)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED" and heads == [expected_key(item)]


async def test_reingest_same_key_keeps_target(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    await env.ingest(inst, "c", b"first")
    (a,) = items(env, inst)
    env.clock.advance(120)
    await env.ingest(inst, "c", b"second")
    (b,) = items(env, inst)
    assert b.staged_at == a.staged_at and b.generation == 2
    await deliver_all(env)
    page = env.s3.list_objects(ROOT, "rec")
    assert len(page.entries) == 1
    assert await env.read("rec", expected_key(b)) == b"second"


async def test_restart_resumes_pending_items(tmp_path):
    env = make_env(tmp_path)
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    await env.ingest(inst, "c", DATA)
    (item,) = items(env, inst)
    env.connect.store.update_item(item.item_id, status="DELIVERING", attempts=1)
    env.connect.close()
    env2 = make_env(tmp_path)  # a new process: plaintext data keys are gone from memory
    await env2.connect.worker.run_once()
    (item,) = env2.connect.pipeline_items(inst.instance_id)
    assert item.status == "DELIVERED"
    assert await env2.read("rec", expected_key(item)) == DATA
    env2.connect.close()


async def test_background_worker_delivers(env):
    import asyncio

    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    await env.connect.start()
    try:
        for n in range(10):
            await env.ingest(inst, f"c{n}", DATA[: 100 + n])
        for _ in range(100):
            if all(i.status == "DELIVERED" for i in items(env, inst)):
                break
            await asyncio.sleep(0.05)
    finally:
        await env.connect.stop()
    assert [i.status for i in items(env, inst)] == ["DELIVERED"] * 10
    assert len(env.s3.list_objects(ROOT, "rec").entries) == 10


async def test_a_backlog_bigger_than_a_pass_does_not_wait_for_the_poll(tmp_path):
    """A pass reads 4 x max_parallel due items; as the last of them finish, the loop
    reads the next ones at once instead of at the next poll (30 s here)."""
    import asyncio

    env = make_env(tmp_path, max_parallel=1, poll_interval=30.0)
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    for n in range(12):
        await env.ingest(inst, f"c{n}", DATA[: 100 + n])
    await env.connect.start()
    try:
        for _ in range(200):
            if all(i.status == "DELIVERED" for i in items(env, inst)):
                break
            await asyncio.sleep(0.05)
        assert [i.status for i in items(env, inst)] == ["DELIVERED"] * 12
    finally:
        await env.connect.stop()
        env.connect.close()


async def test_status_lines(env):
    inst = env.instance("shown")
    await env.ingest(inst, "c", b"x")
    await deliver_all(env)
    lines = env.connect.status_lines()
    assert "shown" in lines[0] and "WAITING_FOR_CONFIG 1" in lines[0]
    assert any("CALL_RECORDINGS/c.wav" in line for line in lines)
    from s3sim.connect.report import status_lines

    assert status_lines(env.tmp) == lines


async def test_worker_picks_up_waiting_items_whose_config_appeared(env):
    """An ingest that raced an association still gets delivered (the worker's safety net)."""
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    await env.ingest(inst, "c", b"raced")
    env.associate(inst, "rec", key)
    env.connect.store.update_item(items(env, inst)[0].item_id, status="WAITING_FOR_CONFIG")
    await deliver_all(env)
    assert items(env, inst)[0].status == "DELIVERED"


async def test_delivery_delay(tmp_path):
    env = make_env(tmp_path, delivery_delay=30)
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    await env.ingest(inst, "c", b"later")
    assert await deliver_all(env) == 0
    env.clock.advance(30)
    assert await deliver_all(env) == 1
    assert items(env, inst)[0].status == "DELIVERED"
    env.connect.close()


async def test_bounded_parallelism(tmp_path):
    import asyncio

    env = make_env(tmp_path, max_parallel=2)
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    for n in range(6):
        await env.ingest(inst, f"c{n}", b"x" * 10)
    active = peak = 0
    real_put = env.s3.put_object

    async def slow_put(*a, **kw):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        try:
            return await real_put(*a, **kw)
        finally:
            active -= 1

    env.connect.worker._s3 = type(
        "S3", (), {"put_object": staticmethod(slow_put), "head_object": env.s3.head_object}
    )()
    await deliver_all(env)
    assert peak == 2
    assert {i.status for i in items(env, inst)} == {"DELIVERED"}
    env.connect.close()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ([b"abc", b"def"], [b"a", b"bcde", b"f"], True),
        ([b"abcdef"], [b"abc", b"", b"def"], True),
        ([b"abcdef"], [b"abcdeg"], False),
        ([b"abc"], [b"abc", b"d"], False),
        ([b"abc", b"d"], [b"abc"], False),
        ([], [], True),
    ],
)
async def test_same_bytes_whatever_the_chunking(a, b, same):
    from s3sim.connect.delivery import same_bytes

    async def stream(parts):
        for p in parts:
            yield p

    assert await same_bytes(stream(a), stream(b)) is same
