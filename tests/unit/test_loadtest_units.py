import math
import random
from array import array

import pytest

from s3sim.loadtest.body import BodyPool
from s3sim.loadtest.sizes import SizeDist, format_size, parse_size
from s3sim.loadtest.stats import Recorder, latency_summary, percentile


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4096", 4096), ("4KiB", 4096), ("64MiB", 64 << 20), ("1GB", 10**9), ("1.5kb", 1500)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "4XB", "-1", "KiB"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_size_dist_follows_weights():
    dist = SizeDist.parse("4KiB:80,1MiB:20")
    rng = random.Random(7)
    picks = [dist.pick(rng) for _ in range(10_000)]
    share = picks.count(4096) / len(picks)
    assert 0.77 < share < 0.83
    assert set(picks) == {4096, 1 << 20}
    assert dist.max_size == 1 << 20
    assert dist.describe() == "4KiB:80,1MiB:20"


def test_size_dist_rejects_zero_weight():
    with pytest.raises(ValueError):
        SizeDist.parse("4KiB:0")


def test_format_size():
    assert format_size(4096) == "4KiB"
    assert format_size(1000) == "1000B"


def test_percentile_is_nearest_rank():
    values = [float(i) for i in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99.9) == 100.0
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


def test_latency_summary_in_ms():
    s = latency_summary(array("d", [0.001] * 999 + [0.5]))
    assert s["p50"] == pytest.approx(1.0)
    assert s["p99.9"] == pytest.approx(1.0)
    assert s["max"] == pytest.approx(500.0)


def test_recorder_counts_and_excludes_auxiliary_rows():
    rec = Recorder()
    rec.declare("delivered", in_total=False)
    rec.success("put", 0.010, 100)
    rec.success("put", 0.020, 100)
    rec.error("put", "SlowDown")
    rec.success("delivered", 1.0, 100)
    rec.error("delivered", "NotDelivered.FAILED")
    s = rec.summary(2.0)
    assert s.total.ops == 2 and s.total.errors == 1
    assert s.total.nbytes == 200
    assert s.total.ops_per_s == pytest.approx(1.0)
    assert s.total.latency_ms["max"] == pytest.approx(20.0)
    assert s.errors == {"SlowDown": 1, "NotDelivered.FAILED": 1}
    rows = {op.name: op for op in s.ops}
    assert rows["delivered"].ops == 1 and rows["delivered"].latency_ms["p50"] == 1000.0


def test_body_pool_slices_without_copies():
    pool = BodyPool(4096, rng=lambda n: bytes(range(256)) * (n // 256 + 1))
    a = pool.chunks(4096, 0)
    b = pool.chunks(4096, 1)
    assert [len(c) for c in a] == [4096] and bytes(a[0]) != bytes(b[0])
    assert isinstance(a[0], memoryview)
    big = pool.chunks(10_000, 3)
    assert sum(len(c) for c in big) == 10_000


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"status": "STAGED"}', "STAGED"),
        (b'{"Items": [{"Status": "DELIVERED"}, {"Status": "FAILED"}]}', "FAILED"),
        (b'{"InstanceId": "i", "Items": [{"Status": "DELIVERED"}]}', "DELIVERED"),
        (b'{"Items": []}', "UNKNOWN"),
        (b"[1]", "MalformedStatus"),
        (b"<html>", "MalformedStatus"),
    ],
)
def test_ingest_status_shapes(body, status):
    from s3sim.loadtest.ingest import _status_of

    assert _status_of(body) == status
