"""Cross-process coordination (kmscore/shared.py) and two KMS facades over one data dir,
as two server processes use them."""

from __future__ import annotations

import threading

import pytest

from kmscore import KMS, Caller
from kmscore import errors as E
from kmscore.clock import FixedClock, SimClock
from kmscore.shared import Generation, SharedCell, StateLock

ACCT = "111122223333"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT)


def test_cells_on_one_path_share_their_value(tmp_path):
    a, b = SharedCell(tmp_path / "c"), SharedCell(tmp_path / "c")
    assert a.get_int() == 0
    a.set_int(41)
    assert b.get_int() == 41
    b.set_float(2.5)
    assert a.get_float() == 2.5
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o600


def test_state_lock_reloads_after_another_holder_saved(tmp_path):
    reloads: list[str] = []
    one = StateLock(SharedCell(tmp_path / "g"), lambda: reloads.append("one"))
    two = StateLock(SharedCell(tmp_path / "g"), lambda: reloads.append("two"))
    with one:
        with one:  # re-entrant: the inner holder takes nothing more
            one.saved()
    with one:
        pass
    assert reloads == []  # its own save is not news to it
    with two:
        pass
    assert reloads == ["two"]
    with two:
        pass
    assert reloads == ["two"]


def test_state_lock_excludes_the_other_holder(tmp_path):
    one = StateLock(SharedCell(tmp_path / "g"), lambda: None)
    two = StateLock(SharedCell(tmp_path / "g"), lambda: None)
    entered = threading.Event()
    with one:
        t = threading.Thread(target=lambda: (two.__enter__(), entered.set(), two.__exit__()))
        t.start()
        assert not entered.wait(0.2)
    assert entered.wait(5)
    t.join()


def test_generation_counts_changes_locally_and_shared(tmp_path):
    local = Generation()
    local.bump()
    assert local.value() == 1
    a, b = Generation(SharedCell(tmp_path / "g")), Generation(SharedCell(tmp_path / "g"))
    a.bump()
    b.bump()
    assert a.value() == b.value() == 2


def test_shared_clock_advances_for_every_holder(tmp_path):
    one = SimClock(cell=SharedCell(tmp_path / "clock"))
    two = SimClock(cell=SharedCell(tmp_path / "clock"))
    one.advance(3600)
    assert two.offset_seconds == 3600
    with pytest.raises(ValueError):
        two.advance(-1)


@pytest.fixture
def pair(tmp_path):
    clock = FixedClock()
    one = KMS(tmp_path, "us-east-1", clock, root_key=b"\x05" * 32, shared=True)
    two = KMS(tmp_path, "us-east-1", clock, root_key=b"\x05" * 32, shared=True)
    yield one, two
    one.close()
    two.close()


def test_two_facades_see_each_others_keys_and_states(pair):
    one, two = pair
    key = one.create_key(ADMIN).key_id
    blob = two.encrypt(ADMIN, key, b"secret").ciphertext_blob
    assert one.decrypt(ADMIN, blob, None).plaintext == b"secret"
    one.disable_key(ADMIN, key)
    with pytest.raises(E.DisabledException):
        two.decrypt(ADMIN, blob, None)
    two.enable_key(ADMIN, key)
    assert one.decrypt(ADMIN, blob, None).plaintext == b"secret"


def test_concurrent_changes_from_two_facades_are_all_kept(pair):
    one, two = pair

    def create(kms: KMS, n: int) -> None:
        for _ in range(n):
            kms.create_key(ADMIN)

    threads = [threading.Thread(target=create, args=(k, 15)) for k in pair]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(one.list_keys(ADMIN, limit=1000).items) == 30
    assert len(two.list_keys(ADMIN, limit=1000).items) == 30


def test_reading_takes_the_cross_process_lock_only_to_reload(tmp_path):
    reloads: list[str] = []
    one = StateLock(SharedCell(tmp_path / "g"), lambda: None)
    two = StateLock(SharedCell(tmp_path / "g"), lambda: reloads.append("two"))
    with one:  # another process holds the lock: an up-to-date reader is not held up
        with two.reading():
            pass
        one.saved()
    assert reloads == []
    with two.reading():  # the other saved meanwhile: reload first
        pass
    assert reloads == ["two"]
