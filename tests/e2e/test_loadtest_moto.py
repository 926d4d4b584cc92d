"""Every workload except ingest runs cleanly against moto's standalone server (the
comparison target of the benchmarks)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import ServerProcess, free_port  # noqa: E402

from s3sim.loadtest.runner import RunConfig, make_workload, run_load  # noqa: E402
from s3sim.loadtest.sizes import SizeDist  # noqa: E402
from s3sim.loadtest.workloads import WorkloadConfig  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("moto") is None, reason="moto not installed"),
]


@pytest.fixture(scope="module")
def moto_endpoint():
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    srv = ServerProcess("moto", cmd, port, "/moto-api/")
    srv.start()
    yield srv.endpoint
    srv.stop()


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("put", {"sse": "AES256", "keys": 10_000}),
        ("put", {"sse": "aws:kms+bucket-key", "keys": 10_000}),
        ("get", {"sse": "aws:kms", "keys": 10}),
        ("mixed", {"read_ratio": 0.5, "keys": 20}),
        ("kms", {}),
    ],
)
async def test_workload_against_moto(moto_endpoint, name, extra):
    cfg = WorkloadConfig(name=name, bucket=f"lt-{name}", **extra)
    # one worker: moto 5.2 fails concurrent overwrites of one key (500), see docs/LOADTEST.md
    workers = 1 if name == "mixed" else 16
    run = RunConfig(endpoint=moto_endpoint, count=40, concurrency=workers)
    s = await run_load(make_workload(cfg), run, None)
    assert s.errors == {} and s.total.ops == (80 if name == "kms" else 40)


async def test_multipart_against_moto(moto_endpoint):
    cfg = WorkloadConfig(
        name="multipart", bucket="lt-mpu", sizes=SizeDist.single(6 << 20), part_size=5 << 20
    )
    s = await run_load(make_workload(cfg), RunConfig(endpoint=moto_endpoint, count=2), None)
    assert s.errors == {} and s.total.ops == 2 and s.total.nbytes == 12 << 20
