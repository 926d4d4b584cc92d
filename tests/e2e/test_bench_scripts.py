"""Smoke tests of scripts/bench_pipeline.py, bench_list.py, ingest_legs.py and opcount.py:
each runs against a real server with tiny parameters and prints its table; verdicts follow
the figures."""

import asyncio
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_list  # noqa: E402
import bench_pipeline  # noqa: E402
import pipeline_client as pc  # noqa: E402


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _row(out: str, name: str) -> list[str]:
    line = next(ln.strip() for ln in out.splitlines() if ln.strip().startswith(name + " "))
    return line[len(name) :].split()


def test_bench_pipeline_tiny_run_prints_its_table():
    done = _run(
        "bench_pipeline.py",
        *("--modes", "no-fsync", "--seconds", "0.3", "--blast", "4", "--warmup", "2"),
        *("--open-seconds", "0.3", "--size", "64KiB", "--small", "1KiB"),
        "--server-arg=--connect-max-parallel=3",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "server args=--connect-max-parallel=3 " in out
    assert _row(out, "measurement") == ["no-fsync", "target"]
    deliveries = _row(out, "64KiB deliveries/s (saturation)")[0]
    assert float(deliveries.replace(",", "")) > 0
    ratio, verdict = _row(out, "deliveries/s / PUT/s")[0], _row(out, "deliveries/s / PUT/s")[-1]
    assert float(ratio) > 0 and verdict in ("PASS", "FAIL")
    p99 = _row(out, "PUT start->delivered p99 ms")
    assert float(p99[0].replace(",", "")) > 0 and p99[-1] in ("PASS", "FAIL")
    assert "errors" not in out


def test_bench_pipeline_verdicts_follow_the_figures():
    p = bench_pipeline.Params()
    good = bench_pipeline.ModeResult("no-fsync", put_ops=100.0, deliveries_per_s=60.0)
    good.e2e_ms = {"p50": 20.0, "p90": 30.0, "p99": 400.0, "max": 500.0}
    slow = bench_pipeline.ModeResult("fsync", put_ops=100.0, deliveries_per_s=40.0)
    slow.e2e_ms = {"p50": 200.0, "p90": 900.0, "p99": 1500.0, "max": 2000.0}
    assert ">=0.5: PASS" in bench_pipeline.table([good], p)
    assert "<1000 ms: PASS" in bench_pipeline.table([good], p)
    both = bench_pipeline.table([good, slow], p)
    assert ">=0.5: FAIL" in both and "<1000 ms: FAIL" in both
    assert _row(both, "deliveries/s / PUT/s")[:2] == ["0.60", "0.40"]


def test_bench_pipeline_rejects_an_unknown_mode():
    done = _run("bench_pipeline.py", "--modes", "sometimes")
    assert done.returncode == 2 and "unknown mode" in done.stderr


def test_bench_list_tiny_run_prints_its_table():
    done = _run("bench_list.py", "--sizes", "50,3500", "--runs", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    small, big = _row(out, "50"), _row(out, "3,500")
    assert float(small[0]) > 0 and small[1:3] == ["n/a", "n/a"]  # one page only
    assert all(float(c.replace(",", "")) > 0 for c in big[:4])  # deep pages measured
    assert "first page @3,500 / @50 = " in out and "target <= 2x" in out


def test_bench_list_verdict_follows_the_ratio():
    fast = bench_list.SizeResult(1000, first_ms=10.0)
    ok = bench_list.SizeResult(1_000_000, first_ms=19.0)
    bad = bench_list.SizeResult(1_000_000, first_ms=31.0)
    assert "= 1.90x (target <= 2x: PASS)" in bench_list.table([fast, ok], 3, None)
    assert "= 3.10x (target <= 2x: FAIL)" in bench_list.table([fast, bad], 3, None)


def test_bench_list_rejects_bad_arguments():
    assert _run("bench_list.py", "--runs", "0").returncode == 2


def test_ingest_legs_tiny_run_prints_each_leg():
    # 40 recordings: CPU time comes from /proc in 10 ms ticks, and 6 could round to none
    args = ("--rounds", "1", "--count", "40", "--seconds", "0.3", "--size", "64KiB", "--fsync")
    done = _run("ingest_legs.py", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    row = _row(done.stdout, "0")
    put, staging, delivery = (float(v) for v in row[:3])
    assert put > 0 and staging > 0 and delivery > 0
    assert len(row) == 3, row  # every staged recording delivered, no errors


def test_pipeline_view_over_a_mebibyte_is_read_whole(server):
    """The harness's read of the pipeline view is not cut at the load generator's 1 MiB."""
    n = 1800

    async def run() -> tuple[str, set[str], list[dict]]:
        _, instance_id = await bench_pipeline.setup(server.endpoint)
        ingest = pc.Ingester(server.endpoint, instance_id, 1, 8)
        try:
            await ingest.blast(n, 8)
        finally:
            ingest.close()
        assert ingest.errors == {} and ingest.put_done == n
        return (
            instance_id,
            set(ingest.started),
            await pc.pipeline_items(server.endpoint, instance_id),
        )

    instance_id, contacts, items = asyncio.run(run())
    url = f"{server.endpoint}/_s3sim/connect/instances/{instance_id}/items"
    with urllib.request.urlopen(url) as resp:
        assert len(resp.read()) > 1 << 20  # more than the load generator keeps
    assert len(items) == n and {i["ContactId"] for i in items} == contacts


def test_bench_pipeline_hands_server_args_to_the_server():
    done = _run("bench_pipeline.py", "--modes", "no-fsync", "--server-arg=--no-such-flag")
    assert done.returncode == 1 and "no-fsync: not started" in done.stdout
    assert "unrecognized arguments: --no-such-flag" in done.stdout


def test_opcount_counts_the_server_work_per_request():
    """A tiny traced run: a positive count per request, and the S3 PUT handler among the
    functions that ran it (the load generator's own code is not counted)."""
    done = _run("opcount.py", "--count", "20", "--warmup", "5", "--top", "400")
    assert done.returncode == 0, done.stderr[-2000:]
    first, *rows = done.stdout.splitlines()
    assert first.startswith("opcodes per request: ") and first.endswith("(20 requests)")
    assert int(first.split(": ")[1].split()[0].replace(",", "")) > 1000
    names = [r.split(maxsplit=1)[1] for r in rows]
    assert "s3_objects.py:ObjectApi.put" in names
    assert not any(n.startswith(("runner.py:", "rawhttp.py:")) for n in names)


def test_opcount_counts_only_the_traced_requests():
    """Twice the requests, about twice the opcodes: the warm-up is not counted."""
    totals = []
    for count in ("10", "20"):
        done = _run("opcount.py", "--count", count, "--warmup", "5", "--top", "0")
        assert done.returncode == 0, done.stderr[-2000:]
        per_request = float(done.stdout.split(": ")[1].split()[0].replace(",", ""))
        totals.append(per_request * int(count))
    assert 1.6 < totals[1] / totals[0] < 2.4
