"""The KMS facade on a FixedClock: keys, crypto, states, aliases, rotation, tags."""

import json

import pytest

from kmscore import KMS, Caller
from kmscore import errors as E
from kmscore.clock import FixedClock

ACCT, OTHER = "111122223333", "444455556666"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT)
ALICE = Caller(arn=f"arn:aws:iam::{ACCT}:user/alice", account=ACCT, iam_actions=("s3:*",))
BOB = Caller(arn=f"arn:aws:iam::{ACCT}:user/bob", account=ACCT, iam_actions=("kms:*",))
STRANGER = Caller(arn=f"arn:aws:iam::{OTHER}:root", account=OTHER)
DAY = 86400


@pytest.fixture
def clock():
    return FixedClock()


@pytest.fixture
def kms(tmp_path, clock):
    k = KMS(tmp_path, "us-east-1", clock, root_key=b"\x01" * 32)
    yield k
    k.close()


@pytest.fixture
def key(kms):
    return kms.create_key(ADMIN, description="test key")


def test_create_and_describe(kms, key):
    md = kms.describe_key(ADMIN, key.key_id)
    assert md.arn == f"arn:aws:kms:us-east-1:{ACCT}:key/{key.key_id}"
    assert (md.state, md.key_manager, md.enabled, md.description) == (
        "Enabled",
        "CUSTOMER",
        True,
        "test key",
    )
    assert kms.describe_key(ADMIN, md.arn).key_id == key.key_id


def test_create_key_needs_iam(kms):
    with pytest.raises(E.AccessDeniedException):
        kms.create_key(ALICE)


def test_encrypt_decrypt_with_context(kms, key):
    e = kms.encrypt(ADMIN, key.key_id, b"hello", {"purpose": "test"})
    d = kms.decrypt(ADMIN, e.ciphertext_blob, {"purpose": "test"})
    assert (d.plaintext, d.key_arn) == (b"hello", key.arn)
    for ctx in (None, {"purpose": "Test"}, {"purpose": "test", "x": "y"}):
        with pytest.raises(E.InvalidCiphertextException) as ex:
            kms.decrypt(ADMIN, e.ciphertext_blob, ctx)
        assert ex.value.message == ""


def test_context_ab_c_never_decrypts_under_a_bc(kms, key):
    dk = kms.generate_data_key(ADMIN, key.key_id, {"ab": "c"})
    with pytest.raises(E.InvalidCiphertextException):
        kms.decrypt(ADMIN, dk.ciphertext_blob, {"a": "bc"})


def test_plaintext_limits(kms, key):
    kms.encrypt(ADMIN, key.key_id, b"x" * 4096)
    for bad in (b"", b"x" * 4097):
        with pytest.raises(E.ValidationException):
            kms.encrypt(ADMIN, key.key_id, bad)


def test_decrypt_with_wrong_key_id_is_incorrect_key(kms, key):
    other = kms.create_key(ADMIN)
    e = kms.encrypt(ADMIN, key.key_id, b"x")
    with pytest.raises(E.IncorrectKeyException):
        kms.decrypt(ADMIN, e.ciphertext_blob, key_id=other.key_id)
    assert kms.decrypt(ADMIN, e.ciphertext_blob, key_id=key.arn).plaintext == b"x"


def test_garbage_blob(kms, key):
    with pytest.raises(E.InvalidCiphertextException) as ex:
        kms.decrypt(ADMIN, b"not a blob at all" * 10)
    assert ex.value.message == ""


def test_data_key_specs(kms, key):
    assert len(kms.generate_data_key(ADMIN, key.key_id).plaintext) == 32
    assert len(kms.generate_data_key(ADMIN, key.key_id, key_spec="AES_128").plaintext) == 16
    assert len(kms.generate_data_key(ADMIN, key.key_id, number_of_bytes=7).plaintext) == 7
    dk = kms.generate_data_key_without_plaintext(ADMIN, key.key_id, {"a": "b"})
    assert dk.plaintext is None
    assert len(kms.decrypt(ADMIN, dk.ciphertext_blob, {"a": "b"}).plaintext) == 32
    for kw in (
        {"key_spec": "AES_512"},
        {"key_spec": None},
        {"number_of_bytes": 0},
        {"number_of_bytes": 1025},
        {"key_spec": "AES_128", "number_of_bytes": 5},
    ):
        with pytest.raises(E.ValidationException):
            kms.generate_data_key(ADMIN, key.key_id, **kw)


def test_generate_random(kms):
    assert len(kms.generate_random(ADMIN, 64)) == 64
    with pytest.raises(E.ValidationException):
        kms.generate_random(ADMIN, 0)


def test_unknown_keys(kms):
    with pytest.raises(E.NotFoundException, match="Invalid keyId 'nope'"):
        kms.describe_key(ADMIN, "nope")
    with pytest.raises(E.NotFoundException, match="does not exist"):
        kms.describe_key(ADMIN, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(E.NotFoundException, match="is not found"):
        kms.describe_key(ADMIN, "alias/missing")
    with pytest.raises(E.NotFoundException, match="Invalid arn eu-west-1"):
        kms.describe_key(ADMIN, "arn:aws:kms:eu-west-1:111122223333:key/x")


def test_disable_enable(kms, key):
    e = kms.encrypt(ADMIN, key.key_id, b"x")
    kms.disable_key(ADMIN, key.key_id)
    assert kms.describe_key(ADMIN, key.key_id).state == "Disabled"
    with pytest.raises(E.DisabledException, match=f"{key.arn} is disabled."):
        kms.decrypt(ADMIN, e.ciphertext_blob)
    with pytest.raises(E.DisabledException):
        kms.generate_data_key(ADMIN, key.key_id)
    kms.enable_key(ADMIN, key.key_id)
    assert kms.decrypt(ADMIN, e.ciphertext_blob).plaintext == b"x"


def test_deletion_window_and_destruction(kms, key, clock):
    e = kms.encrypt(ADMIN, key.key_id, b"x")
    r = kms.schedule_key_deletion(ADMIN, key.key_id, 7)
    assert (r.key_state, r.pending_window_days) == ("PendingDeletion", 7)
    assert r.deletion_date.timestamp() == clock.now().timestamp() + 7 * DAY
    with pytest.raises(E.KMSInvalidStateException, match="is pending deletion."):
        kms.decrypt(ADMIN, e.ciphertext_blob)
    with pytest.raises(E.KMSInvalidStateException):
        kms.enable_key(ADMIN, key.key_id)
    with pytest.raises(E.KMSInvalidStateException):
        kms.schedule_key_deletion(ADMIN, key.key_id)
    clock.advance(7 * DAY - 1)
    assert kms.describe_key(ADMIN, key.key_id).state == "PendingDeletion"
    clock.advance(1)
    with pytest.raises(E.NotFoundException):
        kms.describe_key(ADMIN, key.key_id)
    with pytest.raises(E.NotFoundException):
        kms.decrypt(ADMIN, e.ciphertext_blob)
    assert key.key_id not in [r[0] for r in kms.list_keys(ADMIN).items]


def test_purge_expired_and_default_window(kms, key, clock):
    r = kms.schedule_key_deletion(ADMIN, key.key_id)
    assert r.pending_window_days == 30
    clock.advance(30 * DAY)
    assert kms.purge_expired() == 1
    assert kms.purge_expired() == 0


@pytest.mark.parametrize("days", [6, 31, 0])
def test_deletion_window_bounds(kms, key, days):
    with pytest.raises(E.ValidationException):
        kms.schedule_key_deletion(ADMIN, key.key_id, days)


def test_cancel_deletion_leaves_disabled(kms, key):
    with pytest.raises(E.KMSInvalidStateException):
        kms.cancel_key_deletion(ADMIN, key.key_id)
    kms.schedule_key_deletion(ADMIN, key.key_id, 10)
    assert kms.cancel_key_deletion(ADMIN, key.key_id) == key.arn
    md = kms.describe_key(ADMIN, key.key_id)
    assert (md.state, md.deletion_date) == ("Disabled", None)


def test_aliases(kms, key):
    other = kms.create_key(ADMIN)
    kms.create_alias(ADMIN, "alias/app", key.key_id)
    with pytest.raises(E.AlreadyExistsException):
        kms.create_alias(ADMIN, "alias/app", other.key_id)
    with pytest.raises(E.InvalidAliasNameException):
        kms.create_alias(ADMIN, "alias/aws/mine", key.key_id)
    with pytest.raises(E.ValidationException):
        kms.create_alias(ADMIN, "noprefix", key.key_id)
    e = kms.encrypt(ADMIN, "alias/app", b"x")
    assert kms.decrypt(ADMIN, e.ciphertext_blob, key_id="alias/app").key_arn == key.arn
    alias_arn = f"arn:aws:kms:us-east-1:{ACCT}:alias/app"
    assert kms.describe_key(ADMIN, alias_arn).key_id == key.key_id
    kms.update_alias(ADMIN, "alias/app", other.key_id)
    assert kms.describe_key(ADMIN, "alias/app").key_id == other.key_id
    assert [a.name for a in kms.list_aliases(ADMIN, other.key_id).items] == ["alias/app"]
    kms.delete_alias(ADMIN, "alias/app")
    with pytest.raises(E.NotFoundException):
        kms.delete_alias(ADMIN, "alias/app")


def test_list_keys_pagination(kms):
    ids = sorted(kms.create_key(ADMIN).key_id for _ in range(5))
    seen, marker = [], None
    while True:
        page = kms.list_keys(ADMIN, limit=2, marker=marker)
        seen += [r[0] for r in page.items]
        if not page.truncated:
            break
        marker = page.next_marker
    assert seen == ids
    with pytest.raises(E.InvalidMarkerException):
        kms.list_keys(ADMIN, marker="!!!")
    with pytest.raises(E.ValidationException):
        kms.list_keys(ADMIN, limit=0)


def test_list_keys_is_per_account(kms, key):
    assert kms.list_keys(STRANGER).items == ()


def test_on_demand_rotation(kms, key):
    old = kms.encrypt(ADMIN, key.key_id, b"old")
    kms.rotate_key_on_demand(ADMIN, key.key_id)
    new = kms.encrypt(ADMIN, key.key_id, b"new")
    d_old = kms.decrypt(ADMIN, old.ciphertext_blob)
    d_new = kms.decrypt(ADMIN, new.ciphertext_blob)
    assert d_old.plaintext == b"old" and d_new.plaintext == b"new"
    assert d_old.key_material_id != d_new.key_material_id
    assert kms.describe_key(ADMIN, key.key_id).current_key_material_id == d_new.key_material_id
    for _ in range(9):
        kms.rotate_key_on_demand(ADMIN, key.key_id)
    with pytest.raises(E.LimitExceededException):
        kms.rotate_key_on_demand(ADMIN, key.key_id)
    rotations = kms.list_key_rotations(ADMIN, key.key_id).items
    assert len(rotations) == 10 and {r.rotation_type for r in rotations} == {"ON_DEMAND"}
    assert kms.decrypt(ADMIN, old.ciphertext_blob).plaintext == b"old"


def test_automatic_rotation_when_due(kms, key, clock):
    with pytest.raises(E.ValidationException):
        kms.enable_key_rotation(ADMIN, key.key_id, 89)
    with pytest.raises(E.ValidationException):
        kms.enable_key_rotation(ADMIN, key.key_id, 2561)
    kms.enable_key_rotation(ADMIN, key.key_id, 90)
    st = kms.get_key_rotation_status(ADMIN, key.key_id)
    assert (st.enabled, st.rotation_period_days) == (True, 90)
    old = kms.encrypt(ADMIN, key.key_id, b"x")
    clock.advance(90 * DAY)
    rot = kms.list_key_rotations(ADMIN, key.key_id).items
    assert [r.rotation_type for r in rot] == ["AUTOMATIC"]
    assert kms.decrypt(ADMIN, old.ciphertext_blob).plaintext == b"x"
    kms.disable_key_rotation(ADMIN, key.key_id)
    assert kms.get_key_rotation_status(ADMIN, key.key_id).enabled is False


def test_rotation_on_disabled_key(kms, key):
    kms.disable_key(ADMIN, key.key_id)
    with pytest.raises(E.DisabledException):
        kms.rotate_key_on_demand(ADMIN, key.key_id)


def test_tags(kms, key):
    kms.tag_resource(ADMIN, key.key_id, {"team": "a", "env": "dev"})
    kms.tag_resource(ADMIN, key.key_id, [("team", "b")])
    assert kms.list_resource_tags(ADMIN, key.key_id).items == (("env", "dev"), ("team", "b"))
    kms.untag_resource(ADMIN, key.key_id, ["env"])
    assert kms.list_resource_tags(ADMIN, key.key_id).items == (("team", "b"),)
    with pytest.raises(E.TagException):
        kms.tag_resource(ADMIN, key.key_id, {"aws:x": "y"})


def test_put_key_policy_validates_first(kms, key):
    before = kms.get_key_policy(ADMIN, key.key_id)
    with pytest.raises(E.MalformedPolicyDocumentException):
        kms.put_key_policy(ADMIN, key.key_id, '{"Version": "2012-10-17", "Statement": [')
    assert kms.get_key_policy(ADMIN, key.key_id) == before
    assert kms.list_key_policies(ADMIN, key.key_id).items == ("default",)
    with pytest.raises(E.NotFoundException):
        kms.get_key_policy(ADMIN, key.key_id, "other")


def _policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROOT_ALL = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def test_default_policy_delegates_to_iam(kms, key):
    e = kms.encrypt(ADMIN, key.key_id, b"x")
    assert kms.decrypt(BOB, e.ciphertext_blob).plaintext == b"x"  # IAM kms:*
    with pytest.raises(E.AccessDeniedException):
        kms.decrypt(ALICE, e.ciphertext_blob)  # IAM s3:* only


def test_policy_allow_names_principal_and_deny_wins(kms, key):
    allow_alice = {
        "Effect": "Allow",
        "Principal": {"AWS": ALICE.arn},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    kms.put_key_policy(ADMIN, key.key_id, _policy(ROOT_ALL, allow_alice))
    e = kms.encrypt(ADMIN, key.key_id, b"x", {"k": "v"})
    assert kms.decrypt(ALICE, e.ciphertext_blob, {"k": "v"}).plaintext == b"x"
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:EncryptionContext:k": "v"}},
    }
    kms.put_key_policy(ADMIN, key.key_id, _policy(ROOT_ALL, allow_alice, deny))
    e2 = kms.encrypt(ADMIN, key.key_id, b"x", {"k": "other"})
    with pytest.raises(E.AccessDeniedException):
        kms.decrypt(ADMIN, e2.ciphertext_blob, {"k": "other"})
    assert kms.decrypt(ALICE, e.ciphertext_blob, {"k": "v"}).plaintext == b"x"


def test_lockout_safety_check(kms, key):
    only_alice = {
        "Effect": "Allow",
        "Principal": {"AWS": ALICE.arn},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    with pytest.raises(E.MalformedPolicyDocumentException):
        kms.put_key_policy(BOB, key.key_id, _policy(only_alice))
    kms.put_key_policy(
        BOB, key.key_id, _policy(only_alice), bypass_policy_lockout_safety_check=True
    )
    with pytest.raises(E.AccessDeniedException):
        kms.describe_key(BOB, key.key_id)


def test_cross_account_needs_key_policy(kms, key):
    e = kms.encrypt(ADMIN, key.key_id, b"x")
    with pytest.raises(E.NotFoundException):
        kms.describe_key(STRANGER, key.key_id)  # bare id resolves in the caller's account
    with pytest.raises(E.AccessDeniedException):
        kms.decrypt(STRANGER, e.ciphertext_blob)
    other_root = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
    }
    kms.put_key_policy(ADMIN, key.key_id, _policy(ROOT_ALL, other_root))
    assert kms.decrypt(STRANGER, e.ciphertext_blob).plaintext == b"x"
    assert kms.describe_key(STRANGER, key.arn).key_id == key.key_id
    weak = Caller(arn=f"arn:aws:iam::{OTHER}:user/weak", account=OTHER, iam_actions=("s3:*",))
    with pytest.raises(E.AccessDeniedException):
        kms.decrypt(weak, e.ciphertext_blob)


def test_aws_managed_key_only_via_service(kms):
    arn = kms.aws_managed_key(ACCT)
    assert kms.aws_managed_key(ACCT, "alias/aws/s3") == arn
    via_s3 = ALICE.via("s3.us-east-1.amazonaws.com", "s3.amazonaws.com")
    dk = kms.generate_data_key(via_s3, arn, {"aws:s3:arn": "arn:aws:s3:::b/k"})
    assert kms.decrypt(via_s3, dk.ciphertext_blob, {"aws:s3:arn": "arn:aws:s3:::b/k"})
    with pytest.raises(E.AccessDeniedException):
        kms.generate_data_key(ALICE, arn)
    md = kms.describe_key(ADMIN, "alias/aws/s3")
    assert (md.arn, md.key_manager) == (arn, "AWS")
    with pytest.raises(E.AccessDeniedException):
        kms.schedule_key_deletion(ADMIN, arn)


def test_aws_owned_key_invisible_to_customers(kms):
    svc = Caller(arn="", account=ACCT, service_principal="connect.amazonaws.com")
    arn = kms.aws_owned_key("connect.amazonaws.com", "staging")
    assert kms.aws_owned_key("connect.amazonaws.com", "staging") == arn
    dk = kms.generate_data_key(svc, arn, {"instance": "i-1"})
    assert kms.decrypt(svc, dk.ciphertext_blob, {"instance": "i-1"}).plaintext == dk.plaintext
    for who in (
        ADMIN,
        STRANGER,
        Caller(arn="", account=ACCT, service_principal="s3.amazonaws.com"),
    ):
        with pytest.raises(E.NotFoundException):
            kms.describe_key(who, arn)
        with pytest.raises(E.InvalidCiphertextException):
            kms.decrypt(who, dk.ciphertext_blob, {"instance": "i-1"})
    assert arn not in [r[1] for r in kms.list_keys(ADMIN).items]


def test_re_encrypt(kms, key):
    dst = kms.create_key(ADMIN)
    e = kms.encrypt(ADMIN, key.key_id, b"payload", {"a": "1"})
    r = kms.re_encrypt(ADMIN, e.ciphertext_blob, dst.key_id, {"a": "1"}, {"b": "2"})
    assert (r.source_key_arn, r.key_arn) == (key.arn, dst.arn)
    assert kms.decrypt(ADMIN, r.ciphertext_blob, {"b": "2"}).plaintext == b"payload"
    with pytest.raises(E.InvalidCiphertextException):
        kms.re_encrypt(ADMIN, e.ciphertext_blob, dst.key_id, {"a": "2"})
    kms.disable_key(ADMIN, dst.key_id)
    with pytest.raises(E.DisabledException):
        kms.re_encrypt(ADMIN, e.ciphertext_blob, dst.key_id, {"a": "1"})


def test_key_state_for_caches(kms, key, clock):
    assert kms.key_state(key.arn) == "Enabled"
    kms.disable_key(ADMIN, key.key_id)
    assert kms.key_state(key.arn) == "Disabled"
    kms.schedule_key_deletion(ADMIN, key.key_id, 7)
    assert kms.key_state(key.arn) == "PendingDeletion"
    clock.advance(7 * DAY)
    with pytest.raises(E.NotFoundException):
        kms.key_state(key.arn)
    with pytest.raises(E.NotFoundException):
        kms.key_state("garbage")


def test_concurrent_use_from_threads(kms, key):
    import threading

    errors = []

    def work():
        try:
            for _ in range(20):
                dk = kms.generate_data_key(ADMIN, key.key_id, {"t": "1"})
                assert kms.decrypt(ADMIN, dk.ciphertext_blob, {"t": "1"}).plaintext == dk.plaintext
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(3):
        kms.rotate_key_on_demand(ADMIN, key.key_id)
    for t in threads:
        t.join()
    assert errors == []
    lines = kms.audit.path.read_text().splitlines()
    assert len(lines) == 1 + 4 * 20 * 2 + 3  # CreateKey + every call + rotations


def test_null_condition_on_missing_context(kms, key):
    require_ctx = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"Null": {"kms:EncryptionContextKeys": "true"}},
    }
    kms.put_key_policy(ADMIN, key.key_id, _policy(ROOT_ALL, require_ctx))
    with pytest.raises(E.AccessDeniedException):
        kms.encrypt(ADMIN, key.key_id, b"x")
    with pytest.raises(E.AccessDeniedException):
        kms.encrypt(ADMIN, key.key_id, b"x", {})
    assert kms.encrypt(ADMIN, key.key_id, b"x", {"a": "b"}).key_arn == key.arn
