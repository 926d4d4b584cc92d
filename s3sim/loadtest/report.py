"""The end-of-run table and the --json document."""

from __future__ import annotations

import math

from s3sim.loadtest.stats import OpSummary, Summary

_COLUMNS = ("op", "ops", "ops/s", "MB/s", "p50", "p90", "p99", "p99.9", "max", "errors")


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.2f}"


def _row(op: OpSummary) -> list[str]:
    lat = op.latency_ms
    return [
        op.name,
        str(op.ops),
        f"{op.ops_per_s:.1f}",
        f"{op.mb_per_s:.2f}",
        *(_ms(lat[k]) for k in ("p50", "p90", "p99", "p99.9", "max")),
        str(op.errors),
    ]


def format_table(summary: Summary, meta: dict[str, object]) -> str:
    rows = [list(_COLUMNS)] + [_row(op) for op in summary.ops]
    if len(summary.ops) != 1:
        rows.append(_row(summary.total))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [" ".join(f"{k}={v}" for k, v in meta.items())]
    lines.append(f"elapsed {summary.elapsed_s:.2f} s; latencies in ms")
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    if summary.errors:
        lines.append("errors by code: " + ", ".join(f"{k}={v}" for k, v in summary.errors.items()))
    return "\n".join(lines)


def to_json(summary: Summary, meta: dict[str, object]) -> dict:
    def clean(d: dict) -> dict:
        lat = {k: (None if math.isnan(v) else v) for k, v in d["latency_ms"].items()}
        return {**d, "latency_ms": lat}

    return {
        "config": meta,
        "elapsed_s": round(summary.elapsed_s, 3),
        "total": clean(summary.total.as_dict()),
        "ops": [clean(op.as_dict()) for op in summary.ops],
        "errors": summary.errors,
    }
