"""The S3 metadata index: SQLite (WAL), the commit point of every write.

Rows are plain values; `meta` columns are opaque (text or bytes) owned by the caller (the S3
layer). A key points to one immutable object version (its blob ids live in
`segments`, a JSON list); an overwrite replaces the row in one transaction and the
caller deletes the replaced blob files after the commit. Blob files no row references
are orphans (a crash between blob write and commit) and are removed at startup. A small
object's sealed file may live here instead (`inline_files`, s3sim/storage/inline.py), one
per key: written, replaced and deleted in the same transaction as its row, so never
garbage. Keyed by (bucket, key) rather than by blob id, so that overwriting a small object
with another rewrites one row in place (SQLite overwrites a cell of the same size where it
is) instead of deleting one and inserting another: ~9 instead of ~19 WAL writes per
commit, 61-70 instead of 78-81 us per transaction (measured beside the objects table).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from kmscore.frozen import frozen
from kmscore.shared import Generation, SharedCell
from s3sim.storage.inline import PREFIX, is_inline
from s3sim.storage.sqlitedb import Database

BUCKET_CACHE_MAX = 4096
OBJECT_CACHE_MAX = 4096
# sealed inline blobs kept beside their rows: at most ~17 MiB per process
INLINE_CACHE_MAX = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, account TEXT NOT NULL, owner_arn TEXT NOT NULL,
    region TEXT NOT NULL, created REAL NOT NULL, encryption TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, object_id TEXT NOT NULL,
    size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified REAL NOT NULL,
    owner_account TEXT NOT NULL, segments TEXT NOT NULL, meta TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL,
    initiated REAL NOT NULL, owner_account TEXT NOT NULL, meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, blob_id TEXT NOT NULL,
    size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified REAL NOT NULL, meta TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inline_files (
    bucket TEXT NOT NULL, key TEXT NOT NULL, blob_id TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (bucket, key)
);
"""


@frozen
class BucketRow:
    name: str
    account: str
    owner_arn: str
    region: str
    created: float
    encryption: str | None = None


@frozen
class ObjectRow:
    bucket: str
    key: str
    object_id: str
    size: int
    etag: str
    last_modified: float
    owner_account: str
    segments: str  # JSON list of [blob_id, size]
    meta: str | bytes  # the S3 layer's (s3sim/s3/codec.py)

    def blob_ids(self) -> list[str]:
        return [s[0] for s in json.loads(self.segments)]


@frozen
class UploadRow:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    owner_account: str
    meta: str | bytes  # the S3 layer's (s3sim/s3/codec.py)


@frozen
class PartRow:
    upload_id: str
    part_number: int
    blob_id: str
    size: int
    etag: str
    last_modified: float
    meta: str | bytes  # the S3 layer's (s3sim/s3/codec.py)


@frozen
class ObjectPut:
    """One `Index.put_object`: the new row, the check to run on the current one (may raise
    to refuse), and the new version's inline blob (blob id, sealed file)."""

    row: ObjectRow
    check: Callable[[ObjectRow | None], None] | None = None
    inline: tuple[str, bytes] | None = None


K = TypeVar("K")
V = TypeVar("V")


class RowCache(Generic[K, V]):
    """Rows read before, valid while a change counter (kmscore.shared.Generation, shared
    by every process over the data dir) stands still: the counter is read before a row,
    and bumped (`changed`) after every transaction that may change such rows. Bounded:
    emptied when full."""

    def __init__(self, counter: Generation, max_entries: int) -> None:
        self._counter = counter
        self._max = max_entries
        self._rows: dict[K, tuple[int, V | None]] = {}

    def get(self, key: K, load: Callable[[], V | None]) -> V | None:
        gen = self._counter.value()
        hit = self._rows.get(key)
        if hit is not None and hit[0] == gen:
            return hit[1]
        row = load()
        if len(self._rows) >= self._max:
            self._rows.clear()
        self._rows[key] = (gen, row)
        return row

    def changed(self) -> None:
        self._counter.bump()

    def __len__(self) -> int:
        return len(self._rows)


def _counter(path: Path, shared: bool) -> Generation:
    return Generation(SharedCell(path) if shared else None)


class Index(Database):
    """Thread-safe (one connection behind a lock); every method is one transaction.

    With `fsync`, a COMMIT waits for the disk: writers may then run on a worker thread
    (s3sim/s3/commits.py), and the hot reads use a second, read-only connection behind its
    own lock, so they never wait behind a commit's fsync (WAL readers see the last
    committed state; a commit that has returned is visible to every later read).
    """

    def __init__(self, path: Path, fsync: bool = True, shared: bool = False) -> None:
        super().__init__(path, _SCHEMA, fsync, shared)
        # bucket rows change rarely and are read by every request: cached, and dropped
        # when any process (shared: a cell beside the database) changes a bucket
        self._buckets: RowCache[str, BucketRow] = RowCache(
            _counter(path.parent / "buckets.gen", shared), BUCKET_CACHE_MAX
        )
        # object rows likewise, behind a counter every object write bumps: a GET of a key
        # read before skips SQLite until any process writes any object; so do the sealed
        # bytes of its inline blob (every GET still verifies and decrypts them)
        objects = _counter(path.parent / "objects.gen", shared)
        self._objects: RowCache[tuple[str, str], ObjectRow] = RowCache(objects, OBJECT_CACHE_MAX)
        self._inline: RowCache[tuple[str, str, str], bytes] = RowCache(objects, INLINE_CACHE_MAX)
        self._rdb = self._db
        self._rlock: threading.RLock | threading.Lock = self._lock
        if fsync:
            self._rdb = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._rdb.execute("PRAGMA query_only=ON")
            self._rlock = threading.Lock()

    def close(self) -> None:
        if self._rdb is not self._db:
            with self._rlock:
                self._rdb.close()
        super().close()

    def _read_one(self, sql: str, args: tuple) -> Any:
        with self._rlock:
            return self._rdb.execute(sql, args).fetchone()

    @contextmanager
    def _changing(self, rows: RowCache) -> Iterator[sqlite3.Connection]:
        """A transaction that changes cached rows: every process's copies are dropped
        after it (after a failed one too: a spare bump costs one miss)."""
        try:
            with self.tx() as db:
                yield db
        finally:
            rows.changed()

    # -- buckets -------------------------------------------------------------------

    def create_bucket(self, row: BucketRow) -> BucketRow | None:
        """Insert; returns the existing row instead when the name is taken."""
        with self._changing(self._buckets) as db:
            cur = db.execute("SELECT * FROM buckets WHERE name=?", (row.name,)).fetchone()
            if cur:
                return BucketRow(*cur)
            db.execute("INSERT INTO buckets VALUES (?,?,?,?,?,?)", _values(row))
            return None

    def get_bucket(self, name: str) -> BucketRow | None:
        return self._buckets.get(name, lambda: self._read_bucket(name))

    def _read_bucket(self, name: str) -> BucketRow | None:
        r = self._read_one("SELECT * FROM buckets WHERE name=?", (name,))
        return BucketRow(*r) if r else None

    def list_buckets(self, account: str) -> list[BucketRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM buckets WHERE account=? ORDER BY name", (account,)
            ).fetchall()
        return [BucketRow(*r) for r in rows]

    def delete_bucket(self, name: str) -> list[str] | None:
        """Delete a bucket without objects, with its in-progress uploads (as S3 does).

        Returns the dropped uploads' part blob ids (garbage); None when it has objects.
        """
        with self._changing(self._buckets) as db:
            if db.execute("SELECT 1 FROM objects WHERE bucket=? LIMIT 1", (name,)).fetchone():
                return None
            ids = [
                u for (u,) in db.execute("SELECT upload_id FROM uploads WHERE bucket=?", (name,))
            ]
            blobs: list[str] = []
            for upload_id in ids:
                parts = db.execute("SELECT blob_id FROM parts WHERE upload_id=?", (upload_id,))
                blobs += [b for (b,) in parts.fetchall()]
                db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE bucket=?", (name,))
            db.execute("DELETE FROM buckets WHERE name=?", (name,))
            return blobs

    def set_bucket_encryption(self, name: str, encryption: str | None) -> None:
        with self._changing(self._buckets) as db:
            db.execute("UPDATE buckets SET encryption=? WHERE name=?", (encryption, name))

    # -- objects -------------------------------------------------------------------

    def put_object(
        self,
        row: ObjectRow,
        check: Callable[[ObjectRow | None], None] | None = None,
        inline: tuple[str, bytes] | None = None,
    ) -> ObjectRow | None:
        """Point bucket/key at a new version; returns the replaced row (its blob files are
        garbage; its inline blobs are gone with it).

        `check(current)` runs inside the transaction and may raise to abort (conditional PUT).
        `inline`: (blob id, sealed file) of the new version, stored in the same commit.
        """
        (result,) = self.put_objects([ObjectPut(row, check, inline)])
        if isinstance(result, Exception):
            raise result
        return result

    def put_objects(self, puts: Sequence[ObjectPut]) -> list[ObjectRow | None | Exception]:
        """Several `put_object`s in one transaction (with fsync: one fsync), in order; each
        sees the ones before it. A put whose check raises is undone alone and gets the
        exception as its result; the others commit."""
        out: list[ObjectRow | None | Exception] = []
        with self._changing(self._objects) as db:
            for p in puts:
                out.append(_put(db, p) if p.check is None else _put_checked(db, p))
        return out

    def inline_blob(self, bucket: str, key: str, blob_id: str) -> bytes | None:
        """An inline blob's sealed file; None once the version that named it was replaced.
        Cached like the object rows (dropped by any object write in any process)."""

        def load() -> bytes | None:
            r = self._read_one(
                "SELECT data FROM inline_files WHERE bucket=? AND key=? AND blob_id=?",
                (bucket, key, blob_id),
            )
            return r[0] if r else None

        return self._inline.get((bucket, key, blob_id), load)

    def get_object(self, bucket: str, key: str, fresh: bool = False) -> ObjectRow | None:
        """The key's row; `fresh`: from the database, not this process's cache."""
        if fresh:
            return self._read_object(bucket, key)
        return self._objects.get((bucket, key), lambda: self._read_object(bucket, key))

    def _read_object(self, bucket: str, key: str) -> ObjectRow | None:
        with self._rlock:
            return _object(self._rdb, bucket, key)

    def delete_object(self, bucket: str, key: str) -> ObjectRow | None:
        with self._changing(self._objects) as db:
            old = _object(db, bucket, key)
            if old:
                db.execute("DELETE FROM objects WHERE bucket=? AND key=?", (bucket, key))
                _drop_inline(db, old)
            return old

    def scan_objects(
        self, bucket: str, lower: str, inclusive: bool, upper: str | None, limit: int
    ) -> list[ObjectRow]:
        """Objects with lower <(=) key < upper, in UTF-8 byte order (indexed range scan)."""
        op = ">=" if inclusive else ">"
        sql = f"SELECT * FROM objects WHERE bucket=? AND key {op} ?"
        args: tuple = (bucket, lower)
        if upper is not None:
            sql += " AND key < ?"
            args += (upper,)
        with self._rlock:
            rows = self._rdb.execute(sql + " ORDER BY key LIMIT ?", (*args, limit)).fetchall()
        return [ObjectRow(*r) for r in rows]

    # -- multipart -----------------------------------------------------------------

    def create_upload(self, row: UploadRow) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO uploads VALUES (?,?,?,?,?,?)", _values(row))

    def get_upload(self, upload_id: str) -> UploadRow | None:
        r = self._read_one("SELECT * FROM uploads WHERE upload_id=?", (upload_id,))
        return UploadRow(*r) if r else None

    def list_uploads(
        self, bucket: str, prefix: str, key_marker: str, id_marker: str, limit: int
    ) -> list[UploadRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM uploads WHERE bucket=? AND key >= ? AND key < ? AND "
                "(key > ? OR (key = ? AND upload_id > ?)) ORDER BY key, upload_id LIMIT ?",
                (bucket, prefix, prefix_upper(prefix), key_marker, key_marker, id_marker, limit),
            ).fetchall()
        return [UploadRow(*r) for r in rows]

    def put_part(self, row: PartRow) -> PartRow | None:
        """Store a part (KeyError when the upload is gone); returns the replaced part, if any."""
        with self.tx() as db:
            if not db.execute(
                "SELECT 1 FROM uploads WHERE upload_id=?", (row.upload_id,)
            ).fetchone():
                raise KeyError(row.upload_id)
            old = db.execute(
                "SELECT * FROM parts WHERE upload_id=? AND part_number=?",
                (row.upload_id, row.part_number),
            ).fetchone()
            db.execute("INSERT OR REPLACE INTO parts VALUES (?,?,?,?,?,?,?)", _values(row))
            return PartRow(*old) if old else None

    def list_parts(self, upload_id: str, after: int = 0, limit: int = 10_000) -> list[PartRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM parts WHERE upload_id=? AND part_number > ? "
                "ORDER BY part_number LIMIT ?",
                (upload_id, after, limit),
            ).fetchall()
        return [PartRow(*r) for r in rows]

    def complete_upload(
        self, upload_id: str, row: ObjectRow, used_blobs: set[str]
    ) -> list[str] | None:
        """Commit the object and drop the upload; returns garbage blob ids (None: no upload)."""
        with self._changing(self._objects) as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone():
                return None
            parts = db.execute("SELECT blob_id FROM parts WHERE upload_id=?", (upload_id,))
            garbage = [b for (b,) in parts.fetchall() if b not in used_blobs]
            old = _object(db, row.bucket, row.key)
            if old:
                garbage += [b for b in old.blob_ids() if not is_inline(b)]
                _drop_inline(db, old)
            db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?,?,?)", _values(row))
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            return garbage

    def abort_upload(self, upload_id: str) -> list[str] | None:
        """Drop an upload and its parts; returns their blob ids (None: no such upload)."""
        with self.tx() as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone():
                return None
            parts = db.execute("SELECT blob_id FROM parts WHERE upload_id=?", (upload_id,))
            blobs = [b for (b,) in parts.fetchall()]
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            return blobs

    # -- garbage -------------------------------------------------------------------

    def referenced_blobs(self) -> set[str]:
        """Every blob id a committed row points to (for orphan cleanup at startup)."""
        with self._lock:
            out = {b for (b,) in self._db.execute("SELECT blob_id FROM parts")}
            for (segs,) in self._db.execute("SELECT segments FROM objects"):
                out.update(s[0] for s in json.loads(segs))
        return out


def prefix_upper(prefix: str) -> str:
    """The least string greater than every string that starts with `prefix`."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < 0x10FFFF:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return "\U0010ffff" * 64


def _object(db: sqlite3.Connection, bucket: str, key: str) -> ObjectRow | None:
    r = db.execute("SELECT * FROM objects WHERE bucket=? AND key=?", (bucket, key)).fetchone()
    return ObjectRow(*r) if r else None


def _put(db: sqlite3.Connection, p: ObjectPut) -> ObjectRow | None:
    row = p.row
    old = _object(db, row.bucket, row.key)
    if p.check is not None:
        p.check(old)
    if p.inline is not None:
        db.execute(_UPSERT_INLINE, (row.bucket, row.key, *p.inline))
    else:
        _drop_inline(db, old)
    db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?,?,?)", _values(row))
    return old


def _put_checked(db: sqlite3.Connection, p: ObjectPut) -> ObjectRow | Exception | None:
    """`_put` inside a savepoint: a refusing check undoes this put only."""
    db.execute("SAVEPOINT put")
    try:
        old = _put(db, p)
    except Exception as exc:  # noqa: BLE001 - the check's verdict, handed to its caller
        db.execute("ROLLBACK TO put")
        db.execute("RELEASE put")
        return exc
    db.execute("RELEASE put")
    return old


_UPSERT_INLINE = (
    "INSERT INTO inline_files VALUES (?,?,?,?) ON CONFLICT (bucket, key) "
    "DO UPDATE SET blob_id=excluded.blob_id, data=excluded.data"
)


def _drop_inline(db: sqlite3.Connection, old: ObjectRow | None) -> None:
    """Delete the inline blob of a version being replaced or deleted (same transaction)."""
    # an inline id is the only string in `segments` that starts with PREFIX: no JSON parse
    if old is not None and '"' + PREFIX in old.segments:
        db.execute("DELETE FROM inline_files WHERE bucket=? AND key=?", (old.bucket, old.key))


def _values(row: object) -> tuple:
    return tuple(row.__dict__.values())
