"""Grants: operations, constraints, retire/revoke, Name idempotency, tokens."""

import pytest

from kmscore import KMS, Caller
from kmscore import errors as E
from kmscore import grants as G
from kmscore.clock import FixedClock
from kmscore.models import GrantConstraints

ACCT = "111122223333"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT)
ROLE = f"arn:aws:iam::{ACCT}:role/service-role"
SVC = Caller(arn=ROLE, account=ACCT)  # no IAM permissions: only grants let it in
RETIRER = Caller(arn=f"arn:aws:iam::{ACCT}:user/retirer", account=ACCT)
OPS = ["GenerateDataKey", "Decrypt", "DescribeKey"]


@pytest.fixture
def kms(tmp_path):
    k = KMS(tmp_path, "us-east-1", FixedClock(), root_key=b"\x02" * 32)
    yield k
    k.close()


@pytest.fixture
def key(kms):
    return kms.create_key(ADMIN)


def test_grant_lets_grantee_use_exactly_its_operations(kms, key):
    with pytest.raises(E.AccessDeniedException):
        kms.generate_data_key(SVC, key.arn)
    gid, token = kms.create_grant(ADMIN, key.key_id, ROLE, OPS)
    dk = kms.generate_data_key(SVC, key.arn, grant_tokens=[token])
    assert kms.decrypt(SVC, dk.ciphertext_blob).plaintext == dk.plaintext
    assert kms.describe_key(SVC, key.arn).key_id == key.key_id
    with pytest.raises(E.AccessDeniedException):
        kms.encrypt(SVC, key.arn, b"x")
    with pytest.raises(E.AccessDeniedException):
        kms.disable_key(SVC, key.arn)


def test_subset_constraint(kms, key):
    kms.create_grant(
        ADMIN, key.key_id, ROLE, OPS, constraints={"EncryptionContextSubset": {"instance": "i-1"}}
    )
    kms.generate_data_key(SVC, key.arn, {"instance": "i-1", "extra": "ok"})
    kms.generate_data_key(SVC, key.arn, {"INSTANCE": "i-1"})  # keys case-insensitive
    for ctx in (None, {"instance": "i-2"}, {"instance": "I-1"}):
        with pytest.raises(E.AccessDeniedException):
            kms.generate_data_key(SVC, key.arn, ctx)
    assert kms.describe_key(SVC, key.arn)  # constraints do not apply to DescribeKey


def test_equals_constraint(kms, key):
    kms.create_grant(
        ADMIN, key.key_id, ROLE, ["Encrypt"], constraints={"EncryptionContextEquals": {"a": "1"}}
    )
    kms.encrypt(SVC, key.arn, b"x", {"a": "1"})
    with pytest.raises(E.AccessDeniedException):
        kms.encrypt(SVC, key.arn, b"x", {"a": "1", "b": "2"})


def test_both_constraints_is_validation_error(kms, key):
    with pytest.raises(E.ValidationException, match="More than one constraint supplied"):
        kms.create_grant(
            ADMIN,
            key.key_id,
            ROLE,
            OPS,
            constraints={
                "EncryptionContextSubset": {"a": "1"},
                "EncryptionContextEquals": {"a": "1"},
            },
        )


@pytest.mark.parametrize("ops", [[], ["Nope"], ["CreateKey"]])
def test_bad_operations(kms, key, ops):
    with pytest.raises(E.ValidationException):
        kms.create_grant(ADMIN, key.key_id, ROLE, ops)


def test_name_idempotency(kms, key):
    g1, t1 = kms.create_grant(ADMIN, key.key_id, ROLE, OPS, name="conn")
    g2, t2 = kms.create_grant(ADMIN, key.key_id, ROLE, OPS, name="conn")
    assert g1 == g2 and t1 != t2
    g3, _ = kms.create_grant(ADMIN, key.key_id, ROLE, ["Decrypt"], name="conn")
    assert g3 != g1
    g4, _ = kms.create_grant(ADMIN, key.key_id, ROLE, OPS)
    g5, _ = kms.create_grant(ADMIN, key.key_id, ROLE, OPS)
    assert g4 != g5


def test_list_grants_and_pagination(kms, key):
    ids = {kms.create_grant(ADMIN, key.key_id, ROLE, OPS)[0] for _ in range(3)}
    page = kms.list_grants(ADMIN, key.key_id, limit=2)
    assert page.truncated and len(page.items) == 2
    rest = kms.list_grants(ADMIN, key.key_id, limit=2, marker=page.next_marker)
    assert {g.grant_id for g in page.items + rest.items} == ids and not rest.truncated
    one = next(iter(ids))
    assert [g.grant_id for g in kms.list_grants(ADMIN, key.key_id, grant_id=one).items] == [one]


def test_retire_by_token_by_retiring_principal(kms, key):
    gid, token = kms.create_grant(ADMIN, key.key_id, ROLE, OPS, retiring_principal=RETIRER.arn)
    assert [g.grant_id for g in kms.list_retirable_grants(ADMIN, RETIRER.arn).items] == [gid]
    kms.retire_grant(RETIRER, grant_token=token)
    with pytest.raises(E.AccessDeniedException):
        kms.generate_data_key(SVC, key.arn)
    assert kms.list_grants(ADMIN, key.key_id).items == ()


def test_retire_by_id_by_grantee(kms, key):
    gid, _ = kms.create_grant(ADMIN, key.key_id, ROLE, OPS)
    stranger = Caller(arn=f"arn:aws:iam::{ACCT}:user/x", account=ACCT)
    with pytest.raises(E.AccessDeniedException):
        kms.retire_grant(stranger, key_id=key.arn, grant_id=gid)
    kms.retire_grant(SVC, key_id=key.arn, grant_id=gid)
    with pytest.raises(E.NotFoundException):
        kms.retire_grant(SVC, key_id=key.arn, grant_id=gid)
    with pytest.raises(E.ValidationException):
        kms.retire_grant(SVC)
    with pytest.raises(E.InvalidGrantIdException):
        kms.retire_grant(SVC, key_id=key.arn, grant_id="bad")


def test_revoke_stops_grant_at_once(kms, key):
    gid, _ = kms.create_grant(ADMIN, key.key_id, ROLE, OPS)
    dk = kms.generate_data_key(SVC, key.arn)
    with pytest.raises(E.AccessDeniedException):
        kms.revoke_grant(SVC, key.arn, gid)  # revoking is an administrator's operation
    kms.revoke_grant(ADMIN, key.key_id, gid)
    with pytest.raises(E.AccessDeniedException):
        kms.decrypt(SVC, dk.ciphertext_blob)


def test_disabled_key_with_grant_is_disabled(kms, key):
    kms.create_grant(ADMIN, key.key_id, ROLE, OPS)
    kms.disable_key(ADMIN, key.key_id)
    with pytest.raises(E.DisabledException):
        kms.generate_data_key(SVC, key.arn)


def test_malformed_grant_token(kms, key):
    with pytest.raises(E.InvalidGrantTokenException):
        kms.generate_data_key(ADMIN, key.key_id, grant_tokens=["garbage"])
    with pytest.raises(E.InvalidGrantTokenException):
        kms.retire_grant(ADMIN, grant_token="garbage")


def test_grant_with_create_grant_needs_stricter_children(kms, key):
    kms.create_grant(
        ADMIN,
        key.key_id,
        ROLE,
        ["CreateGrant", "Decrypt"],
        constraints={"EncryptionContextSubset": {"a": "1"}},
    )
    kms.create_grant(
        SVC,
        key.arn,
        RETIRER.arn,
        ["Decrypt"],
        constraints={"EncryptionContextSubset": {"a": "1", "b": "2"}},
    )
    with pytest.raises(E.AccessDeniedException):
        kms.create_grant(SVC, key.arn, RETIRER.arn, ["Decrypt"])
    with pytest.raises(E.AccessDeniedException):
        kms.create_grant(
            SVC,
            key.arn,
            RETIRER.arn,
            ["Encrypt"],
            constraints={"EncryptionContextSubset": {"a": "1"}},
        )


def test_pure_constraint_helpers():
    sub = GrantConstraints(encryption_context_subset=(("a", "1"),))
    eq = GrantConstraints(encryption_context_equals=(("a", "1"),))
    assert G.constraints_hold(sub, {"a": "1", "b": "2"})
    assert not G.constraints_hold(eq, {"a": "1", "b": "2"})
    assert G.at_least_as_strict(eq, sub) and not G.at_least_as_strict(None, sub)
    assert G.token_grant_id(G.make_token("ab" * 32, b"s" * 16)) == "ab" * 32


class _BrokenEngine:
    """A policy engine that fails: authorization must deny, not allow."""

    LOCKOUT_MESSAGE = "x"

    def __getattr__(self, name):
        import kmscore.policy as real

        return getattr(real, name)

    @staticmethod
    def evaluate(policy, req):
        raise RuntimeError("engine bug")


def test_policy_engine_failure_fails_closed(tmp_path):
    k = KMS(
        tmp_path, "us-east-1", FixedClock(), root_key=b"\x07" * 32, policy_engine=_BrokenEngine()
    )
    key = k.create_key(ADMIN, bypass_policy_lockout_safety_check=True)
    with pytest.raises(E.AccessDeniedException):
        k.describe_key(ADMIN, key.key_id)
    k.close()


@pytest.mark.parametrize("bad", ["", "bob", "arn:aws:iam::12:user/x"])
def test_invalid_principals(kms, key, bad):
    with pytest.raises(E.ValidationException):
        kms.create_grant(ADMIN, key.key_id, bad, OPS)
    with pytest.raises(E.ValidationException):
        kms.create_grant(ADMIN, key.key_id, ROLE, OPS, retiring_principal=bad or "x")
