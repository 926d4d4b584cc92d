"""s3sim.malloc: freed memory stays with the process instead of being faulted in again."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from s3sim import malloc

CHURN = textwrap.dedent(
    """
    import resource, sys
    from s3sim import malloc
    if sys.argv[1] == "tuned":
        assert malloc.tune()
    def rounds(n):  # 20 socket-read-sized buffers alive at once, then all freed
        for _ in range(n):
            held = [bytes(256 << 10) for _ in range(20)]
            del held
    rounds(2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rounds(20)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_process_stops_faulting_freed_buffers_back_in():
    if not malloc.tune():
        pytest.skip("this C library has no mallopt")
    untuned, tuned = faults("default"), faults("tuned")
    assert untuned > 20 * 20 * 64 // 2  # glibc's default: most pages faulted every round
    assert tuned < untuned // 20


def test_tune_without_a_c_library_changes_nothing():
    assert malloc.tune("/nonexistent/libc.so") is False
