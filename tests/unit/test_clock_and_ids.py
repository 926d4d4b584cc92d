"""The clocks' float and wall-time views, and request ids drawn from a buffered rng."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

from kmscore.clock import FixedClock, SimClock
from kmscore.shared import SharedCell
from s3sim.http.auth import BufferedRandom, new_request_id


def test_sim_clock_time_is_now_and_wall_ignores_the_offset(tmp_path):
    for clock in (SimClock(), SimClock(cell=SharedCell(tmp_path / "c"))):
        clock.advance(7200)
        before = time.time()
        t, now, wall = clock.time(), clock.now(), clock.wall()
        after = time.time()
        assert before + 7200 <= t <= after + 7200
        assert abs(now.timestamp() - t) < 1 and now.tzinfo is not None
        assert before - 1 <= wall.timestamp() <= after + 1  # real time, no offset


def test_fixed_clock_views_agree():
    clock = FixedClock(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    assert clock.time() == clock.now().timestamp() and clock.wall() == clock.now()
    clock.advance(10)
    assert clock.time() == datetime(2026, 3, 4, 5, 6, 17, tzinfo=UTC).timestamp()


def counting_rng():
    counter = itertools.count()
    calls = []

    def rng(n: int) -> bytes:
        calls.append(n)
        return bytes(next(counter) % 256 for _ in range(n))

    return rng, calls


def test_buffered_random_gives_the_rngs_bytes_in_order_with_few_calls():
    rng, calls = counting_rng()
    direct, _ = counting_rng()
    buffered = BufferedRandom(rng, block=256)
    sizes = [8, 16, 8, 40, 100, 3, 8] * 5
    assert b"".join(buffered(n) for n in sizes) == direct(sum(sizes))
    assert len(calls) < len(sizes) / 3


def test_request_ids_keep_their_shapes():
    rng = BufferedRandom(lambda n: b"\xab" * n)
    s3_id = new_request_id("s3", rng)
    assert s3_id == "AB" * 8
    kms_id = new_request_id("kms", rng)
    assert len(kms_id) == 36 and kms_id[14] == "4"  # a version-4 UUID
