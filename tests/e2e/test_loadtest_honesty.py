"""The load generator reports honest numbers: latencies and rates against a local aiohttp
server whose every answer is delayed by a known amount, and errors counted by AWS code."""

import asyncio
import io
import json
import sys
import time

import pytest
from aiohttp import web

from s3sim.loadtest.runner import RunConfig, make_workload, run_load
from s3sim.loadtest.sizes import SizeDist
from s3sim.loadtest.workloads import SetupError, WorkloadConfig

DELAY = 0.05
COMPLETIONS = web.AppKey("completions", list)
SLOWDOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


def fake_app(mode: str, delay: float = DELAY) -> web.Application:
    store: dict[str, int] = {}
    staged: dict[str, float] = {}
    parts: list[str] = []

    async def s3(req: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay)
        if mode == "slowdown" and req.method == "PUT" and "/" in req.path[1:]:
            return web.Response(status=503, body=SLOWDOWN)
        if req.method == "PUT":
            store[req.path] = len(await req.read())
            if req.path.startswith("/connect-staging/"):
                staged[req.path.rsplit("/", 1)[1].removesuffix(".wav")] = time.monotonic()
            return web.Response(headers={"ETag": '"0"'})
        if req.method == "GET":
            return web.Response(body=b"z" * store.get(req.path, 0))
        if req.method == "POST" and "uploads" in req.query:
            return web.Response(body=b"<R><UploadId>u1</UploadId></R>")
        if req.method == "POST" and req.query.get("uploadId") == "u1":
            parts.append((await req.read()).decode())
            return web.Response(body=b"<CompleteMultipartUploadResult/>")
        return web.Response()

    async def kms(req: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        body = {"__type": "NotFoundException", "message": "Invalid keyId 'nope'"}
        return web.json_response(body, status=400, content_type="application/x-amz-json-1.1")

    async def item(req: web.Request) -> web.Response:
        t = staged.get(req.match_info["contact"])
        if t is None:
            return web.json_response({"message": "not found"}, status=404)
        done = time.monotonic() - t >= 0.1  # delivered 100 ms after the PUT was stored
        return web.json_response({"status": "DELIVERED" if done else "STAGED"})

    app = web.Application(client_max_size=1 << 26)
    app[COMPLETIONS] = parts
    app.router.add_get("/_s3sim/connect/instances/{iid}/items/{contact}", item)
    app.router.add_post("/", kms)
    app.router.add_route("*", "/{tail:.*}", s3)
    return app


@pytest.fixture
async def serve():
    runners = []

    async def start(mode: str, delay: float = DELAY) -> str:
        app = fake_app(mode, delay)
        start.app = app
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for r in runners:
        await r.cleanup()


async def test_latency_and_rate_match_a_50ms_server(serve):
    endpoint = await serve("ok")
    cfg = WorkloadConfig(name="put", sizes=SizeDist.single(4096))
    run = RunConfig(endpoint=endpoint, concurrency=8, count=96)
    s = await run_load(make_workload(cfg), run, progress=None)
    assert s.total.ops == 96 and s.total.errors == 0
    lat = s.total.latency_ms
    assert 50.0 <= lat["p50"] < 75.0, lat
    assert lat["max"] < 200.0, lat
    expected_rate = 8 / DELAY  # 160 ops/s with 8 workers each waiting 50 ms
    assert 0.7 * expected_rate < s.total.ops_per_s <= 1.02 * expected_rate, s.total.ops_per_s
    assert s.total.mb_per_s == pytest.approx(s.total.ops_per_s * 4096 / 1e6)


async def test_errors_are_counted_by_s3_code(serve):
    endpoint = await serve("slowdown", delay=0.0)
    cfg = WorkloadConfig(name="put", sizes=SizeDist.single(100))
    s = await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, count=40), progress=None)
    assert s.total.ops == 0 and s.total.errors == 40
    assert s.errors == {"SlowDown": 40}


async def test_kms_errors_are_counted_by_json_type(serve):
    endpoint = await serve("ok", delay=0.0)
    cfg = WorkloadConfig(name="kms", kms_key_id="nope")
    s = await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, count=10), progress=None)
    assert s.errors == {"NotFoundException": 10}


async def test_get_counts_received_bytes(serve):
    endpoint = await serve("ok", delay=0.0)
    cfg = WorkloadConfig(name="mixed", sizes=SizeDist.single(1000), keys=5, read_ratio=1.0)
    s = await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, count=20), progress=None)
    (get,) = s.ops
    assert (get.name, get.ops, get.nbytes) == ("get", 20, 20_000)


async def test_multipart_uploads_every_part(serve):
    endpoint = await serve("ok", delay=0.0)
    cfg = WorkloadConfig(name="multipart", sizes=SizeDist.single(2500), part_size=1000)
    s = await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, count=3), progress=None)
    assert (s.total.ops, s.total.nbytes, s.total.errors) == (3, 7500, 0)
    completions = serve.app[COMPLETIONS]
    assert len(completions) == 3 and all(c.count("<PartNumber>") == 3 for c in completions)


async def test_ingest_measures_time_to_delivered(serve):
    endpoint = await serve("ok", delay=0.0)
    cfg = WorkloadConfig(name="ingest", instance_id="i-1", poll_interval_s=0.01)
    run = RunConfig(endpoint=endpoint, concurrency=4, count=8)
    s = await run_load(make_workload(cfg), run, progress=None)
    rows = {op.name: op for op in s.ops}
    assert rows["ingest.put"].ops == 8 and s.total.ops == 8
    assert rows["delivered"].ops == 8
    assert 100.0 <= rows["delivered"].latency_ms["p50"] < 160.0


async def test_duration_bound_stops_by_itself(serve):
    endpoint = await serve("ok", delay=0.02)
    cfg = WorkloadConfig(name="put")
    t0 = time.perf_counter()
    s = await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, duration_s=0.5), None)
    assert 0.5 <= s.elapsed_s < 0.7 and time.perf_counter() - t0 < 1.5
    assert s.total.ops > 0


async def test_progress_line_only_on_long_runs(serve, monkeypatch):
    from s3sim.loadtest import runner

    monkeypatch.setattr(runner, "PROGRESS_INTERVAL_S", 0.1)
    monkeypatch.setattr(runner, "PROGRESS_AFTER_S", 0.25)
    endpoint = await serve("ok", delay=0.01)
    cfg = WorkloadConfig(name="put")
    out = io.StringIO()
    await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, duration_s=0.2), out)
    assert out.getvalue() == ""  # a short run prints nothing
    await run_load(make_workload(cfg), RunConfig(endpoint=endpoint, duration_s=0.65), out)
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 5
    assert all("ops/s" in line and "MB/s" in line and "errors 0" in line for line in lines)


async def test_unreachable_endpoint_is_a_setup_error():
    cfg = WorkloadConfig(name="put")
    with pytest.raises(SetupError, match="unreachable"):
        await run_load(make_workload(cfg), RunConfig(endpoint="http://127.0.0.1:1"), None)


async def test_cli_json_output(serve):
    endpoint = await serve("ok", delay=0.0)
    args = ["put", "--endpoint", endpoint, "--count", "30", "--size", "1KiB", "--json"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "s3sim.loadtest", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    doc = json.loads(out)
    assert doc["total"]["ops"] == 30 and doc["total"]["bytes"] == 30 * 1024
    assert set(doc["total"]["latency_ms"]) >= {"p50", "p90", "p99", "p99.9", "max"}


async def test_cli_rejects_bad_knobs_and_reports_setup_failure():
    for args, code in (
        (["put", "--size", "4XB"], 2),
        (["put", "--endpoint", "http://127.0.0.1:1"], 1),
    ):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "s3sim.loadtest", *args, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
        assert proc.returncode == code and err.startswith(b"s3sim loadtest: ")
