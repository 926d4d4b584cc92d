import hashlib

import pytest

from kmscore import Caller
from kmscore import errors as kms_errors
from s3sim.connect.models import CONTEXT_KEY
from s3sim.connect.paths import target_key
from s3sim.connect.staging import instance_context
from s3sim.s3.errors import S3Error
from tests.unit.connect_env import ACCOUNT, OTHER_ROOT, ROOT, make_env

DATA = bytes(range(256)) * 41 + b"tail"


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.connect.close()


def items(env, inst, contact=None):
    return env.connect.pipeline_items(inst.instance_id, contact)


async def deliver_all(env):
    return await env.connect.worker.run_once()


def expected_key(item, prefix="connect/rec"):
    return target_key(prefix, item.contact_id, item.ext, item.staged_at)


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
        await env.s3.put_object(ROOT, "connect-staging", key, body(DATA), sse=_sse())
    assert exc.value.code == code and "connect-staging" in exc.value.message
    assert items(env, inst) == []


async def test_ingest_foreign_account_denied(env):
    from tests.unit.connect_env import body

    inst = env.instance()
    key = f"{inst.instance_id}/CALL_RECORDINGS/c.wav"
    with pytest.raises(S3Error) as exc:
        await env.s3.put_object(OTHER_ROOT, "connect-staging", key, body(DATA), sse=_sse())
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    assert items(env, inst) == []


def _sse():
    from s3sim.s3.models import SseRequest

    return SseRequest()


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
    await env.s3.put_object(ROOT, "connect-staging", k, slow_body(), sse=_sse())
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
    assert exc.value.code == "ServiceUnavailable"
    assert [i.contact_id for i in items(env, inst)] == ["c-1"]


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
