"""Immutable blob files under <root>/<2 hex>/<32 hex id>, written atomically.

A BlobWriter writes a hidden temp file in the final directory, then on commit
fsyncs it (optional), renames it into place and fsyncs the directory. A crash
before the rename leaves only a temp file, which the startup sweep removes. All
methods block: async callers run them in a thread executor.

With `grace_seconds` (several server processes share the store, s3sim/workers.py) a
deleted blob is first moved to <root>/trash/ and removed only after the grace period:
a reader in another process that found the blob in the index just before the delete
can still open it there. Each process pins the blobs its own readers use (s3/blobs.py);
the grace period stands in for pins across processes. `delete(..., grace=False)` skips
it, for blobs whose readers keep them open from the moment they verified them.

Kept files (with fsync, in a store whose deleted blobs nobody reads: Connect's staging):
a deleted blob's file stays where it is, and a later blob of the same process is written
into it in place under the same id (overwritten from its first byte, truncated to what
was written, fsynced); nothing is renamed, so no directory changes and no OS crash can
leave a file under two names (which rules out spare files with fsync, spares.py); its
name is durable since its first commit (such a store commits every blob with fsync). Until
the new blob's commit names it, such a file is unreferenced: a crash leaves an orphan
for the startup sweep. A file whose write is aborted is removed. At most KEEP_CAP per
process; those left at exit are orphans too.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from s3sim.storage.errors import InvalidBlobId, MissingBlob, StorageError
from s3sim.storage.spares import Spares

ID_BYTES = 16
KEEP_CAP = 64  # kept files per store and process
_ID = re.compile(r"[0-9a-f]{32}")


@lru_cache(maxsize=4096)  # hot blobs are opened again and again; an invalid id raises
def _blob_path(root: str, blob_id: str) -> str:
    if not _ID.fullmatch(blob_id):
        raise InvalidBlobId(f"invalid blob id {blob_id!r}")
    return f"{root}/{blob_id[:2]}/{blob_id}"


_DIR = re.compile(r"[0-9a-f]{2}")
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FAN_OUT = [f"{i:02x}" for i in range(256)]
TEMP_SUFFIX = ".tmp"
TRASH = "trash"


def _fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Blob files on a local file system (the seam a remote backend would implement)."""

    def __init__(
        self,
        root: Path | str,
        fsync: bool = True,
        rng: Callable[[int], bytes] = os.urandom,
        sweep: bool = True,
        grace_seconds: float = 0.0,
        now: Callable[[], float] = time.time,
        spares: Spares | None = None,
        give_spares: bool = False,
        fan_out_ahead: bool = False,
    ) -> None:
        """`spares` (storage/spares.py): new blobs reuse spare files; `give_spares`: this
        store's deleted blobs become spares (only where nobody reads a deleted blob).
        `fan_out_ahead`: the first blob written starts a thread that creates every
        fan-out directory (a store written all the time, such as Connect's staging;
        without fsync only)."""
        self.root = Path(root)
        self._root = str(self.root)
        self.fsync = fsync
        self.rng = rng
        self.root.mkdir(parents=True, exist_ok=True)
        self._dirs: set[str] = set()  # fan-out directories known to exist (a cache)
        # never with fsync: an OS crash could then leave one file under two names (spares.py)
        self._spares = None if fsync else spares
        self._give = self._spares if give_spares and not grace_seconds else None
        # with fsync, deleted files are kept in place for the next blobs instead
        self._kept: list[str] | None = [] if give_spares and fsync and not grace_seconds else None
        self._kept_lock = threading.Lock()
        # not with fsync: a writer could find its directory made but not yet synced
        self._fan_out_ahead = fan_out_ahead and not fsync
        self._grace = grace_seconds
        self._now = now
        self._trash = f"{self._root}/{TRASH}"
        self._purged_at = now()
        if grace_seconds:
            os.makedirs(self._trash, exist_ok=True)
        if sweep:
            self.sweep_temps()
            self.purge_trash(older_than=0.0)

    def new_id(self) -> str:
        return self.rng(ID_BYTES).hex()

    def path(self, blob_id: str) -> Path:
        return Path(self.path_str(blob_id))

    def path_str(self, blob_id: str) -> str:
        """The blob's path as a string (no Path objects on the per-request path)."""
        if not isinstance(blob_id, str):
            raise InvalidBlobId(f"invalid blob id {blob_id!r}")
        return _blob_path(self._root, blob_id)

    def create(self) -> BlobWriter:
        """A writer for a new blob; its id is fresh (and never an existing blob's)."""
        if self._fan_out_ahead:
            self._fan_out_ahead = False
            threading.Thread(target=self._fan_out_quietly, name="blob-dirs", daemon=True).start()
        while (kept := self._take_kept()) is not None:
            with contextlib.suppress(FileNotFoundError):  # else: gone since, take another
                return BlobWriter(self, kept, in_place=True)
        for _ in range(4):
            blob_id = self.new_id()
            if not os.path.exists(self.path_str(blob_id)):
                return BlobWriter(self, blob_id)
        raise StorageError("blob ids keep colliding: is the rng random?")

    def _take_kept(self) -> str | None:
        if not self._kept:
            return None
        with self._kept_lock:
            return self._kept.pop() if self._kept else None

    def _keep(self, blob_id: str) -> bool:
        """Keep a deleted blob's file for reuse in place (see the module docstring)."""
        assert self._kept is not None
        with self._kept_lock:
            if len(self._kept) >= KEEP_CAP or blob_id in self._kept:
                return False
            if not os.path.isfile(self.path_str(blob_id)):
                return False
            self._kept.append(blob_id)
            return True

    def open_read(self, blob_id: str) -> BinaryIO:
        try:
            return open(self.path(blob_id), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise MissingBlob(blob_id) from None

    def open_fd(self, blob_id: str) -> int:
        """A raw read-only file descriptor (the caller closes it)."""
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path_str(blob_id), flags)
        except FileNotFoundError:
            if not self._grace:
                raise MissingBlob(blob_id) from None
        try:  # deleted by another process a moment ago: still readable in the trash
            return os.open(f"{self._trash}/{blob_id}", flags)
        except FileNotFoundError:
            raise MissingBlob(blob_id) from None

    def exists(self, blob_id: str) -> bool:
        return self.path(blob_id).is_file()

    def delete(self, blob_id: str, grace: bool = True) -> bool:
        """Remove a blob (to the trash, with a grace period, unless `grace` is False);
        False if it was already gone."""
        path = self.path_str(blob_id)
        if self._give is not None and self._give.give(path, blob_id):
            return True
        if self._kept is not None and self._keep(blob_id):
            return True
        try:
            if self._grace and grace:
                os.rename(path, f"{self._trash}/{blob_id}")  # ctime: when it was deleted
            else:
                os.unlink(path)
        except FileNotFoundError:
            return False
        if self._grace and self._now() - self._purged_at >= self._grace / 4:
            self.purge_trash()
        return True

    def purge_trash(self, older_than: float | None = None) -> int:
        """Remove trashed blobs deleted more than `older_than` (default: the grace period)
        seconds ago; returns the count."""
        self._purged_at = now = self._now()
        limit = now - (self._grace if older_than is None else older_than)
        n = 0
        try:
            entries = list(os.scandir(self._trash))
        except FileNotFoundError:
            return 0
        for e in entries:
            with contextlib.suppress(FileNotFoundError):
                if e.stat().st_ctime <= limit:
                    os.unlink(e.path)
                    n += 1
        return n

    def list_ids(self) -> Iterator[str]:
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and _DIR.fullmatch(d.name):
                for f in sorted(d.iterdir()):
                    if _ID.fullmatch(f.name) and f.name.startswith(d.name):
                        yield f.name

    def sweep_temps(self) -> int:
        """Remove temp files left by writes that never committed; returns the count."""
        n = 0
        for d in self.root.iterdir():
            if not (d.is_dir() and _DIR.fullmatch(d.name)):
                continue
            for f in d.iterdir():
                if f.name.startswith(".") and f.name.endswith(TEMP_SUFFIX):
                    with contextlib.suppress(FileNotFoundError):
                        f.unlink()
                        n += 1
        return n

    def make_fan_out(self) -> int:
        """Create every missing fan-out directory; returns how many. A fresh store's
        first writes otherwise create them one by one: ~0.5 ms of kernel CPU each on this
        project's ext4 under churn (docs/PERFORMANCE.md, session 5)."""
        made = [d for d in _FAN_OUT if not os.path.isdir(f"{self._root}/{d}")]
        for d in made:
            os.makedirs(f"{self._root}/{d}", exist_ok=True)
        if made and self.fsync:
            _fsync_dir(self.root)  # before a writer skips that sync for a known dir
        self._dirs.update(f"{self._root}/{d}" for d in _FAN_OUT)
        return len(made)

    def _fan_out_quietly(self) -> None:
        with contextlib.suppress(OSError):  # the store went away (a test's temp dir): no matter
            self.make_fan_out()

    def _open_temp(self, blob_id: str) -> tuple[str, int, bool, bool]:
        """Create the temp file of a new blob: (path, fd, whether its directory is new,
        whether the file is a spare, to be truncated to what is written)."""
        d = f"{self._root}/{blob_id[:2]}"
        temp = f"{d}/.{blob_id}.{self.rng(8).hex()}{TEMP_SUFFIX}"
        new_dir = False
        if d not in self._dirs:
            new_dir = not os.path.isdir(d)
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)
        if self._spares is not None and self._spares.take(temp):
            with contextlib.suppress(FileNotFoundError):  # else: gone since, create one
                return temp, os.open(temp, os.O_WRONLY | _CLOEXEC), new_dir, True
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
        try:
            fd = os.open(temp, flags, 0o600)
        except FileNotFoundError:  # the directory went away since it was cached
            new_dir = True
            os.makedirs(d, exist_ok=True)
            fd = os.open(temp, flags, 0o600)
        return temp, fd, new_dir, False


class BlobWriter:
    """One blob being written. Use as a context manager: an exception aborts it."""

    def __init__(self, store: BlobStore, blob_id: str, in_place: bool = False) -> None:
        """`in_place`: `blob_id` names a kept file, written over where it is (raises
        FileNotFoundError if it is gone)."""
        self.store = store
        self.blob_id = blob_id
        self.final = store.path_str(blob_id)
        self._in_place = in_place
        if in_place:
            self.temp, self._new_dir, self._spare = self.final, False, True
            fd = os.open(self.final, os.O_WRONLY | _CLOEXEC)
        else:
            self.temp, fd, self._new_dir, self._spare = store._open_temp(blob_id)
        self._fd: int | None = fd
        self.size = 0
        self.committed = False

    def write(self, data: bytes | memoryview) -> None:
        self.writev([data])

    def writev(self, buffers: list[bytes | memoryview]) -> None:
        if self._fd is None:
            raise ValueError("blob writer is closed")
        views = [memoryview(b) for b in buffers if len(b)]
        while views:
            n = os.writev(self._fd, views)
            self.size += n
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]

    def commit(self, fsync: bool | None = None) -> str:
        """Make the blob durable (if fsync) and visible under its id."""
        if self._fd is None:
            raise ValueError("blob writer is closed")
        durable = self.store.fsync if fsync is None else fsync
        fd, self._fd = self._fd, None
        try:
            if self._spare:  # a reused file: drop whatever it held past what was written
                os.ftruncate(fd, self.size)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self._in_place:  # its name was made durable when the file was first written
            self.committed = True
            return self.blob_id
        os.replace(self.temp, self.final)
        self.committed = True
        if durable:
            _fsync_dir(os.path.dirname(self.final))
            if self._new_dir:
                _fsync_dir(self.store.root)
        return self.blob_id

    def abort(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
