"""State survives a restart; key material is sealed under the root key; root key file."""

import base64
import os
import stat

import pytest

from kmscore import KMS, Caller
from kmscore import errors as E
from kmscore.clock import FixedClock
from kmscore.rootkey import ENV_VAR, RootKeyError, load_root_key

ACCT = "111122223333"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT)
ROLE = f"arn:aws:iam::{ACCT}:role/r"


def test_round_trip_across_restart(tmp_path):
    clock = FixedClock()
    k1 = KMS(tmp_path, "us-east-1", clock, env={})
    key = k1.create_key(ADMIN, description="persist", tags={"t": "v"})
    k1.create_alias(ADMIN, "alias/p", key.key_id)
    gid, _ = k1.create_grant(
        ADMIN, key.key_id, ROLE, ["Decrypt"], constraints={"EncryptionContextEquals": {"a": "b"}}
    )
    old = k1.encrypt(ADMIN, key.key_id, b"before", {"a": "b"})
    k1.rotate_key_on_demand(ADMIN, key.key_id)
    k1.enable_key_rotation(ADMIN, key.key_id, 100)
    k1.disable_key(ADMIN, key.key_id)
    k1.enable_key(ADMIN, key.key_id)
    k1.close()

    k2 = KMS(tmp_path, "us-east-1", clock, env={})
    md = k2.describe_key(ADMIN, "alias/p")
    assert (md.key_id, md.description, md.state) == (key.key_id, "persist", "Enabled")
    assert k2.decrypt(ADMIN, old.ciphertext_blob, {"a": "b"}).plaintext == b"before"
    assert [g.grant_id for g in k2.list_grants(ADMIN, key.key_id).items] == [gid]
    assert k2.list_resource_tags(ADMIN, key.key_id).items == (("t", "v"),)
    assert k2.get_key_rotation_status(ADMIN, key.key_id).rotation_period_days == 100
    assert len(k2.list_key_rotations(ADMIN, key.key_id).items) == 1
    k2.close()


def test_root_key_file_created_0600_and_material_never_plaintext(tmp_path):
    rng_out = []

    def rng(n):
        b = os.urandom(n)
        rng_out.append(b)
        return b

    k = KMS(tmp_path, "us-east-1", FixedClock(), rng=rng, env={})
    key = k.create_key(ADMIN)
    k.close()
    root = tmp_path / "kms" / "root.key"
    assert stat.S_IMODE(root.stat().st_mode) == 0o600
    state = (tmp_path / "kms" / "state.msgpack").read_bytes()
    audit = (tmp_path / "kms" / "audit.jsonl").read_bytes()
    secrets = [b for b in rng_out if len(b) == 32 and b != root.read_bytes()]
    assert secrets  # material ids and material were drawn
    material = [b for b in secrets if b.hex() not in state.decode("latin-1")]
    assert material, "some 32-byte draw must be key material (not an id)"
    for m in material:
        assert m not in state and m not in audit
    assert key.key_id


def test_wrong_root_key_cannot_open_material(tmp_path):
    k = KMS(tmp_path, "us-east-1", FixedClock(), root_key=b"\x01" * 32)
    key = k.create_key(ADMIN)
    e = k.encrypt(ADMIN, key.key_id, b"x")
    k.close()
    k2 = KMS(tmp_path, "us-east-1", FixedClock(), root_key=b"\x02" * 32)
    with pytest.raises(RootKeyError):
        k2.decrypt(ADMIN, e.ciphertext_blob)
    k2.close()


def test_root_key_from_env(tmp_path):
    raw = os.urandom(32)
    assert load_root_key(tmp_path, {ENV_VAR: base64.b64encode(raw).decode()}) == raw
    assert not (tmp_path / "root.key").exists()
    with pytest.raises(RootKeyError):
        load_root_key(tmp_path, {ENV_VAR: base64.b64encode(b"short").decode()})
    with pytest.raises(RootKeyError):
        load_root_key(tmp_path, {ENV_VAR: "***"})


def test_root_key_file_is_stable(tmp_path):
    assert load_root_key(tmp_path, {}) == load_root_key(tmp_path, {})


def test_destroyed_key_stays_destroyed_after_restart(tmp_path):
    clock = FixedClock()
    k = KMS(tmp_path, "us-east-1", clock, root_key=b"\x03" * 32)
    key = k.create_key(ADMIN)
    e = k.encrypt(ADMIN, key.key_id, b"x")
    k.schedule_key_deletion(ADMIN, key.key_id, 7)
    clock.advance(8 * 86400)
    assert k.purge_expired() == 1
    k.close()
    k2 = KMS(tmp_path, "us-east-1", clock, root_key=b"\x03" * 32)
    with pytest.raises(E.NotFoundException):
        k2.decrypt(ADMIN, e.ciphertext_blob)
    k2.close()


def test_derived_secrets_come_from_the_root_key_and_are_never_stored(tmp_path):
    from kmscore import KMS
    from kmscore.clock import FixedClock

    root = bytes(range(32))
    a = KMS(tmp_path / "a", "us-east-1", FixedClock(), root_key=root)
    b = KMS(tmp_path / "b", "us-east-1", FixedClock(), root_key=root)
    c = KMS(tmp_path / "c", "us-east-1", FixedClock(), root_key=bytes(32))
    secret = a.derived_secret("s3/sse-s3-master")
    assert len(secret) == 32 and secret == b.derived_secret("s3/sse-s3-master")
    assert secret != a.derived_secret("other") and secret != c.derived_secret("s3/sse-s3-master")
    for path in (tmp_path / "a").rglob("*"):
        assert not path.is_file() or secret not in path.read_bytes()
