"""s3sim.storage.sqlitedb: write transactions, and the writers' flock with several processes."""

from __future__ import annotations

import fcntl
import os

import pytest

from s3sim.storage.sqlitedb import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT);"


def flock_free(path) -> bool:
    """Whether another open file description could take the writers' lock now."""
    fd = os.open(f"{path}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_shared_write_transaction_holds_the_writers_flock(tmp_path):
    path = tmp_path / "d.db"
    db = Database(path, SCHEMA, fsync=False, shared=True)
    assert flock_free(path)
    with db.tx() as c:
        c.execute("INSERT INTO t VALUES ('a', '1')")
        assert not flock_free(path)  # another process's writer waits in the kernel
    assert flock_free(path)
    with pytest.raises(RuntimeError), db.tx() as c:  # released after a rollback too
        c.execute("INSERT INTO t VALUES ('b', '2')")
        raise RuntimeError
    assert flock_free(path)
    assert db._all("SELECT k FROM t") == [("a",)]
    db.close()


def test_a_private_database_takes_no_flock(tmp_path):
    db = Database(tmp_path / "d.db", SCHEMA, fsync=False)
    with db.tx() as c:
        c.execute("INSERT INTO t VALUES ('a', '1')")
    assert not (tmp_path / "d.db.lock").exists()
    db.close()


@pytest.mark.parametrize("fsync, level", [(True, 2), (False, 0)])  # FULL / OFF
def test_durability_setting(tmp_path, fsync, level):
    db = Database(tmp_path / "d.db", SCHEMA, fsync=fsync)
    assert db._one("PRAGMA synchronous") == (level,)
    assert db._one("PRAGMA journal_mode") == ("wal",)
    db.close()


@pytest.mark.parametrize("fsync", [False, True])
async def test_write_runs_inline_without_fsync_and_on_a_thread_with_it(tmp_path, fsync):
    import threading

    db = Database(tmp_path / "d.db", SCHEMA, fsync=fsync)
    seen: list[int] = []

    def change(k: str, v: str) -> str:
        seen.append(threading.get_ident())
        with db.tx() as c:
            c.execute("INSERT INTO t VALUES (?, ?)", (k, v))
        return k

    assert await db.run(change, "a", v="1") == "a"
    assert db._all("SELECT k, v FROM t") == [("a", "1")]
    assert (seen == [threading.get_ident()]) is not fsync  # a commit's fsync: off the loop
    db.close()
