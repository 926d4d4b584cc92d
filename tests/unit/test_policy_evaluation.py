"""Key policy evaluation: order, principals, actions and resources, statement conditions."""

from __future__ import annotations

import pytest

from tests.unit.policy_env import (
    ACCT,
    ALICE,
    ALLOW,
    BOB,
    DENY,
    IMPLICIT,
    KEY,
    OTHER,
    OTHER_ROOT,
    ROOT,
    S3_VIA,
    VIA_ROOT,
    check,
    policy,
    req,
    stmt,
)

# ---------------------------------------------------------------- evaluation order

EVALUATION = [
    (
        "deny beats direct allow",
        [stmt(principal={"AWS": ALICE}), stmt("Deny", {"AWS": ALICE}, "kms:Decrypt")],
        req(),
        DENY,
    ),
    (
        "deny via account root beats allow",
        [stmt(principal={"AWS": ALICE}), stmt("Deny", {"AWS": ACCT}, "kms:*")],
        req(),
        DENY,
    ),
    (
        "deny with wildcard principal",
        [stmt(principal="*"), stmt("Deny", "*", "kms:Decrypt")],
        req(),
        DENY,
    ),
    (
        "deny for another action does not apply",
        [stmt(principal={"AWS": ALICE}), stmt("Deny", {"AWS": ALICE}, "kms:Encrypt")],
        req(),
        ALLOW,
    ),
    ("no statement matches", [stmt(principal={"AWS": BOB})], req(), IMPLICIT),
    (
        "allow for other action only",
        [stmt(principal={"AWS": ALICE}, action="kms:Encrypt")],
        req(),
        IMPLICIT,
    ),
    (
        "deny with failing condition does not apply",
        [
            stmt(principal={"AWS": ALICE}),
            stmt("Deny", "*", Condition={"StringNotEquals": {"kms:ViaService": S3_VIA}}),
        ],
        req(kms__ViaService=S3_VIA),
        ALLOW,
    ),
    (
        "deny with negated condition on absent key applies",
        [
            stmt(principal={"AWS": ALICE}),
            stmt("Deny", "*", Condition={"StringNotEquals": {"kms:ViaService": S3_VIA}}),
        ],
        req(),
        DENY,
    ),
    (
        "direct allow wins over via-root allow",
        [stmt(), stmt(principal={"AWS": ALICE}, action="kms:Decrypt")],
        req(),
        ALLOW,
    ),
]


@pytest.mark.parametrize(
    ("statements", "request_", "expected"),
    [case[1:] for case in EVALUATION],
    ids=[case[0] for case in EVALUATION],
)
def test_evaluation_order(statements, request_, expected):
    assert check(policy(*statements), request_) == expected


# ---------------------------------------------------------------- principals

PRINCIPALS = [
    ("star string", "*", req(), ALLOW),
    ("AWS star", {"AWS": "*"}, req(), ALLOW),
    ("AWS star matches other account", {"AWS": "*"}, req(OTHER_ROOT, OTHER), ALLOW),
    ("exact user", {"AWS": ALICE}, req(), ALLOW),
    ("exact user in list", {"AWS": [BOB, ALICE]}, req(), ALLOW),
    ("other user", {"AWS": BOB}, req(), IMPLICIT),
    ("root arn delegates for user", {"AWS": ROOT}, req(), VIA_ROOT),
    ("bare account delegates for user", {"AWS": ACCT}, req(), VIA_ROOT),
    ("root arn matches root", {"AWS": ROOT}, req(ROOT), ALLOW),
    ("bare account matches root", {"AWS": ACCT}, req(ROOT), ALLOW),
    ("root arn of other account", {"AWS": ROOT}, req(OTHER_ROOT, OTHER), IMPLICIT),
    ("other root arn for user", {"AWS": OTHER_ROOT}, req(), IMPLICIT),
    (
        "cross-account user by account",
        {"AWS": OTHER},
        req(f"arn:aws:iam::{OTHER}:user/carol", OTHER),
        VIA_ROOT,
    ),
    (
        "service principal",
        {"Service": "connect.amazonaws.com"},
        req("", "", service="connect.amazonaws.com"),
        ALLOW,
    ),
    (
        "other service principal",
        {"Service": "s3.amazonaws.com"},
        req("", "", service="connect.amazonaws.com"),
        IMPLICIT,
    ),
    ("service entry does not match users", {"Service": "connect.amazonaws.com"}, req(), IMPLICIT),
    (
        "AWS entries do not match a bare service",
        {"AWS": ROOT},
        req("", "", service="connect.amazonaws.com"),
        IMPLICIT,
    ),
    ("star matches a service", "*", req("", "", service="connect.amazonaws.com"), ALLOW),
]


@pytest.mark.parametrize(
    ("principal", "request_", "expected"),
    [case[1:] for case in PRINCIPALS],
    ids=[case[0] for case in PRINCIPALS],
)
def test_principal_matching(principal, request_, expected):
    assert check(policy(stmt(principal=principal)), request_) == expected


# ---------------------------------------------------------------- actions and resources

ACTIONS = [
    ("kms:*", "kms:Decrypt", True),
    ("*", "kms:Decrypt", True),
    ("kms:Decrypt", "kms:Decrypt", True),
    ("KMS:decrypt", "kms:Decrypt", True),  # actions are case-insensitive
    ("kms:decrypt", "KMS:DECRYPT", True),
    ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
    ("kms:ReEncrypt*", "kms:ReEncryptFrom", True),
    ("kms:Describe?ey", "kms:DescribeKey", True),
    ("kms:Encrypt", "kms:Decrypt", False),
    ("kms:Get*", "kms:Decrypt", False),
    ("s3:*", "kms:Decrypt", False),
    (["kms:Encrypt", "kms:Decrypt"], "kms:Decrypt", True),
]


@pytest.mark.parametrize(("pattern", "action", "expected"), ACTIONS)
def test_action_wildcards(pattern, action, expected):
    result = check(policy(stmt(principal={"AWS": ALICE}, action=pattern)), req(action=action))
    assert result == (ALLOW if expected else IMPLICIT)


def test_not_action_applies_to_everything_else():
    doc = policy(
        {"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "kms:Put*", "Resource": "*"}
    )
    assert check(doc, req(action="kms:Decrypt")) == ALLOW
    assert check(doc, req(action="kms:PutKeyPolicy")) == IMPLICIT


RESOURCES = [
    ("*", True),
    (KEY, True),
    (f"arn:aws:kms:us-east-1:{ACCT}:key/*", True),
    (f"arn:aws:kms:*:{ACCT}:key/*", True),
    (f"arn:aws:kms:us-east-1:{OTHER}:key/*", False),
    (KEY.upper(), False),  # resource ARNs are case-sensitive
    ([f"arn:aws:kms:eu-west-1:{ACCT}:key/*", KEY], True),
]


@pytest.mark.parametrize(("pattern", "expected"), RESOURCES)
def test_resource_patterns(pattern, expected):
    result = check(policy(stmt(principal={"AWS": ALICE}, resource=pattern)), req())
    assert result == (ALLOW if expected else IMPLICIT)


def test_not_resource():
    doc = policy(
        {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "NotResource": KEY},
        stmt(principal="*"),
    )
    assert check(doc, req()) == ALLOW
    assert check(doc, req(resource=KEY + "0")) == DENY


# ---------------------------------------------------------------- conditions in statements

CONDITIONAL = [
    (
        "via service matches",
        {"StringEquals": {"kms:ViaService": S3_VIA}},
        {"kms__ViaService": S3_VIA},
        ALLOW,
    ),
    ("via service absent", {"StringEquals": {"kms:ViaService": S3_VIA}}, {}, IMPLICIT),
    (
        "all keys must hold",
        {"StringEquals": {"kms:ViaService": S3_VIA, "kms:CallerAccount": OTHER}},
        {"kms__ViaService": S3_VIA},
        IMPLICIT,
    ),
    (
        "all operators must hold",
        {"StringEquals": {"kms:ViaService": S3_VIA}, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        {"kms__ViaService": S3_VIA, "kms__GrantIsForAWSResource": False},
        IMPLICIT,
    ),
    (
        "caller account derived from request",
        {"StringEquals": {"kms:CallerAccount": ACCT}},
        {},
        ALLOW,
    ),
    (
        "principal arn derived from request",
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/*"}},
        {},
        ALLOW,
    ),
    ("principal account derived", {"StringEquals": {"aws:PrincipalAccount": ACCT}}, {}, ALLOW),
    (
        "context overrides derived key",
        {"StringEquals": {"kms:CallerAccount": ACCT}},
        {"kms__CallerAccount": OTHER},
        IMPLICIT,
    ),
    (
        "encryption context value",
        {"StringEquals": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b/k"}},
        {"kms__EncryptionContext__aws__s3__arn": "arn:aws:s3:::b/k"},
        ALLOW,
    ),
    (
        "encryption context prefix",
        {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b/*"}},
        {"kms__EncryptionContext__aws__s3__arn": "arn:aws:s3:::other/k"},
        IMPLICIT,
    ),
    (
        "context keys all allowed",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}},
        {"kms__EncryptionContextKeys": ("a",)},
        ALLOW,
    ),
    (
        "context keys extra key",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}},
        {"kms__EncryptionContextKeys": ("a", "c")},
        IMPLICIT,
    ),
    (
        "context keys none: ForAllValues true",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "a"}},
        {},
        ALLOW,
    ),
    (
        "context keys none: ForAnyValue false",
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "a"}},
        {},
        IMPLICIT,
    ),
    (
        "grant for aws resource",
        {"Bool": {"kms:GrantIsForAWSResource": True}},
        {"kms__GrantIsForAWSResource": True},
        ALLOW,
    ),
]


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [case[1:] for case in CONDITIONAL],
    ids=[case[0] for case in CONDITIONAL],
)
def test_statement_conditions(condition, context, expected):
    doc = policy(stmt(principal={"AWS": ALICE}, Condition=condition))
    assert check(doc, req(**context)) == expected


def test_service_principal_request_has_no_derived_principal_keys():
    doc = policy(stmt(principal="*", Condition={"Null": {"aws:PrincipalArn": "true"}}))
    assert check(doc, req("", "", service="connect.amazonaws.com")) == ALLOW
    assert check(doc, req()) == IMPLICIT
