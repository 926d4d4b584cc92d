"""Sizes ("4KiB", "64MiB", "1.5MB", "100") and weighted size distributions ("4KiB:80,1MiB:20")."""

from __future__ import annotations

import bisect
import random
import re

from kmscore.frozen import frozen

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ValueError(f"bad size {text!r} (examples: 4096, 4KiB, 64MiB, 1GB)")
    return int(float(m.group(1)) * _UNITS[unit])


def format_size(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"


@frozen
class SizeDist:
    """Object sizes with integer weights; `pick` draws one."""

    sizes: tuple[int, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def single(cls, size: int) -> SizeDist:
        return cls((size,), (1,))

    @classmethod
    def parse(cls, text: str) -> SizeDist:
        sizes: list[int] = []
        cum: list[int] = []
        total = 0
        for item in text.split(","):
            size_text, sep, weight_text = item.strip().rpartition(":")
            if not sep:
                size_text, weight_text = weight_text, "1"
            weight = int(weight_text)
            if weight <= 0:
                raise ValueError(f"weight must be positive in {item!r}")
            total += weight
            sizes.append(parse_size(size_text))
            cum.append(total)
        if not sizes:
            raise ValueError("empty size distribution")
        return cls(tuple(sizes), tuple(cum))

    @property
    def max_size(self) -> int:
        return max(self.sizes)

    def pick(self, rng: random.Random) -> int:
        if len(self.sizes) == 1:
            return self.sizes[0]
        return self.sizes[bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]

    def describe(self) -> str:
        weights = [b - a for a, b in zip((0, *self.cumulative), self.cumulative, strict=False)]
        if len(self.sizes) == 1:
            return format_size(self.sizes[0])
        return ",".join(f"{format_size(s)}:{w}" for s, w in zip(self.sizes, weights, strict=True))
