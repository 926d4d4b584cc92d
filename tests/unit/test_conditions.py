"""IAM condition operators: every family, missing keys, IfExists, Null, set operators."""

from __future__ import annotations

import pytest

from kmscore.conditions import (
    arn_match,
    condition_holds,
    fold_context,
    parse_condition_block,
    split_operator,
    wildcard_match,
)
from kmscore.errors import MalformedPolicyDocumentException

ABSENT = object()


def holds(operator: str, key: str, policy_values, request=ABSENT) -> bool:
    (cond,) = parse_condition_block({operator: {key: policy_values}})
    context = {} if request is ABSENT else {key: request}
    return condition_holds(cond, fold_context(context))


# ---------------------------------------------------------------- wildcards


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a*c", "ac", True),
        ("a*c", "abbbc", True),
        ("a*c", "abbbd", False),
        ("*.amazonaws.com", "s3.us-east-1.amazonaws.com", True),
        ("s3.*.amazonaws.com", "ec2.us-east-1.amazonaws.com", False),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXcYb", False),
        ("[ab]", "a", False),  # no character classes: brackets are literal
        ("[ab]", "[ab]", True),
        ("**", "x", True),
        ("?", "", False),
        ("ABC", "abc", False),  # case-sensitive
    ],
)
def test_wildcard_match(pattern, value, expected):
    assert wildcard_match(pattern, value) is expected


def test_wildcard_match_is_not_exponential():
    pattern = "*a" * 40 + "b"
    assert wildcard_match(pattern, "a" * 2000) is False


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:iam::111122223333:user/*", "arn:aws:iam::111122223333:user/alice", True),
        ("arn:aws:iam::*:root", "arn:aws:iam::444455556666:root", True),
        ("arn:aws:iam::111122223333:*", "arn:aws:iam::444455556666:root", False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b/c", True),
        ("arn:aws:iam::111122223333:root", "not-an-arn", False),
        ("arn:aws:iam::111122223333:root", "xrn:aws:iam::111122223333:root", False),
        ("arn:*", "arn:aws:iam::111122223333:root", False),  # pattern needs six parts
    ],
)
def test_arn_match(pattern, value, expected):
    assert arn_match(pattern, value) is expected


# ---------------------------------------------------------------- operator parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("StringEquals", (None, "StringEquals", False)),
        ("stringequals", (None, "StringEquals", False)),
        ("StringLikeIfExists", (None, "StringLike", True)),
        ("ForAnyValue:StringLike", ("ForAnyValue", "StringLike", False)),
        ("ForAllValues:StringEqualsIfExists", ("ForAllValues", "StringEquals", True)),
        ("Null", (None, "Null", False)),
        ("Bool", (None, "Bool", False)),
        ("ArnNotLike", (None, "ArnNotLike", False)),
        ("NumericLessThanEquals", (None, "NumericLessThanEquals", False)),
    ],
)
def test_split_operator(text, expected):
    assert split_operator(text) == expected


@pytest.mark.parametrize(
    "block",
    [
        {"StringEqualz": {"kms:ViaService": "x"}},
        {"ForSomeValues:StringEquals": {"kms:ViaService": "x"}},
        {"NullIfExists": {"kms:ViaService": "true"}},
        {"ForAnyValue:Null": {"kms:ViaService": "true"}},
        {"StringEquals": "x"},
        {"StringEquals": {}},
        {"StringEquals": {"kms:ViaService": []}},
        {"StringEquals": {"kms:ViaService": {"a": "b"}}},
        {"StringEquals": {"kms:ViaService": None}},
        {"StringEquals": {"kms:ViaService": [["x"]]}},
        {"StringEquals": {"ViaService": "x"}},
        {"StringEquals": {"kms:": "x"}},
        {"Null": {"kms:ViaService": "maybe"}},
        {"NumericLessThan": {"kms:X": "ten"}},
        {"DateLessThan": {"aws:CurrentTime": "yesterday"}},
        {"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}},
        ["StringEquals"],
    ],
)
def test_malformed_condition_blocks(block):
    with pytest.raises(MalformedPolicyDocumentException) as err:
        parse_condition_block(block)
    assert err.value.code == "MalformedPolicyDocumentException"
    assert err.value.status == 400


def test_condition_block_parses_keys_lowercase_and_scalars():
    conds = parse_condition_block(
        {"Bool": {"kms:GrantIsForAWSResource": True}, "NumericEquals": {"kms:N": 3}}
    )
    assert [(c.key, c.values) for c in conds] == [
        ("kms:grantisforawsresource", ("true",)),
        ("kms:n", ("3",)),
    ]


# ---------------------------------------------------------------- single-valued operators

# (operator, policy values, request value or ABSENT, expected)
SINGLE = [
    # StringEquals: case-sensitive, OR over values, absent -> false
    ("StringEquals", "s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", True),
    ("StringEquals", "s3.us-east-1.amazonaws.com", "S3.us-east-1.amazonaws.com", False),
    ("StringEquals", ["a", "b"], "b", True),
    ("StringEquals", ["a", "b"], "c", False),
    ("StringEquals", "a", ABSENT, False),
    ("StringEquals", "", "", True),
    # StringNotEquals: absent -> true
    ("StringNotEquals", "a", "b", True),
    ("StringNotEquals", "a", "a", False),
    ("StringNotEquals", ["a", "b"], "b", False),
    ("StringNotEquals", "a", ABSENT, True),
    # IgnoreCase
    ("StringEqualsIgnoreCase", "AbC", "aBc", True),
    ("StringEqualsIgnoreCase", "abc", "abd", False),
    ("StringEqualsIgnoreCase", "abc", ABSENT, False),
    ("StringNotEqualsIgnoreCase", "AbC", "abc", False),
    ("StringNotEqualsIgnoreCase", "AbC", "abd", True),
    ("StringNotEqualsIgnoreCase", "abc", ABSENT, True),
    # StringLike / StringNotLike
    ("StringLike", "s3.*.amazonaws.com", "s3.eu-west-1.amazonaws.com", True),
    ("StringLike", "s3.*.amazonaws.com", "ec2.eu-west-1.amazonaws.com", False),
    ("StringLike", "a?c", "abc", True),
    ("StringLike", "A*", "abc", False),
    ("StringLike", "*", ABSENT, False),
    ("StringNotLike", "s3.*", "ec2.x", True),
    ("StringNotLike", "s3.*", "s3.x", False),
    ("StringNotLike", ["x*", "s3.*"], "s3.x", False),
    ("StringNotLike", "*", ABSENT, True),
    # Bool
    ("Bool", "true", True, True),
    ("Bool", "true", False, False),
    ("Bool", True, "TRUE", True),
    ("Bool", "false", False, True),
    ("Bool", "true", ABSENT, False),
    ("Bool", "false", ABSENT, False),
    # Arn
    ("ArnEquals", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:root", True),
    ("ArnLike", "arn:aws:iam::111122223333:*", "arn:aws:iam::111122223333:user/a", True),
    ("ArnLike", "arn:aws:iam::111122223333:*", "arn:aws:iam::444455556666:user/a", False),
    ("ArnLike", "arn:aws:iam::*:*", ABSENT, False),
    ("ArnNotEquals", "arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root", True),
    ("ArnNotLike", "arn:aws:iam::111122223333:*", "arn:aws:iam::111122223333:user/a", False),
    ("ArnNotLike", "arn:aws:iam::111122223333:*", ABSENT, True),
    # Numeric
    ("NumericEquals", "10", "10", True),
    ("NumericEquals", "10", "10.0", True),
    ("NumericEquals", "10", "11", False),
    ("NumericEquals", "10", "ten", False),
    ("NumericEquals", "10", ABSENT, False),
    ("NumericNotEquals", "10", "11", True),
    ("NumericNotEquals", "10", ABSENT, True),
    ("NumericLessThan", "10", "9", True),
    ("NumericLessThan", "10", "10", False),
    ("NumericLessThanEquals", "10", "10", True),
    ("NumericGreaterThan", "10", "11", True),
    ("NumericGreaterThan", "10", ABSENT, False),
    ("NumericGreaterThanEquals", "10", "9", False),
    # Date
    ("DateLessThan", "2030-01-01T00:00:00Z", "2026-11-29T08:00:00Z", True),
    ("DateLessThan", "2020-01-01T00:00:00Z", "2026-11-29T08:00:00Z", False),
    ("DateGreaterThan", "1577836800", "2026-11-29T08:00:00Z", True),
    ("DateEquals", "2020-01-01T00:00:00Z", "1577836800", True),
    ("DateNotEquals", "2020-01-01T00:00:00Z", ABSENT, True),
    ("DateLessThan", "2030-01-01T00:00:00Z", ABSENT, False),
    # IP
    ("IpAddress", "127.0.0.0/8", "127.0.0.1", True),
    ("IpAddress", "10.0.0.0/8", "127.0.0.1", False),
    ("IpAddress", "10.0.0.0/8", "s3.amazonaws.com", False),
    ("IpAddress", "10.0.0.0/8", ABSENT, False),
    ("NotIpAddress", "10.0.0.0/8", "127.0.0.1", True),
    ("NotIpAddress", "10.0.0.0/8", ABSENT, True),
    # BinaryEquals
    ("BinaryEquals", "QmluYXJ5", "QmluYXJ5", True),
    ("BinaryEquals", "QmluYXJ5", ABSENT, False),
]


@pytest.mark.parametrize(("operator", "policy", "request_value", "expected"), SINGLE)
def test_single_valued_operators(operator, policy, request_value, expected):
    assert holds(operator, "kms:SomeKey", policy, request_value) is expected


# IfExists: absent -> true for every family; present -> the base operator's answer.
IF_EXISTS = [
    ("StringEqualsIfExists", "a", ABSENT, True),
    ("StringEqualsIfExists", "a", "a", True),
    ("StringEqualsIfExists", "a", "b", False),
    ("StringNotEqualsIfExists", "a", ABSENT, True),
    ("StringNotEqualsIfExists", "a", "a", False),
    ("StringLikeIfExists", "s3.*", ABSENT, True),
    ("StringLikeIfExists", "s3.*", "ec2.x", False),
    ("StringNotLikeIfExists", "s3.*", "s3.x", False),
    ("StringEqualsIgnoreCaseIfExists", "A", ABSENT, True),
    ("BoolIfExists", "true", ABSENT, True),
    ("BoolIfExists", "true", False, False),
    ("ArnLikeIfExists", "arn:aws:iam::*:*", ABSENT, True),
    ("NumericLessThanIfExists", "5", ABSENT, True),
    ("NumericLessThanIfExists", "5", "7", False),
    ("IpAddressIfExists", "10.0.0.0/8", ABSENT, True),
    ("DateLessThanIfExists", "2020-01-01T00:00:00Z", ABSENT, True),
]


@pytest.mark.parametrize(("operator", "policy", "request_value", "expected"), IF_EXISTS)
def test_if_exists(operator, policy, request_value, expected):
    assert holds(operator, "kms:SomeKey", policy, request_value) is expected


NULL = [
    ("true", ABSENT, True),
    ("true", "x", False),
    ("false", ABSENT, False),
    ("false", "x", True),
    (True, ABSENT, True),
    ("TRUE", ABSENT, True),
    ("true", (), True),  # an empty multi-valued key counts as absent
    ("false", ("a",), True),
    ("false", False, True),  # a boolean key that is present
    (["true", "false"], ABSENT, True),
]


@pytest.mark.parametrize(("policy", "request_value", "expected"), NULL)
def test_null(policy, request_value, expected):
    assert holds("Null", "kms:SomeKey", policy, request_value) is expected


# ---------------------------------------------------------------- multi-valued (set operators)

KEYS = "kms:EncryptionContextKeys"
SETS = [
    # ForAnyValue: any request value matches; absent / empty -> false
    ("ForAnyValue:StringEquals", ["a", "b"], ("b", "z"), True),
    ("ForAnyValue:StringEquals", ["a", "b"], ("y", "z"), False),
    ("ForAnyValue:StringEquals", ["a", "b"], ABSENT, False),
    ("ForAnyValue:StringEquals", ["a", "b"], (), False),
    ("ForAnyValue:StringEquals", ["a", "b"], "", False),
    ("ForAnyValue:StringEquals", "a", "a", True),  # a single string is a set of one
    ("ForAnyValue:StringLike", "aws:*", ("aws:s3:arn", "x"), True),
    ("ForAnyValue:StringNotEquals", ["a"], ("a", "b"), True),
    ("ForAnyValue:StringNotEquals", ["a"], ("a",), False),
    ("ForAnyValue:StringNotEquals", ["a"], ABSENT, False),
    ("ForAnyValue:StringEqualsIfExists", ["a"], ABSENT, True),
    # ForAllValues: every request value matches some policy value; absent / empty -> true
    ("ForAllValues:StringEquals", ["a", "b"], ("a", "b"), True),
    ("ForAllValues:StringEquals", ["a", "b"], ("a",), True),
    ("ForAllValues:StringEquals", ["a", "b"], ("a", "z"), False),
    ("ForAllValues:StringEquals", ["a", "b"], ABSENT, True),
    ("ForAllValues:StringEquals", ["a", "b"], (), True),
    ("ForAllValues:StringEquals", ["a", "b"], "", True),
    ("ForAllValues:StringEquals", ["a"], ("A",), False),
    ("ForAllValues:StringEqualsIgnoreCase", ["a"], ("A",), True),
    ("ForAllValues:StringLike", ["app*", "env"], ("appname", "env"), True),
    ("ForAllValues:StringNotEquals", ["secret"], ("a", "b"), True),
    ("ForAllValues:StringNotEquals", ["secret"], ("a", "secret"), False),
    ("ForAllValues:StringNotLike", ["sec*"], ABSENT, True),
    ("ForAllValues:StringEqualsIfExists", ["a"], ABSENT, True),
    ("ForAllValues:StringEqualsIfExists", ["a"], ("b",), False),
]


@pytest.mark.parametrize(("operator", "policy", "request_value", "expected"), SETS)
def test_set_operators(operator, policy, request_value, expected):
    assert holds(operator, KEYS, policy, request_value) is expected


# A multi-valued key under a plain operator: any value matches; Not forms are the complement.
PLAIN_MULTI = [
    ("StringEquals", "a", ("a", "b"), True),
    ("StringEquals", "c", ("a", "b"), False),
    ("StringNotEquals", "a", ("a", "b"), False),
    ("StringNotEquals", "c", ("a", "b"), True),
    ("StringEquals", "a", (), False),
    ("StringNotEquals", "a", (), True),
]


@pytest.mark.parametrize(("operator", "policy", "request_value", "expected"), PLAIN_MULTI)
def test_plain_operators_on_multi_valued_keys(operator, policy, request_value, expected):
    assert holds(operator, KEYS, policy, request_value) is expected


# ---------------------------------------------------------------- key names


def test_key_names_are_case_insensitive_values_are_not():
    (cond,) = parse_condition_block({"StringEquals": {"KMS:ViaService": "s3.x"}})
    assert condition_holds(cond, fold_context({"kms:viaservice": "s3.x"}))
    assert not condition_holds(cond, fold_context({"kms:viaservice": "S3.X"}))


def test_encryption_context_key_part_is_case_insensitive():
    # AWS: "the condition key, which consists of the kms:EncryptionContext: prefix and the
    # encryption_context_key replacement, is not case sensitive".
    (cond,) = parse_condition_block(
        {"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}}
    )
    assert condition_holds(cond, fold_context({"kms:EncryptionContext:appname": "ExampleApp"}))
    assert not condition_holds(cond, fold_context({"kms:EncryptionContext:appname": "exampleapp"}))


def test_fold_context_merges_keys_differing_by_case():
    folded = fold_context(
        {"kms:EncryptionContext:App": "x", "kms:encryptioncontext:app": "y", "b": True}
    )
    assert folded == {"kms:encryptioncontext:app": ("x", "y"), "b": ("true",)}
