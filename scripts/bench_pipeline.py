#!/usr/bin/env python3
"""Two-phase ingest against plain PUT, same server, same run, under each durability mode.

For each mode (`--modes no-fsync,fsync`) one fresh `s3sim serve --workers
<--server-workers, default 2>` is started on a free port and a temp data dir (server CPU
is summed over its processes). Setup (not timed): a customer KMS key, the delivery bucket, a
Connect instance and its CALL_RECORDINGS storage config (SSE-KMS under that key). Then:

0. warm-up (not timed): `--warmup` recordings ingested and delivered, so the timed
   phases see a store in use, not a fresh data dir's one-time costs (its fan-out
   directories, an empty pool of spare files: s3sim/storage/spares.py);
1. plain PUT: `--small` (4 KiB) PUT ops/s with SSE-KMS + bucket key, and `--size` (1 MiB)
   PUT ops/s with SSE-KMS under the customer key (closed loop, `-c` workers, `--seconds`;
   the 1 MiB one in `--rounds` + 1 slices, interleaved with phase 2's: see PlainPuts);
2. saturation: `--blast` recordings of `--size` PUT into `connect-staging` as fast as `-c`
   workers go, in `--rounds` slices, each delivered before the next plain PUT slice;
   deliveries/s = recordings / the sum over slices of (last DeliveredAt - first PUT start);
3. open loop at `--load` (0.5) x that rate for `--open-seconds`: one recording every
   1/rate s whatever the server does; latency of each = DeliveredAt - its scheduled start
   (the PUT included) and, server side, DeliveredAt - StagedAt.

Delivery times come from the pipeline view (GET /_s3sim/connect/instances/<id>/items), whose
timestamps are the server's wall clock (microseconds; the simulated clock is not advanced),
so no per-item polling loads the server while it is measured.

    python scripts/bench_pipeline.py [--modes no-fsync,fsync] [--seconds 4] [--blast 300]
        [--rounds 2] [--warmup 64] [--json] [--server-workers 2] [--server-arg=--flag=value]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_client as pc  # noqa: E402
from bench_common import ServerProcess, free_port, process_tree, python_cmd  # noqa: E402

from s3sim.loadtest.ingest import create_instance  # noqa: E402
from s3sim.loadtest.runner import RunConfig, make_workload, run_load  # noqa: E402
from s3sim.loadtest.sizes import SizeDist, format_size, parse_size  # noqa: E402
from s3sim.loadtest.stats import latency_summary  # noqa: E402
from s3sim.loadtest.workloads import WorkloadConfig  # noqa: E402

CpuProbe = Callable[[], float | None]
DELIVERY_BUCKET = "bench-pipeline-delivery"
TARGET_RATIO = 0.5  # deliveries/s >= 0.5 x plain PUT/s
TARGET_P99_S = 1.0  # p99 staging-to-delivered at half of saturation


@dataclass(frozen=True)
class Params:
    size: int = 1 << 20
    small: int = 4096
    concurrency: int = 8
    seconds: float = 4.0
    blast: int = 300
    rounds: int = 2  # saturation slices, interleaved with rounds + 1 plain PUT slices
    warmup: int = 64
    load: float = 0.5
    open_seconds: float = 8.0
    max_open: int = 400
    timeout_s: float = 120.0
    server_workers: int = 2
    server_args: tuple[str, ...] = ()  # more `s3sim serve` arguments, e.g. delivery parallelism


@dataclass
class ModeResult:
    mode: str
    small_put_ops: float | None = None
    put_ops: float | None = None
    ingest_put_ops: float | None = None
    deliveries_per_s: float | None = None
    put_cpu_ms: float | None = None  # server CPU (user+sys) per plain PUT of `size`
    delivery_cpu_ms: float | None = None  # per recording, ingest PUT and delivery together
    open_rate: float | None = None
    open_count: int = 0
    e2e_ms: dict[str, float] = field(default_factory=dict)
    staged_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    peak_rss_mib: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.deliveries_per_s or not self.put_ops:
            return None
        return self.deliveries_per_s / self.put_ops

    @property
    def cpu_ratio(self) -> float | None:
        """The ratio a CPU-bound server would show: CPU per PUT / CPU per delivery."""
        if not self.put_cpu_ms or not self.delivery_cpu_ms:
            return None
        return self.put_cpu_ms / self.delivery_cpu_ms


# ---------------------------------------------------------------- helpers


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process and its worker processes (None if unreadable)."""
    total = 0.0
    try:
        for p in process_tree(pid):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


async def setup(endpoint: str) -> tuple[str, str]:
    """(key ARN, instance id): a customer key, the delivery bucket, an instance whose
    CALL_RECORDINGS are delivered there under that key."""
    client = pc.new_client(endpoint)
    try:
        resp, _ = await client.kms("CreateKey", {"Description": "bench_pipeline"})
        if resp.status != 200:
            raise RuntimeError(f"CreateKey: HTTP {resp.status} {resp.body[:200]!r}")
        key_arn = json.loads(resp.body)["KeyMetadata"]["Arn"]
        cfg = WorkloadConfig(name="ingest", bucket=DELIVERY_BUCKET, kms_key_id=key_arn)
        return key_arn, await create_instance(client, cfg)
    finally:
        client.conn.close()


async def plain_put(
    endpoint: str, size: int, sse: str, key_arn: str | None, p: Params, seconds: float
) -> dict:
    """Closed-loop PUT ops/s (fresh keys) and errors by code."""
    cfg = WorkloadConfig(
        name="put",
        bucket=DELIVERY_BUCKET,
        sizes=SizeDist.single(size),
        keys=1_000_000,
        prefix=f"plain-{format_size(size)}/",
        sse=sse,
        kms_key_id=key_arn,
    )
    conc = p.concurrency if size > 64 << 10 else 2 * p.concurrency
    run = RunConfig(endpoint=endpoint, concurrency=conc, duration_s=seconds, count=100_000)
    s = await run_load(make_workload(cfg), run, progress=None)
    return {"ops": s.total.ops_per_s, "count": s.total.ops, "errors": dict(s.errors)}


class PlainPuts:
    """The plain `size` PUT measurement, in `rounds` + 1 slices interleaved with the
    saturation's `rounds` (A-B-A-B-A): on this VM new page-cache memory costs from ~0.3 to
    ~3 ms of CPU per MiB depending on what was freed just before (docs/PERFORMANCE.md,
    sessions 5 and 6), so a phase run in one piece could get the cheap minutes and the
    other the dear ones."""

    def __init__(self, endpoint: str, key_arn: str, p: Params, cpu: CpuProbe) -> None:
        self._args = (endpoint, p.size, "aws:kms", key_arn, p, p.seconds / (p.rounds + 1))
        self._cpu = cpu
        self.count, self.seconds, self.cpu_s = 0, 0.0, 0.0
        self.errors: dict[str, int] = {}

    async def slice(self) -> None:
        await settle_disk()
        c0 = self._cpu()
        d = await plain_put(*self._args)
        c1 = self._cpu()
        if c0 is not None and c1 is not None:
            self.cpu_s += c1 - c0
        self.count += d["count"]
        self.seconds += d["count"] / d["ops"] if d["ops"] else 0.0
        for code, n in d["errors"].items():
            self.errors[code] = self.errors.get(code, 0) + n

    @property
    def ops(self) -> float | None:
        return self.count / self.seconds if self.seconds else None


@dataclass
class Saturation:
    """Saturation slices summed: recordings PUT and delivered, and the time each took."""

    puts: int = 0
    put_s: float = 0.0
    delivered: int = 0
    deliver_s: float = 0.0

    @property
    def put_ops(self) -> float | None:
        return self.puts / self.put_s if self.put_s else None

    @property
    def deliveries_per_s(self) -> float | None:
        return self.delivered / self.deliver_s if self.delivered and self.deliver_s else None

    async def slice(self, endpoint: str, instance_id: str, n: int, p: Params, errors: dict) -> None:
        """`n` recordings by `p.concurrency` workers, until all are delivered."""
        ing = pc.Ingester(endpoint, instance_id, p.size, p.concurrency)
        t0 = time.time()
        try:
            await asyncio.wait_for(ing.blast(n, p.concurrency), p.timeout_s)
        finally:
            ing.close()
        self.puts += ing.put_done
        self.put_s += time.time() - t0
        contacts = set(ing.started)
        deadline = time.monotonic() + p.timeout_s
        items = await pc.wait_delivered(endpoint, instance_id, contacts, deadline)
        for code, k in ing.errors.items():
            errors[code] = errors.get(code, 0) + k
        pc.not_delivered(items, contacts, errors)
        ends = [pc.ts(i["DeliveredAt"]) for i in items.values() if i["Status"] == "DELIVERED"]
        ends = [e for e in ends if e is not None]
        if ends:
            self.delivered += len(ends)
            self.deliver_s += max(ends) - t0


async def warm_up(endpoint: str, instance_id: str, p: Params, errors: dict) -> None:
    """`p.warmup` recordings ingested and delivered before anything is timed."""
    if p.warmup <= 0:
        return
    ing = pc.Ingester(endpoint, instance_id, p.size, p.concurrency)
    try:
        await asyncio.wait_for(ing.blast(p.warmup, p.concurrency), p.timeout_s)
    finally:
        ing.close()
    deadline = time.monotonic() + p.timeout_s
    items = await pc.wait_delivered(endpoint, instance_id, set(ing.started), deadline)
    for code, n in ing.errors.items():
        errors[f"warmup.{code}"] = n
    pc.not_delivered(items, set(ing.started), errors)


async def open_loop(endpoint: str, instance_id: str, rate: float, p: Params, errors: dict):
    """Recordings at a fixed rate; returns (count, end-to-end ms summary, staged ms summary)."""
    count = max(1, min(p.max_open, int(rate * p.open_seconds)))
    ing = pc.Ingester(endpoint, instance_id, p.size, pool_size=32)
    start = time.time() + 0.05
    tasks = []
    try:
        for i in range(count):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.time()))
            tasks.append(asyncio.create_task(ing.put(due)))
        await asyncio.wait_for(asyncio.gather(*tasks), p.timeout_s)
    finally:
        ing.close()
    contacts = set(ing.started)
    items = await pc.wait_delivered(endpoint, instance_id, contacts, time.monotonic() + p.timeout_s)
    errors.update({f"open.{k}": v for k, v in ing.errors.items()})
    pc.not_delivered(items, contacts, errors)
    e2e, staged = [], []
    for c, item in items.items():
        end, staged_at = pc.ts(item["DeliveredAt"]), pc.ts(item["StagedAt"])
        if item["Status"] != "DELIVERED" or end is None or staged_at is None:
            continue
        e2e.append(end - ing.started[c])
        staged.append(end - staged_at)
    return count, _ms(e2e), _ms(staged)


def _ms(latencies_s: list[float]) -> dict[str, float]:
    return latency_summary(sorted(latencies_s)) if latencies_s else {}


# ---------------------------------------------------------------- one mode


async def settle_disk() -> None:
    """Write back what earlier phases left dirty in the page cache, so that the next phase
    does not pay for it (the ingest phase used to pay for the plain PUTs' writeback)."""
    await asyncio.to_thread(os.sync)


async def measure_mode(res: ModeResult, endpoint: str, p: Params, cpu: CpuProbe) -> None:
    key_arn, instance_id = await setup(endpoint)
    await warm_up(endpoint, instance_id, p, res.errors)
    small = await plain_put(endpoint, p.small, "aws:kms+bucket-key", None, p, p.seconds)
    res.small_put_ops = small["ops"]
    big = PlainPuts(endpoint, key_arn, p, cpu)
    sat, sat_cpu = Saturation(), 0.0
    for k in range(p.rounds):
        await big.slice()
        await settle_disk()
        c0 = cpu()
        await sat.slice(endpoint, instance_id, p.blast // p.rounds, p, res.errors)
        c1 = cpu()
        sat_cpu += (c1 - c0) if c0 is not None and c1 is not None else 0.0
        print(f"[{res.mode}] round {k + 1} of {p.rounds} done", file=sys.stderr)
    await big.slice()
    res.ingest_put_ops, res.deliveries_per_s = sat.put_ops, sat.deliveries_per_s
    res.delivery_cpu_ms = sat_cpu * 1000 / sat.delivered if sat.delivered and sat_cpu else None
    res.put_ops = big.ops
    res.put_cpu_ms = big.cpu_s * 1000 / big.count if big.count and big.cpu_s else None
    for name, errs in (("put.small", small["errors"]), ("put", big.errors)):
        for code, n in errs.items():
            res.errors[f"{name}.{code}"] = n
    if not res.deliveries_per_s:
        res.note = "nothing delivered at saturation; open loop skipped"
        return
    res.open_rate = p.load * res.deliveries_per_s
    res.open_count, res.e2e_ms, res.staged_ms = await open_loop(
        endpoint, instance_id, res.open_rate, p, res.errors
    )


def bench_mode(mode: str, tmp: Path, p: Params) -> ModeResult:
    res = ModeResult(mode)
    port = free_port()
    data = tmp / mode
    data.mkdir()
    cmd = python_cmd("-m", "s3sim", "serve", "--host", "127.0.0.1", "--port", str(port))
    cmd += ["--data-dir", str(data), "--fsync" if mode == "fsync" else "--no-fsync"]
    cmd += ["--workers", str(p.server_workers), *p.server_args]
    srv = ServerProcess(f"s3sim-{mode}", cmd, port, "/_s3sim/health", tmp / f"{mode}.log")
    try:
        srv.start()
    except RuntimeError as exc:
        res.note = f"not started: {exc}"
        return res
    try:
        pid = srv.proc.pid if srv.proc else -1
        asyncio.run(measure_mode(res, srv.endpoint, p, lambda: proc_cpu_s(pid)))
    except (RuntimeError, TimeoutError, KeyError, ValueError) as exc:
        res.note = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        res.peak_rss_mib = srv.peak_rss_mib()
        srv.stop()
        # the next mode starts on a machine without this one's gigabytes of files: their
        # page cache would make its writes take memory the VM had handed back (session 8)
        shutil.rmtree(data, ignore_errors=True)
    return res


# ---------------------------------------------------------------- output


def _f(v: float | None, fmt: str = ",.1f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _lat(d: dict[str, float], k: str) -> str:
    return _f(d.get(k), ",.0f")


def rows(results: list[ModeResult], p: Params) -> list[list[str]]:
    s, b = format_size(p.small), format_size(p.size)
    out = [["measurement", *(r.mode for r in results), "target"]]

    def row(name: str, cells: list[str], target: str = "") -> None:
        out.append([name, *cells, target])

    row(f"{s} PUT ops/s (SSE-KMS+BK)", [_f(r.small_put_ops) for r in results])
    row(f"{b} PUT ops/s (SSE-KMS)", [_f(r.put_ops) for r in results])
    row(f"{b} ingest PUT ops/s (saturation)", [_f(r.ingest_put_ops) for r in results])
    row(f"{b} deliveries/s (saturation)", [_f(r.deliveries_per_s) for r in results])
    verdicts = [r.ratio is not None and r.ratio >= TARGET_RATIO for r in results]
    row(
        "deliveries/s / PUT/s",
        [_f(r.ratio, ".2f") for r in results],
        f">={TARGET_RATIO}: " + ("PASS" if all(verdicts) else "FAIL"),
    )
    row(f"server CPU ms per {b} PUT", [_f(r.put_cpu_ms) for r in results])
    row("server CPU ms per recording (ingest+delivery)", [_f(r.delivery_cpu_ms) for r in results])
    row("CPU per PUT / CPU per recording", [_f(r.cpu_ratio, ".2f") for r in results])
    row("open-loop rate /s (load x saturation)", [_f(r.open_rate) for r in results])
    row("open-loop recordings", [str(r.open_count) for r in results])
    for k in ("p50", "p90", "p99", "max"):
        target = ""
        if k == "p99":
            ok = all(r.e2e_ms.get("p99", 1e12) < TARGET_P99_S * 1000 for r in results)
            target = f"<{TARGET_P99_S * 1000:.0f} ms: " + ("PASS" if ok else "FAIL")
        row(f"PUT start->delivered {k} ms", [_lat(r.e2e_ms, k) for r in results], target)
    for k in ("p50", "p99"):
        row(f"staged->delivered {k} ms (server)", [_lat(r.staged_ms, k) for r in results])
    row("peak server RSS MiB", [_f(r.peak_rss_mib, ".0f") for r in results])
    return out


def table(results: list[ModeResult], p: Params) -> str:
    rs = rows(results, p)
    widths = [max(len(r[i]) for r in rs) for i in range(len(rs[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rs
    ]
    lines.append(
        f"server processes={p.server_workers} "
        + (f"server args={' '.join(p.server_args)} " if p.server_args else "")
        + f"workers={p.concurrency} seconds={p.seconds} warmup={p.warmup} blast={p.blast} "
        f"rounds={p.rounds} "
        f"load={p.load} "
        f"open_seconds={p.open_seconds}; fsync = every commit fsynced (survives an OS crash), "
        "no-fsync = survives kill -9 only"
    )
    for r in results:
        if r.errors:
            lines.append(f"{r.mode} errors: {r.errors}")
        if r.note:
            lines.append(f"{r.mode}: {r.note}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="no-fsync,fsync", help="comma list of fsync, no-fsync")
    ap.add_argument("--size", default="1MiB", help="recording / plain PUT size")
    ap.add_argument("--small", default="4KiB", help="small plain PUT size")
    ap.add_argument("-c", "--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0, help="each plain PUT measurement")
    ap.add_argument("--blast", type=int, default=300, help="recordings at saturation")
    ap.add_argument(
        "--rounds", type=int, default=2, help="saturation slices interleaved with plain PUT ones"
    )
    ap.add_argument("--warmup", type=int, default=64, help="recordings before timing")
    ap.add_argument("--load", type=float, default=0.5, help="open-loop rate / saturation")
    ap.add_argument("--open-seconds", type=float, default=8.0)
    ap.add_argument("--max-open", type=int, default=400, help="cap on open-loop recordings")
    ap.add_argument("--timeout", type=float, default=120.0, help="per phase")
    ap.add_argument(
        "--server-workers", type=int, default=2, help="`s3sim serve --workers` (default 2)"
    )
    ap.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra `s3sim serve` argument (repeatable): --server-arg=--connect-max-parallel=16",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    bad = [m for m in args.modes.split(",") if m not in ("fsync", "no-fsync")]
    if bad:
        ap.error(f"unknown mode(s) {bad}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    p = Params(
        size=parse_size(args.size),
        small=parse_size(args.small),
        concurrency=args.concurrency,
        seconds=args.seconds,
        blast=args.blast,
        rounds=max(1, args.rounds),
        warmup=args.warmup,
        load=args.load,
        open_seconds=args.open_seconds,
        max_open=args.max_open,
        timeout_s=args.timeout,
        server_workers=args.server_workers,
        server_args=tuple(args.server_arg),
    )
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        results = [bench_mode(m, Path(tmp), p) for m in args.modes.split(",")]
    if args.json:
        modes = [{**asdict(r), "ratio": r.ratio, "cpu_ratio": r.cpu_ratio} for r in results]
        doc = {"params": asdict(p), "modes": modes}
        print(json.dumps(doc, indent=2))
    else:
        print(table(results, p))
    return 0 if all(not r.note for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
