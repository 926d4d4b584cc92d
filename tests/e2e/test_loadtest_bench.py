"""The benchmark pieces: the baseline server's S3-ish behaviour and bench_s3.py's output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import ServerProcess, free_port, process_tree  # noqa: E402

from s3sim.loadtest.rawhttp import MAX_KEPT, Endpoint, HttpConnection  # noqa: E402


@pytest.fixture
def baseline(tmp_path):
    port = free_port()
    cmd = [sys.executable, str(ROOT / "scripts/baseline_server.py"), "--port", str(port)]
    srv = ServerProcess("baseline", cmd + ["--data-dir", str(tmp_path)], port)
    srv.start()
    yield srv
    srv.stop()


async def test_baseline_server_round_trip_and_errors(baseline):
    conn = HttpConnection(Endpoint.parse(baseline.endpoint))
    body = bytes(range(256)) * 5000  # > 1 MiB: exercises the threaded path
    put = await conn.request("PUT", "/nob/k", {"Content-Length": "1"}, [b"x"], keep_body=True)
    assert put.status == 404 and b"<Code>NoSuchBucket</Code>" in put.body
    assert (await conn.request("PUT", "/b", {"Content-Length": "0"})).status == 200
    assert (await conn.request("HEAD", "/b", {})).status == 200
    headers = {"Content-Length": str(len(body))}
    assert (await conn.request("PUT", "/b/dir/k", headers, [memoryview(body)])).status == 200
    got = await conn.request("GET", "/b/dir/k", {}, keep_body=True)
    assert (got.status, got.nbytes) == (200, len(body))
    assert got.body == body[:MAX_KEPT]  # the client keeps at most MAX_KEPT bytes
    missing = await conn.request("GET", "/b/other", {}, keep_body=True)
    assert missing.status == 404 and b"<Code>NoSuchKey</Code>" in missing.body
    conn.close()
    assert baseline.peak_rss_mib() > 10


def test_baseline_server_with_two_processes(tmp_path):
    port = free_port()
    cmd = [sys.executable, str(ROOT / "scripts/baseline_server.py"), "--port", str(port)]
    srv = ServerProcess("baseline", cmd + ["--data-dir", str(tmp_path), "--workers", "2"], port)
    srv.start()
    try:
        assert len(process_tree(srv.proc.pid)) == 2
        assert srv.peak_rss_mib() > 20  # summed over both processes
    finally:
        srv.stop()
    assert not Path(f"/proc/{srv.proc.pid}").exists() or srv.proc.poll() is not None


@pytest.mark.slow
def test_bench_s3_reports_baseline_and_s3sim_or_why_not():
    cmd = [sys.executable, str(ROOT / "scripts/bench_s3.py"), "--targets", "baseline,s3sim"]
    cmd += ["--seconds", "0.3", "--big", "1MiB", "--json", "--baseline-workers", "2"]
    out = subprocess.run(cmd, capture_output=True, timeout=300, check=True).stdout
    doc = json.loads(out)
    assert doc["processes"] == {"baseline": 2, "s3sim": 2}
    base = doc["servers"]["baseline"]
    assert base["peak_rss_mib"] > 10
    assert {r["case"] for r in base["results"]} == {"small-put", "small-get", "big-put", "big-get"}
    assert all(r["value"] > 0 and not r["errors"] for r in base["results"])
    sim = doc["servers"]["s3sim"]
    assert sim["results"] or sim["note"]  # measured, or the reason it could not be
    assert doc["client_capacity_ops_per_s"]["get"] > 0
