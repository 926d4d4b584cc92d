"""Key policies: parsing and validation, default policies, the lockout check (evaluation:
test_policy_evaluation.py)."""

from __future__ import annotations

import json

import pytest

from kmscore.errors import MalformedPolicyDocumentException, ValidationException
from kmscore.policy import (
    LOCKOUT_MESSAGE,
    aws_managed_key_policy,
    default_key_policy,
    evaluate,
    parse_policy,
    would_lock_out,
)
from tests.unit.policy_env import (
    ACCT,
    ALICE,
    ALLOW,
    BOB,
    IMPLICIT,
    KEY,
    OTHER,
    OTHER_ROOT,
    ROOT,
    S3_VIA,
    VIA_ROOT,
    policy,
    req,
    stmt,
)

# ---------------------------------------------------------------- malformed documents

VALID_STMT = stmt()


def doc_with(**changes) -> str:
    d = {"Version": "2012-10-17", "Statement": [dict(VALID_STMT)]}
    for key, value in changes.items():
        if value is ...:
            d.pop(key)
        else:
            d[key] = value
    return json.dumps(d)


def stmt_doc(drop=(), **changes) -> str:
    s = {**VALID_STMT, **changes}
    for key in drop:
        s.pop(key)
    return json.dumps({"Version": "2012-10-17", "Statement": [s]})


MALFORMED = {
    "not json": "{not json",
    "truncated": '{"Version": "2012-10-17", "Statement": [',
    "array": "[]",
    "string": '"policy"',
    "number": "42",
    "deeply nested": "[" * 16000 + "]" * 16000,
    "NaN constant": '{"Version": "2012-10-17", "Statement": [], "Id": NaN}',
    "duplicate key": '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
    "missing version": doc_with(Version=...),
    "bad version": doc_with(Version="2020-01-01"),
    "version not string": doc_with(Version=20121017),
    "unknown top-level": doc_with(Extra="x"),
    "id not string": doc_with(Id=5),
    "missing statement": doc_with(Statement=...),
    "empty statement list": doc_with(Statement=[]),
    "statement is string": doc_with(Statement="Allow"),
    "statement entry not object": doc_with(Statement=["x"]),
    "no effect": stmt_doc(drop=("Effect",)),
    "bad effect": stmt_doc(Effect="Permit"),
    "effect lowercase": stmt_doc(Effect="allow"),
    "no principal": stmt_doc(drop=("Principal",)),
    "not principal": stmt_doc(drop=("Principal",), NotPrincipal={"AWS": ROOT}),
    "principal string arn": stmt_doc(Principal=ROOT),
    "principal empty object": stmt_doc(Principal={}),
    "principal bad arn": stmt_doc(Principal={"AWS": "alice"}),
    "principal wildcard arn": stmt_doc(Principal={"AWS": "arn:aws:iam::111122223333:user/*"}),
    "principal short account": stmt_doc(Principal={"AWS": "12345"}),
    "principal number": stmt_doc(Principal={"AWS": 111122223333}),
    "principal empty list": stmt_doc(Principal={"AWS": []}),
    "principal federated": stmt_doc(Principal={"Federated": "cognito-identity.amazonaws.com"}),
    "principal bad service": stmt_doc(Principal={"Service": "S3 Service"}),
    "no action": stmt_doc(drop=("Action",)),
    "action and notaction": stmt_doc(NotAction="kms:Decrypt"),
    "action not string": stmt_doc(Action=5),
    "action list with number": stmt_doc(Action=["kms:Decrypt", 5]),
    "action empty list": stmt_doc(Action=[]),
    "action empty string": stmt_doc(Action=""),
    "action without vendor": stmt_doc(Action="Decrypt"),
    "no resource": stmt_doc(drop=("Resource",)),
    "resource and notresource": stmt_doc(NotResource="*"),
    "resource object": stmt_doc(Resource={"a": 1}),
    "sid not string": stmt_doc(Sid=1),
    "unknown statement element": stmt_doc(Actions="kms:*"),
    "condition not object": stmt_doc(Condition="x"),
    "unknown condition operator": stmt_doc(Condition={"StringEqual": {"kms:ViaService": "x"}}),
    "condition value object": stmt_doc(Condition={"StringEquals": {"kms:ViaService": {}}}),
    "raw control character": doc_with(Id="ab").replace("ab", "a\u0001b"),
    "raw non-latin character": doc_with(Id="ab").replace("ab", "\u2603"),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_policy_rejected(text):
    with pytest.raises(MalformedPolicyDocumentException) as err:
        parse_policy(text)
    assert err.value.code == "MalformedPolicyDocumentException"
    assert err.value.status == 400
    assert err.value.message


def test_invalid_principal_message_is_awss():
    with pytest.raises(MalformedPolicyDocumentException) as err:
        parse_policy(stmt_doc(Principal={"AWS": "alice"}))
    assert err.value.message == "Policy contains a statement with one or more invalid principals."


def test_not_principal_message_is_clear():
    with pytest.raises(MalformedPolicyDocumentException, match="NotPrincipal"):
        parse_policy(stmt_doc(drop=("Principal",), NotPrincipal={"AWS": ROOT}))


@pytest.mark.parametrize("text", ["", "x" * 32769])
def test_length_constraint_is_validation_exception(text):
    with pytest.raises(ValidationException) as err:
        parse_policy(text)
    assert (err.value.code, err.value.status) == ("ValidationException", 400)


def test_policy_of_exactly_32768_characters_is_accepted():
    base = doc_with(Id="")
    text = base.replace('"Id": ""', '"Id": "' + "x" * (32768 - len(base)) + '"')
    assert len(text) == 32768
    assert parse_policy(text).id.startswith("x")


# ---------------------------------------------------------------- valid documents


def test_parse_accepts_both_versions_single_statement_object_and_latin1():
    doc = json.dumps({"Version": "2008-10-17", "Id": "caf\u00e9", "Statement": VALID_STMT})
    parsed = parse_policy(doc)
    assert parsed.version == "2008-10-17"
    assert parsed.id == "caf\u00e9"
    assert len(parsed.statements) == 1


def test_parse_models_are_frozen_and_complete():
    doc = policy(
        stmt(
            "Deny",
            {"AWS": [ROOT, ALICE], "Service": "s3.amazonaws.com"},
            action=["kms:Decrypt", "kms:Encrypt"],
            Sid="s1",
            Condition={"StringEquals": {"kms:ViaService": S3_VIA}},
        ),
        {"Effect": "Allow", "Principal": "*", "NotAction": "kms:Put*", "NotResource": KEY},
    )
    first, second = parse_policy(doc).statements
    assert first.sid == "s1" and first.effect == "Deny"
    assert first.principal.aws == (ROOT, ALICE)
    assert first.principal.services == ("s3.amazonaws.com",)
    assert first.actions == ("kms:Decrypt", "kms:Encrypt") and not first.not_action
    assert first.conditions[0].key == "kms:viaservice"
    assert second.principal.wildcard and second.not_action and second.not_resource
    with pytest.raises(AttributeError):
        first.effect = "Allow"  # type: ignore[misc]


# ---------------------------------------------------------------- default policies


def test_default_key_policy():
    text = default_key_policy(ACCT)
    doc = json.loads(text)
    (s,) = doc["Statement"]
    assert doc["Version"] == "2012-10-17"
    assert s == {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:*",
        "Resource": "*",
    }
    parsed = parse_policy(text)
    assert evaluate(parsed, req(ROOT)) == ALLOW
    assert evaluate(parsed, req(ALICE)) == VIA_ROOT
    assert evaluate(parsed, req(OTHER_ROOT, OTHER)) == IMPLICIT


def test_aws_managed_key_policy():
    text = aws_managed_key_policy(ACCT, "s3", "us-east-1")
    parsed = parse_policy(text)
    use, read = parsed.statements
    assert use.principal.wildcard and read.principal.aws == (ROOT,)
    # Through S3, anyone of the account may use it; directly, nobody may.
    assert evaluate(parsed, req(ALICE, kms__ViaService=S3_VIA)) == ALLOW
    assert evaluate(parsed, req(ROOT, kms__ViaService=S3_VIA)) == ALLOW
    assert evaluate(parsed, req(ALICE)) == IMPLICIT
    assert evaluate(parsed, req(ROOT)) == IMPLICIT
    wrong_region = "s3.eu-west-1.amazonaws.com"
    assert evaluate(parsed, req(ALICE, kms__ViaService=wrong_region)) == IMPLICIT
    # Other accounts may not use it, even through S3.
    carol = f"arn:aws:iam::{OTHER}:user/carol"
    assert evaluate(parsed, req(carol, OTHER, kms__ViaService=S3_VIA)) == IMPLICIT
    # Read-only metadata for the account root; nothing else directly.
    assert evaluate(parsed, req(ROOT, action="kms:DescribeKey")) == ALLOW
    assert evaluate(parsed, req(ALICE, action="kms:GetKeyPolicy")) == VIA_ROOT
    assert evaluate(parsed, req(ROOT, action="kms:PutKeyPolicy")) == IMPLICIT
    assert evaluate(parsed, req(ROOT, action="kms:ScheduleKeyDeletion")) == IMPLICIT


# ---------------------------------------------------------------- lockout safety check


LOCKOUT = [
    ("default policy, root", default_key_policy(ACCT), ROOT, False),
    ("default policy, user via root", default_key_policy(ACCT), ALICE, False),
    ("other account only", default_key_policy(OTHER), ROOT, True),
    ("only decrypt", policy(stmt(action="kms:Decrypt")), ROOT, True),
    (
        "explicit put for user",
        policy(stmt(principal={"AWS": ALICE}, action="kms:PutKeyPolicy")),
        ALICE,
        False,
    ),
    (
        "explicit put for someone else",
        policy(stmt(principal={"AWS": BOB}, action="kms:PutKeyPolicy")),
        ALICE,
        True,
    ),
    ("denied put", policy(stmt(), stmt("Deny", "*", "kms:PutKeyPolicy")), ROOT, True),
    (
        "put through via service only",
        policy(stmt(Condition={"StringEquals": {"kms:ViaService": S3_VIA}})),
        ROOT,
        True,
    ),
    ("aws managed key", aws_managed_key_policy(ACCT, "s3", "us-east-1"), ROOT, True),
]


@pytest.mark.parametrize(
    ("text", "principal", "expected"),
    [case[1:] for case in LOCKOUT],
    ids=[case[0] for case in LOCKOUT],
)
def test_would_lock_out(text, principal, expected):
    account = principal.split(":")[4]
    assert would_lock_out(parse_policy(text), principal, account) is expected


def test_would_lock_out_checks_resource_only_when_key_given():
    doc = parse_policy(policy(stmt(resource=f"arn:aws:kms:us-east-1:{ACCT}:key/other")))
    assert would_lock_out(doc, ROOT, ACCT) is False
    assert would_lock_out(doc, ROOT, ACCT, key_arn=KEY) is True


def test_lockout_message_is_awss():
    assert LOCKOUT_MESSAGE == (
        "The new key policy will not allow you to update the key policy in the future."
    )
