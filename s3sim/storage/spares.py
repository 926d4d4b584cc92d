"""Spare files: deleted blob files kept for reuse by the next blob written.

A new file costs the file system an inode. On ext4 without a journal (this project's
machines) allocating one skips every inode of its group freed in the last 60-360 s
(`recently_deleted`), so under churn, a recording staged, delivered and deleted every
few milliseconds, each create scans thousands of them: half a millisecond of kernel CPU,
more than sealing the 1 MiB it holds (docs/PERFORMANCE.md, session 5). A spare file is
renamed into place instead and overwritten; nothing is allocated or freed.

Only files nobody reads any more are given (the Connect staging store's, after their
item was delivered); any store may take one. A spare holds ciphertext of a blob that is
gone, never plaintext, and is overwritten from its first byte (the writer truncates it
to what it wrote). Not with fsync: without a journal, a rename that recycled a file
could reach the disk after the write that reused it, and an OS crash could then leave
one file under two names (with fsync, storage/blobstore.py keeps files in place instead).

Each process keeps its own list of the spares it gave; taking one is a rename, which
fails harmlessly if the file went away. At most `cap` spares per process, each at most
`max_bytes`; the process that sweeps at startup removes those left by an earlier run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CAP = 64
MAX_BYTES = 16 << 20


class Spares:
    def __init__(
        self, root: Path | str, cap: int = CAP, max_bytes: int = MAX_BYTES, clear: bool = True
    ) -> None:
        self.root = str(root)
        self._cap = cap
        self._max_bytes = max_bytes
        self._names: list[str] = []
        os.makedirs(self.root, exist_ok=True)
        if clear:
            self.clear()

    def __len__(self) -> int:
        return len(self._names)

    def clear(self) -> int:
        """Remove every spare file (an earlier run's); returns the count."""
        self._names.clear()
        n = 0
        for e in os.scandir(self.root):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(e.path)
                n += 1
        return n

    def give(self, path: str, name: str) -> bool:
        """Move the file at `path` (deleted by its owner) here; False if it is not kept
        (full, too big, or gone), and the caller deletes it as before."""
        if len(self._names) >= self._cap:
            return False
        try:
            if os.stat(path).st_size > self._max_bytes:
                return False
            os.rename(path, f"{self.root}/{name}")
        except OSError:  # gone, or (EXDEV) on another file system: not kept
            return False
        self._names.append(name)
        return True

    def take(self, dest: str) -> bool:
        """Rename a spare file to `dest` (same file system); False if there is none."""
        while True:
            try:
                name = self._names.pop()
            except IndexError:
                return False
            try:
                os.rename(f"{self.root}/{name}", dest)
            except FileNotFoundError:  # taken or cleared since: the next one
                continue
            except OSError:  # e.g. another file system: the caller creates a file
                return False
            return True
