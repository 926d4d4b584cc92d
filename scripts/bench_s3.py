#!/usr/bin/env python3
"""s3sim against the bare aiohttp baseline and moto's server, same client, same run.

Starts every server on a free port with a fresh temp data dir, drives them in turn with
the `s3sim.loadtest` generator (in this process; each round of a measurement visits every
server, so drift of this shared VM's speed hits them alike), and prints one table:
4 KiB PUT/GET ops/s and 64 MiB PUT/GET MB/s under SSE-S3, SSE-KMS and SSE-KMS with a bucket key, the
s3sim/baseline and s3sim/moto ratios, the issue's targets, and each server's peak RSS
(VmHWM). The baseline does no crypto, so it is measured once (no SSE) and is the
denominator of every SSE mode. A server that cannot start, or whose S3 API fails during
setup, gets "n/a" and the reason below the table.

s3sim runs `--s3sim-workers` processes (default 2, one per core here); the baseline runs
`--baseline-workers` (default 1, a bare aiohttp server as the issue defines it). Run once
more with `--baseline-workers 2` for the like-for-like ratio.

    python scripts/bench_s3.py [--seconds 3] [--repeat 1] [--targets baseline,moto,s3sim] [--json]
        [--s3sim-workers 2] [--baseline-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ServerProcess, free_port, python_cmd  # noqa: E402

from s3sim.loadtest.runner import RunConfig, make_workload, run_load  # noqa: E402
from s3sim.loadtest.sizes import SizeDist, format_size, parse_size  # noqa: E402
from s3sim.loadtest.workloads import SetupError, WorkloadConfig  # noqa: E402

SERVERS = ("baseline", "moto", "s3sim")
SSE_MODES = {"AES256": "SSE-S3", "aws:kms": "SSE-KMS", "aws:kms+bucket-key": "SSE-KMS+BK"}
# (case, sse label) -> (minimum s3sim/baseline, minimum s3sim/moto), from the performance issue
TARGETS = {
    ("small-put", "SSE-KMS+BK"): (0.5, 10.0),
    ("small-get", "SSE-KMS+BK"): (0.5, 10.0),
    ("big-put", "SSE-KMS"): (0.7, None),
    ("big-get", "SSE-KMS"): (0.7, None),
}


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    workload: str
    size: int
    metric: str  # "ops/s" or "MB/s"
    concurrency: int
    seconds: float
    count: int | None
    keys: int
    prefix: str = ""
    populate: bool = True


@dataclass(frozen=True)
class Measure:
    value: float | None
    errors: dict[str, int]
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""


def cases(seconds: float, small: int, big: int) -> list[Case]:
    s, b = format_size(small), format_size(big)
    return [
        Case("small-put", f"{s} PUT", "put", small, "ops/s", 16, seconds, None, 100_000),
        Case("small-get", f"{s} GET", "get", small, "ops/s", 16, seconds, None, 200),
        Case("big-put", f"{b} PUT", "put", big, "MB/s", 2, 2 * seconds, 8, 1000),
        Case("big-get", f"{b} GET", "get", big, "MB/s", 2, 2 * seconds, 8, 2),
    ]


async def measure(endpoint: str, case: Case, sse: str) -> Measure:
    """One measurement. It starts with os.sync(): the dirty pages earlier cases left (s3sim
    runs three SSE modes, the baseline one) are written back before, not during, it."""
    await asyncio.to_thread(os.sync)
    slug = sse.replace(":", "-").replace("+", "-").lower()
    cfg = WorkloadConfig(
        name=case.workload,
        bucket=f"bench-{slug}",
        sizes=SizeDist.single(case.size),
        keys=case.keys,
        prefix=case.prefix or f"{case.key}/",
        sse=sse,
        populate=case.populate,
    )
    run = RunConfig(
        endpoint=endpoint,
        concurrency=case.concurrency,
        duration_s=case.seconds,
        count=case.count,
        timeout_s=60.0,
    )
    try:
        s = await run_load(make_workload(cfg), run, progress=None)
    except SetupError as exc:
        return Measure(None, {}, note=str(exc)[:200])
    t = s.total
    value = t.ops_per_s if case.metric == "ops/s" else t.mb_per_s
    return Measure(value, s.errors, t.latency_ms["p50"], t.latency_ms["p99"])


def client_capacity(tmp: Path, seconds: float) -> dict[str, float]:
    """4 KiB PUT and GET ops/s of the load generator against a server that answers at once."""
    port = free_port()
    script = str(Path(__file__).with_name("baseline_server.py"))
    srv = ServerProcess("trivial", python_cmd(script, "--port", str(port), "--trivial"), port)
    srv.start()
    out = {}
    try:
        for workload in ("put", "get"):
            case = Case("cap", "cap", workload, 4096, "ops/s", 32, seconds, None, 100)
            m = asyncio.run(measure(srv.endpoint, case, "none"))
            out[workload] = m.value or 0.0
    finally:
        srv.stop()
    return out


def servers(
    tmp: Path, targets: list[str], fsync: bool, s3sim_args: list[str], workers: dict[str, int]
) -> list[ServerProcess]:
    out = []
    for name in targets:
        port = free_port()
        data = tmp / name
        data.mkdir()
        log = tmp / f"{name}.log"
        if name == "baseline":
            script = str(Path(__file__).with_name("baseline_server.py"))
            cmd = python_cmd(script, "--port", str(port), "--data-dir", str(data))
            cmd += ["--fsync"] if fsync else []
            cmd += ["--workers", str(workers["baseline"])]
            out.append(ServerProcess(name, cmd, port, "/", log))
        elif name == "moto":
            cmd = python_cmd("-m", "moto.server", "-H", "127.0.0.1", "-p", str(port))
            out.append(ServerProcess(name, cmd, port, "/moto-api/", log))
        elif name == "s3sim":
            cmd = python_cmd("-m", "s3sim", "serve", "--host", "127.0.0.1", "--port", str(port))
            cmd += ["--data-dir", str(data), "--fsync" if fsync else "--no-fsync", *s3sim_args]
            cmd += ["--workers", str(workers["s3sim"])]
            out.append(ServerProcess(name, cmd, port, "/_s3sim/health", log))
    return out


def median_of(runs: list[Measure]) -> Measure:
    """The run with the median value (runs without a value sort first)."""
    ordered = sorted(runs, key=lambda m: -1.0 if m.value is None else m.value)
    return ordered[len(ordered) // 2]


def huge_cases(size: int) -> list[Case]:
    """One PUT then one GET of the same huge object (the GET reads what the PUT wrote)."""
    label = format_size(size)
    return [
        Case("huge-put", f"{label} PUT", "put", size, "MB/s", 1, 600, 1, 1, "huge/"),
        Case("huge-get", f"{label} GET", "get", size, "MB/s", 1, 600, 1, 1, "huge/", False),
    ]


WARM_UP = [
    Case("warm-put", "warm-up PUT", "put", 64 << 20, "MB/s", 2, 600, 4, 4, "warm/"),
    Case("warm-get", "warm-up GET", "get", 64 << 20, "MB/s", 2, 600, 4, 4, "warm/", False),
]


def bench_huge(srv: ServerProcess, size: int, results: dict) -> float | None:
    """Stream one huge object in and out after a 64 MiB warm-up (first-use imports and
    buffer pools of every server process); returns the RSS growth (peak during the huge
    transfers minus resident before them, summed over the processes), in MiB."""
    sse, label = ("none", "none") if srv.name == "baseline" else ("aws:kms", "SSE-KMS")
    for case in WARM_UP:
        asyncio.run(measure(srv.endpoint, case, sse))
    srv.reset_peak()
    before = srv.rss_mib()
    for case in huge_cases(size):
        m = asyncio.run(measure(srv.endpoint, case, sse))
        results[(case.key, label)] = m
        print(
            f"[{srv.name}] {case.label} {label}: {m.value} MB/s {m.errors or ''}", file=sys.stderr
        )
    peak = srv.peak_rss_mib()
    return None if before is None or peak is None else peak - before


def modes_of(srv: ServerProcess) -> dict[str, str]:
    return {"none": "none"} if srv.name == "baseline" else SSE_MODES


def bench_servers(
    srvs: list[ServerProcess], all_cases: list[Case], repeat: int = 1, huge: int = 0
) -> dict[str, dict]:
    """Every measurement of every server: {name: {"results": {(case key, sse label):
    Measure}, peak RSS, notes}}. All servers run at once and take turns: each round of a
    case measures every server (and SSE mode) once, so a machine that slows down or
    speeds up during the run moves every server's figures alike (the median of `repeat`
    rounds is kept). Each round starts with the next server: a measurement runs slower
    right after another server's writes (their writeback), and a fixed order put that on
    the same server every time (s3sim's 4 KiB GETs: 4,970-5,140/s right after a baseline
    run, 5,400-5,620/s otherwise, same code, A/B)."""
    data: dict[str, dict] = {}
    live = []
    for srv in srvs:
        try:
            srv.start()
            live.append(srv)
        except RuntimeError as exc:
            note = f"not started: {exc}"
            data[srv.name] = {"results": {}, "rss": None, "rss_growth": None, "note": note}
    try:
        for srv in live:
            results: dict[tuple[str, str], Measure] = {}
            growth = bench_huge(srv, huge, results) if huge else None
            data[srv.name] = {"results": results, "rss_growth": growth, "notes": []}
        for case in all_cases:
            runs: dict[tuple[str, str], list[Measure]] = {}
            for r in range(repeat):
                for srv in live[r % len(live) :] + live[: r % len(live)]:
                    for sse, label in modes_of(srv).items():
                        m = asyncio.run(measure(srv.endpoint, case, sse))
                        runs.setdefault((srv.name, label), []).append(m)
            for (name, label), ms in runs.items():
                record(data[name], case, label, median_of(ms), name)
        for srv in live:
            d = data[srv.name]
            d["rss"] = srv.peak_rss_mib()
            d["note"] = "; ".join(d.pop("notes"))
    finally:
        for srv in live:
            srv.stop()
    return data


def record(d: dict, case: Case, label: str, m: Measure, name: str) -> None:
    d["results"][(case.key, label)] = m
    shown = "n/a" if m.value is None else f"{m.value:.1f} {case.metric}"
    err = f" errors={m.errors}" if m.errors else ""
    print(f"[{name}] {case.label} {label}: {shown}{err}", file=sys.stderr)
    if m.note and m.note not in d["notes"]:
        d["notes"].append(m.note)


def _fmt(m: Measure | None) -> str:
    if m is None or m.value is None:
        return "n/a"
    return f"{m.value:,.1f}" + ("*" if m.errors else "")


def _ratio(a: Measure | None, b: Measure | None) -> float | None:
    if a is None or b is None or not a.value or not b.value:
        return None
    return a.value / b.value


def ratio_row(name: str, label: str, ms: tuple, target) -> list[str]:
    base, moto, sim = ms
    r_base, r_moto = _ratio(sim, base), _ratio(sim, moto)
    return [
        name,
        label,
        _fmt(base),
        _fmt(moto),
        _fmt(sim),
        "-" if r_base is None else f"{r_base:.2f}x",
        "-" if r_moto is None else f"{r_moto:.1f}x",
        verdict(target, r_base, r_moto),
    ]


def table(all_cases: list[Case], data: dict[str, dict], huge: int = 0, fsync: bool = False) -> str:
    def get(case: Case, label: str) -> tuple:
        return tuple(
            data.get(n, {}).get("results", {}).get((case.key, "none" if n == "baseline" else label))
            for n in SERVERS
        )

    head = ["measurement", "sse", *SERVERS, "s3sim/base", "s3sim/moto", "target"]
    rows = [head]
    for case in all_cases:
        for label in SSE_MODES.values():
            target = TARGETS.get((case.key, label))
            rows.append(ratio_row(f"{case.label} {case.metric}", label, get(case, label), target))
    if huge:
        for case in huge_cases(huge):
            name = f"{case.label} {case.metric}"
            rows.append(ratio_row(name, "SSE-KMS", get(case, "SSE-KMS"), None))
        growth = [data.get(n, {}).get("rss_growth") for n in SERVERS]
        verdict_text = "" if growth[2] is None else (": PASS" if growth[2] < 64 else ": FAIL")
        cells = ["n/a" if v is None else f"{v:.0f}" for v in growth]
        rows.append(
            [
                f"RSS growth MiB, {format_size(huge)} in+out (after warm-up)",
                "",
                *cells,
                "",
                "",
                "<64 MiB" + verdict_text,
            ]
        )
    rss = [data.get(n, {}).get("rss") for n in SERVERS]
    rows.append(
        ["peak RSS MiB", "", *("n/a" if v is None else f"{v:.0f}" for v in rss), "", "", ""]
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.append("baseline = no SSE (no crypto), measured once; * = some ops failed (see --json)")
    lines.append(
        "durability: "
        + ("fsync of every commit (baseline and s3sim)" if fsync else "no fsync (baseline, s3sim)")
        + "; moto keeps objects in memory"
    )
    for name in SERVERS:
        note = data.get(name, {}).get("note")
        if note:
            lines.append(f"{name}: {note}")
    return "\n".join(lines)


def verdict(target, r_base: float | None, r_moto: float | None) -> str:
    if target is None:
        return ""
    min_base, min_moto = target
    want = f">={min_base}x base" + (f", >={min_moto:g}x moto" if min_moto else "")
    if r_base is None:
        return want
    ok = r_base >= min_base and (min_moto is None or (r_moto is not None and r_moto >= min_moto))
    return f"{want}: {'PASS' if ok else 'FAIL'}"


def as_json(all_cases: list[Case], data: dict[str, dict]) -> dict:
    out: dict = {"cases": [c.__dict__ for c in all_cases], "servers": {}}
    for name, d in data.items():
        out["servers"][name] = {
            "peak_rss_mib": d["rss"],
            "rss_growth_mib": d.get("rss_growth"),
            "note": d["note"],
            "results": [{"case": k[0], "sse": k[1], **m.__dict__} for k, m in d["results"].items()],
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="per small measurement")
    p.add_argument("--targets", default="baseline,moto,s3sim")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement; median kept")
    p.add_argument("--small", default="4KiB")
    p.add_argument("--big", default="64MiB")
    p.add_argument(
        "--huge",
        help="first stream one object of this size in and out (e.g. 2GiB): MB/s, RSS growth",
    )
    p.add_argument(
        "--fsync",
        action="store_true",
        help="baseline and s3sim fsync every commit (default: neither does)",
    )
    p.add_argument(
        "--s3sim-arg",
        action="append",
        default=[],
        help="extra argument for `s3sim serve` (repeatable), e.g. its fsync setting",
    )
    p.add_argument(
        "--s3sim-workers",
        type=int,
        default=2,
        help="`s3sim serve --workers` (default 2: one process per core of this machine)",
    )
    p.add_argument(
        "--baseline-workers",
        type=int,
        default=1,
        help="processes of the baseline server (default 1: a bare aiohttp server)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    workers = {"baseline": args.baseline_workers, "s3sim": args.s3sim_workers}
    targets = [t for t in args.targets.split(",") if t]
    if "moto" in targets and importlib.util.find_spec("moto") is None:
        print("moto is not installed: skipping it", file=sys.stderr)
        targets.remove("moto")
    all_cases = cases(args.seconds, parse_size(args.small), parse_size(args.big))
    huge = parse_size(args.huge) if args.huge else 0
    with tempfile.TemporaryDirectory(prefix="bench_s3_") as tmp:
        capacity = client_capacity(Path(tmp), min(args.seconds, 3.0))
        srvs = servers(Path(tmp), targets, args.fsync, args.s3sim_arg, workers)
        data = bench_servers(srvs, all_cases, args.repeat, huge)
    if args.json:
        doc = as_json(all_cases, data)
        doc["client_capacity_ops_per_s"] = capacity
        doc["fsync"] = args.fsync
        doc["processes"] = workers
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(table(all_cases, data, huge, args.fsync))
        print(
            f"processes: baseline {workers['baseline']}, s3sim {workers['s3sim']} "
            "(moto: one process, threaded); peak RSS sums the processes"
        )
        print(
            f"load generator vs a server that answers at once (32 workers): "
            f"4KiB PUT {capacity['put']:,.0f} ops/s, GET {capacity['get']:,.0f} ops/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
