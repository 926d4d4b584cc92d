"""Delivery claims across processes: every server process runs the delivery loop, so a
claim is a compare-and-set (one winner), leased (a DELIVERING item is re-picked only
once its lease ran out) and fenced (a taken-over delivery writes nothing).

A second "process" is a second ConnectService over the same data dir: its own SQLite
connection, delivery loop and data-key memory."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from s3sim.connect.delivery import LEASE_SECONDS
from s3sim.connect.service import KEY_GRACE, ConnectService
from s3sim.s3.errors import S3Error
from tests.unit.connect_env import DATA, REGION, ROOT, Env, expected_key, items, make_env


class Gate:
    """S3 as one process's deliveries see it: counts PUTs, can hold them or fail them."""

    def __init__(self, s3: Any, puts: list[str]) -> None:
        self._s3 = s3
        self.puts = puts
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def set_staging_sink(self, sink: Any) -> None:
        """Ingests keep going to the first process's sink."""

    async def put_object(self, *args: Any, **kw: Any) -> Any:
        self.puts.append(args[2])
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return await self._s3.put_object(*args, **kw)


@pytest.fixture
def env(tmp_path: Path):
    e = make_env(tmp_path)
    yield e
    e.connect.close()


@pytest.fixture
def puts() -> list[str]:
    return []


@pytest.fixture
def first(env: Env, puts: list[str]) -> Gate:
    gate = Gate(env.s3, puts)
    env.connect.worker._s3 = gate
    return gate


def other_process(
    env: Env, puts: list[str], sweep: bool = False, shared: bool = False
) -> tuple[ConnectService, Gate]:
    gate = Gate(env.s3, puts)
    svc = ConnectService(
        env.tmp, REGION, env.clock, env.kms, gate, fsync=False, sweep=sweep, shared=shared
    )
    svc.worker._s3 = gate
    return svc, gate


async def staged(env: Env, n: int = 1) -> Any:
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    for i in range(n):
        await env.ingest(inst, f"c-{i}", DATA)
    return inst


async def test_racing_claims_on_one_item_make_one_put(env, first, puts):
    inst = await staged(env)
    other, _ = other_process(env, puts)
    (item,) = items(env, inst)  # both processes read the same row
    out = await asyncio.gather(env.connect.worker.deliver(item), other.worker.deliver(item))
    assert sorted(out) == ["DELIVERED", "STAGED"]  # the loser did nothing
    (item,) = items(env, inst)
    assert puts == [expected_key(item)]
    assert (item.status, item.attempts) == ("DELIVERED", 1)
    assert env.connect.worker.delivered_count + other.worker.delivered_count == 1
    other.close()


async def test_two_delivery_loops_deliver_each_item_once(env, first, puts):
    inst = await staged(env, 12)
    other, _ = other_process(env, puts)
    await asyncio.gather(env.connect.worker.run_once(), other.worker.run_once())
    its = items(env, inst)
    assert {i.status for i in its} == {"DELIVERED"}
    assert sorted(puts) == sorted(expected_key(i) for i in its)  # no key PUT twice
    assert {i.attempts for i in its} == {1}
    assert env.connect.worker.delivered_count + other.worker.delivered_count == 12
    other.close()


async def test_a_leased_claim_is_not_taken(env, first, puts):
    """While one process delivers an item, another neither picks it nor can claim it."""
    inst = await staged(env)
    first.hold = asyncio.Event()
    assert await env.connect.worker.run_once(wait=False) == 1
    await first.entered.wait()
    (held,) = items(env, inst)
    assert held.status == "DELIVERING"
    assert held.next_attempt_at == env.clock.now() + timedelta(seconds=LEASE_SECONDS)
    other, _ = other_process(env, puts)
    assert await other.worker.run_once() == 0
    assert await other.worker.deliver(held) == "DELIVERING"  # a claim from that row fails
    await _finish(env, first)
    (item,) = items(env, inst)
    assert item.status == "DELIVERED" and len(puts) == 1
    other.close()


async def _in_flight_past_its_lease(env: Env, first: Gate) -> None:
    first.hold = asyncio.Event()
    assert await env.connect.worker.run_once(wait=False) == 1
    await first.entered.wait()
    env.clock.advance(LEASE_SECONDS + 1)  # the lease runs out while the PUT is held
    assert await env.connect.worker.run_once(wait=False) == 0  # not its own item twice


async def _finish(env: Env, first: Gate) -> None:
    assert first.hold is not None
    first.hold.set()
    await asyncio.gather(*list(env.connect.worker._in_flight.values()))


async def test_an_expired_lease_is_taken_over_and_the_old_claim_writes_nothing(env, first, puts):
    inst = await staged(env)
    await _in_flight_past_its_lease(env, first)
    other, _ = other_process(env, puts)
    assert await other.worker.run_once() == 1
    (item,) = items(env, inst)
    assert (item.status, item.attempts) == ("DELIVERED", 2)
    await _finish(env, first)  # the first PUT completes late: same key, same bytes
    (late,) = items(env, inst)
    assert late == item  # its DELIVERED was fenced off
    assert env.connect.worker.delivered_count == 0 and other.worker.delivered_count == 1
    assert await env.read("rec", expected_key(item)) == DATA
    other.close()


async def test_the_fencing_token_keeps_the_old_claim_out_of_the_new_one(env, first, puts):
    """The first claim finishes while the second one is still delivering: it must neither
    mark the item DELIVERED nor destroy the staged bytes the second one reads."""
    inst = await staged(env)
    await _in_flight_past_its_lease(env, first)
    other, second = other_process(env, puts)
    second.hold = asyncio.Event()
    assert await other.worker.run_once(wait=False) == 1
    await second.entered.wait()
    await _finish(env, first)
    (item,) = items(env, inst)
    assert (item.status, item.attempts) == ("DELIVERING", 2) and item.blob_id is not None
    second.hold.set()
    await asyncio.gather(*list(other.worker._in_flight.values()))
    (item,) = items(env, inst)
    assert (item.status, item.attempts) == ("DELIVERED", 2)
    assert env.connect.worker.delivered_count == 0 and other.worker.delivered_count == 1
    assert await env.read("rec", expected_key(item)) == DATA
    other.close()


async def test_a_taken_over_delivery_that_fails_does_not_mark_the_item_failed(env, first, puts):
    inst = await staged(env)
    await _in_flight_past_its_lease(env, first)
    other, _ = other_process(env, puts)
    assert await other.worker.run_once() == 1
    first.fail = S3Error("NoSuchBucket", "gone")
    await _finish(env, first)
    (item,) = items(env, inst)
    assert (item.status, item.attempts, item.last_error_code) == ("DELIVERED", 2, None)
    other.close()


async def test_the_startup_sweep_drops_the_leases_of_a_dead_run(env, puts):
    inst = await staged(env)
    (item,) = items(env, inst)
    now = env.clock.now()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    assert env.connect.store.claim_item(item, now, lease)  # then the process died
    worker, _ = other_process(env, puts)  # a worker process starting: no sweep
    assert worker.claims_released == 0 and await worker.worker.run_once() == 0
    worker.close()
    main, _ = other_process(env, puts, sweep=True)  # a main process starting
    assert main.claims_released == 1
    assert await main.worker.run_once() == 1
    (item,) = items(env, inst)
    assert (item.status, item.attempts) == ("DELIVERED", 2) and len(puts) == 1
    main.close()


async def test_a_stopped_delivery_hands_its_item_back(env, first, puts):
    inst = await staged(env)
    first.hold = asyncio.Event()
    await env.connect.worker.run_once(wait=False)
    await first.entered.wait()
    await env.connect.worker.stop()  # cancels the held delivery
    (item,) = items(env, inst)
    assert item.status == "DELIVERING" and item.next_attempt_at is None
    other, _ = other_process(env, puts)
    assert await other.worker.run_once() == 1
    assert items(env, inst)[0].status == "DELIVERED"
    other.close()


async def test_claim_is_a_compare_and_set(env):
    store = env.connect.store
    inst = await staged(env)
    (item,) = items(env, inst)
    now = env.clock.now()
    later = now + timedelta(seconds=10)
    assert store.claim_item(item, now, later)
    assert not store.claim_item(item, now, later)  # the row it read changed
    (claimed,) = items(env, inst)
    assert (claimed.status, claimed.attempts, claimed.next_attempt_at) == (
        "DELIVERING",
        1,
        later,
    )
    assert not store.claim_item(claimed, now, later)  # its lease still runs
    assert store.due_items(now, 10) == []
    assert store.claim_item(claimed, later, later)  # ran out: taken over
    assert not store.update_item(item.item_id, fence=1, from_status="DELIVERING", size=0)
    assert store.update_item(item.item_id, fence=2, from_status="DELIVERING", size=len(DATA))


async def test_a_delivering_only_process_does_not_maintain(env, puts):
    """Retention and data-key destruction run in the main process only; a worker process
    just forgets the data keys destroyed elsewhere."""
    inst = env.instance()  # no storage config: the item waits
    await env.ingest(inst, "c", DATA)
    (item,) = items(env, inst)
    worker, _ = other_process(env, puts)
    worker.worker.maintains = False
    dk = env.connect.store.get_data_key(item.dk_id)
    await worker.staging.plaintext(inst, dk)  # the worker decrypted it once
    env.clock.advance(2 * 86400)
    await worker.worker.run_once()
    assert items(env, inst)[0].status == "WAITING_FOR_CONFIG"
    await env.connect.worker.run_once()
    assert items(env, inst)[0].status == "EXPIRED"
    assert env.connect.store.get_data_key(item.dk_id) is None
    assert item.dk_id in worker.staging._plain
    await worker.worker.run_once()
    assert item.dk_id not in worker.staging._plain
    worker.close()


async def test_a_key_retired_by_one_process_outlives_an_ingest_in_another(tmp_path, puts):
    """The main process retires (by age) and would destroy the data key a worker process
    is still writing an ingest with; with several processes it waits KEY_GRACE after the
    retirement, so the ingest stages instead of failing with 503."""
    env = make_env(tmp_path, shared=True)
    inst = await staged(env)  # c-0, delivered below; the key is now the current one
    assert await env.connect.worker.run_once() == 1
    worker, _ = other_process(env, puts, shared=True)

    async def slow_body():
        yield b"first half "
        env.clock.advance(3600)  # the key is worn out by age
        await env.connect.worker.run_once()  # the main process maintains meanwhile
        yield b"second half"

    key = f"{inst.instance_id}/CALL_RECORDINGS/late.wav"
    await worker.staging.ingest(ROOT, key, slow_body(), None, None)
    (late,) = items(env, inst, "late")
    dk = env.connect.store.get_data_key(late.dk_id)
    assert dk is not None and dk.retired
    assert await worker.worker.run_once() == 1
    assert await env.read("rec", expected_key(late)) == b"first half second half"
    await env.connect.worker.run_once()
    assert env.connect.store.get_data_key(late.dk_id) is not None  # within the grace
    env.clock.advance(KEY_GRACE)
    await env.connect.worker.run_once()
    assert env.connect.store.data_keys(inst.instance_id) == []
    worker.close()
    env.connect.close()


async def test_a_claim_on_a_generation_superseded_before_it_read_writes_nothing(tmp_path, puts):
    """Staged blobs are deleted at once even with several processes: a delivery that
    claimed generation 1 and opens its blob only after a re-stage deleted it fails,
    PUTs nothing and marks nothing; generation 2 is then delivered once."""
    env = make_env(tmp_path, shared=True)
    env.connect.worker._s3 = Gate(env.s3, puts)
    inst = await staged(env)  # c-0, generation 1
    other, _ = other_process(env, puts, shared=True)
    (old,) = items(env, inst)
    real_open = other.staging.open

    async def restaged_meanwhile(inst_: Any, item: Any) -> Any:
        await env.ingest(inst, "c-0", b"second")  # the first process re-stages c-0
        return await real_open(inst_, item)

    other.staging.open = restaged_meanwhile  # type: ignore[method-assign]
    await other.worker.deliver(old)
    assert puts == []  # the superseded bytes went nowhere
    (new,) = items(env, inst)
    assert (new.generation, new.status) == (2, "STAGED")
    assert await env.connect.worker.run_once() == 1
    assert await env.read("rec", expected_key(new)) == b"second"
    assert len(puts) == 1
    other.close()
    env.connect.close()


async def test_a_stop_during_a_claims_commit_hands_the_claim_back(env, puts):
    """With --fsync the claim commits on a worker thread; a stop that cancels the delivery
    meanwhile must not leave the item leased to a process that will never deliver it."""
    import threading

    store = env.connect.store
    store.fsync = True  # the claim goes to a worker thread, as it does with --fsync
    inst = await staged(env)
    entered, go_on, claimed = threading.Event(), threading.Event(), threading.Event()
    claim = store.claim_item

    def slow_claim(*args: Any) -> bool:
        entered.set()
        go_on.wait(5)
        try:
            return claim(*args)
        finally:
            claimed.set()

    store.claim_item = slow_claim  # type: ignore[method-assign]
    await env.connect.worker.run_once(wait=False)
    assert await asyncio.to_thread(entered.wait, 5)
    stop = asyncio.ensure_future(env.connect.worker.stop())  # cancels the delivery
    await asyncio.sleep(0.05)
    go_on.set()  # the claim commits after its delivery was cancelled
    await stop
    assert await asyncio.to_thread(claimed.wait, 5)
    for _ in range(100):  # the claim's outcome reaches the loop, which hands it back
        (item,) = items(env, inst)
        if item.status == "DELIVERING" and item.next_attempt_at is None:
            break
        await asyncio.sleep(0.02)
    assert item.status == "DELIVERING" and item.next_attempt_at is None  # handed back
    store.claim_item = claim  # type: ignore[method-assign]
    other, _ = other_process(env, puts)
    assert await other.worker.run_once() == 1
    assert items(env, inst)[0].status == "DELIVERED"
    other.close()
