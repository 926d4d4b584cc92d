"""Exact latency statistics: every latency of a bounded run is kept, percentiles are exact.

Semantics: an op is one request of a workload (or one end-to-end item for `ingest`).
A successful op records its latency and payload bytes; a failed op records only its
error code. Percentiles use the nearest-rank method over the successful ops' latencies.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field

from kmscore.frozen import frozen

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass
class Series:
    latencies: array = field(default_factory=lambda: array("d"))
    nbytes: int = 0
    errors: Counter = field(default_factory=Counter)
    in_total: bool = True


@frozen
class OpSummary:
    name: str
    ops: int
    errors: int
    nbytes: int
    ops_per_s: float
    mb_per_s: float
    latency_ms: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "op": self.name,
            "ops": self.ops,
            "errors": self.errors,
            "bytes": self.nbytes,
            "ops_per_s": round(self.ops_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 2),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
        }


@frozen
class Summary:
    elapsed_s: float
    ops: tuple[OpSummary, ...]
    total: OpSummary
    errors: dict[str, int]


def percentile(sorted_values: list[float] | array, p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (p in (0, 100])."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(p * n / 100.0 - 1e-9))
    return sorted_values[min(rank, n) - 1]


def latency_summary(latencies_s: list[float] | array) -> dict[str, float]:
    values = sorted(latencies_s)
    out = {f"p{p:g}": percentile(values, p) * 1000.0 for p in PERCENTILES}
    out["max"] = (values[-1] * 1000.0) if values else math.nan
    out["mean"] = (sum(values) / len(values) * 1000.0) if values else math.nan
    return out


class Recorder:
    """Collects ops by name; cheap enough to call on every request."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        self.ok = 0
        self.failed = 0
        self.nbytes = 0

    def declare(self, name: str, in_total: bool) -> None:
        """Name a series up front; one with in_total=False (e.g. ingest's end-to-end
        latency) gets its own row but is left out of the total and the progress line."""
        self.series.setdefault(name, Series(in_total=in_total))

    def _series(self, name: str) -> Series:
        s = self.series.get(name)
        if s is None:
            s = self.series[name] = Series()
        return s

    def success(self, name: str, latency_s: float, nbytes: int = 0) -> None:
        s = self._series(name)
        s.latencies.append(latency_s)
        s.nbytes += nbytes
        if s.in_total:
            self.ok += 1
            self.nbytes += nbytes

    def error(self, name: str, code: str) -> None:
        s = self._series(name)
        s.errors[code] += 1
        if s.in_total:
            self.failed += 1

    def summary(self, elapsed_s: float) -> Summary:
        elapsed = max(elapsed_s, 1e-9)
        ops = tuple(self._op(name, s, elapsed) for name, s in self.series.items())
        all_lat = array("d")
        errors: Counter = Counter()
        for s in self.series.values():
            errors.update(s.errors)
            if s.in_total:
                all_lat.extend(s.latencies)
        total = OpSummary(
            "total",
            self.ok,
            self.failed,
            self.nbytes,
            self.ok / elapsed,
            self.nbytes / elapsed / 1e6,
            latency_summary(all_lat),
        )
        return Summary(elapsed_s, ops, total, dict(errors.most_common()))

    @staticmethod
    def _op(name: str, s: Series, elapsed: float) -> OpSummary:
        n = len(s.latencies)
        return OpSummary(
            name,
            n,
            sum(s.errors.values()),
            s.nbytes,
            n / elapsed,
            s.nbytes / elapsed / 1e6,
            latency_summary(s.latencies),
        )
