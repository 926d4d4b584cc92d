"""Read jobs that run on the event loop when the page cache holds what they read.

Every read of a job asks for RWF_NOWAIT: the kernel answers from the page cache or not at
all. A job that meets a byte it would have to wait for (WouldBlock) runs again from its
start on an executor thread, so the event loop never waits for the disk, and a job whose
bytes are cached (an object just written, the common case here) costs no thread hand-off:
~95 us of CPU on this project's VM, more than reading and decrypting 1 MiB from the page
cache (docs/PERFORMANCE.md, sessions 6 and 7).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from kmscore import envelope as env

T = TypeVar("T")
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)  # Linux 4.14 and later


class WouldBlock(Exception):
    """A read on the event loop found bytes that are not in the page cache."""


def pread(fd: int, n: int, offset: int, nowait: bool = False) -> bytearray:
    buf = bytearray(n)
    preadv(fd, memoryview(buf), offset, nowait)
    return buf


def preadv(fd: int, buf: memoryview, offset: int, nowait: bool = False) -> None:
    """Fill `buf`; `nowait`: only from the page cache (RWF_NOWAIT), else WouldBlock (also
    where the system cannot tell: no RWF_NOWAIT, or a file system that refuses it)."""
    if nowait and not _NOWAIT:
        raise WouldBlock
    try:
        n = os.preadv(fd, [buf], offset, _NOWAIT if nowait else 0)
    except BlockingIOError:
        raise WouldBlock from None
    except OSError as e:
        if nowait and e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            raise WouldBlock from None
        raise
    if n != len(buf):
        if nowait:  # some of it is cached, or the file is short: the thread tells which
            raise WouldBlock
        raise env.PayloadError("short read (file changed under the reader?)")


def at_once(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` now, on the event loop, as a done future (its outcome, an exception
    included, is read when awaited): a job's result where the caller expects a future."""
    done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    try:
        done.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the job
        done.set_exception(exc)
    return done


def job(executor: Executor | None, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run a read job now, on the event loop, if every byte it reads is in the page cache
    (its reads ask for RWF_NOWAIT); else on an executor thread, from its start again (a
    read job changes nothing before its last read). As a future either way. A thread
    hand-off costs more CPU here than reading and decrypting 1 MiB from the page cache
    (docs/PERFORMANCE.md, sessions 6 and 7); the loop never waits for the disk."""
    done = at_once(fn, *args, True)
    if isinstance(done.exception(), WouldBlock):
        return asyncio.get_running_loop().run_in_executor(executor, fn, *args, False)
    return done
