"""glibc malloc settings for a server process that streams big bodies.

A request body arrives in socket reads of up to 256 KiB and is sealed in 1 MiB batches.
With glibc's defaults the memory freed at the top of the heap after each request is
handed back to the kernel (trimmed) and faulted in again, zeroed, by the next one:
~10,000 page faults and ~20 ms of kernel CPU per 64 MiB PUT in each server process
(docs/PERFORMANCE.md, session 3). Keeping up to TRIM_THRESHOLD of free memory at the top
of the heap, and serving allocations below MMAP_THRESHOLD from the heap instead of fresh
mappings, takes that to a handful. The price: a process may keep up to TRIM_THRESHOLD
of freed memory resident.

Only glibc has these knobs; elsewhere `tune` changes nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 32 << 20
MMAP_THRESHOLD = 4 << 20


def tune(libc_name: str | None = None) -> bool:
    """Apply both settings to this process; False if its C library has no mallopt that
    accepted them (nothing is changed then)."""
    try:
        libc = ctypes.CDLL(libc_name or ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
