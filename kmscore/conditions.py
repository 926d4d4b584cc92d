"""IAM condition operators for key policies: parse a `Condition` block, evaluate it.

Pure code, no I/O. Semantics follow AWS's IAM documentation:

- Condition element (reference_policies_elements_condition.html): several operators, or
  several keys under one operator, are ANDed; several values for one key are ORed.
  "Context key *names* are not case-sensitive"; the case-sensitivity of *values* depends on
  the operator.
- Condition operators (reference_policies_elements_condition_operators.html), "Important":
  "If the key that you specify in a policy condition is not present in the request context,
  the values do not match and the condition is *false*. If the policy condition requires that
  the key is *not* matched, such as `StringNotLike` or `ArnNotLike`, and the right key is not
  present, the condition is *true*. This logic applies to all condition operators except
  ...IfExists and Null check." `...IfExists`: "If the key is not present, evaluate the
  condition element as true." `Null`: true when the policy value is "true" and the key is
  absent, or "false" and the key is present.
- Set operators (reference_policies_multi-value-conditions.html): `ForAnyValue` is true when
  any request value matches; `ForAllValues` when every request value matches at least one
  policy value. "If the key values in the request resolve to an empty data set (for example,
  an empty string), a condition operator modified by `ForAllValues` returns true, and a
  condition operator modified by `ForAnyValue` returns false." With a negated operator the
  per-value test is negated (e.g. `ForAllValues:StringNotEquals`: no request value equals
  any policy value).
- KMS (kms developer guide, conditions-kms "kms:EncryptionContext:"): "the condition key,
  which consists of the `kms:EncryptionContext:` prefix and the *encryption_context_key*
  replacement, is not case sensitive". So the whole key name is folded to lower case here;
  two request keys that differ only by case become one multi-valued key (see `fold_context`).

A multi-valued request key used with a plain (unqualified) operator matches when any of its
values matches (the negated operators are the complement of that). Policy variables
(`${aws:username}`) are not expanded: they are compared literally.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from kmscore.errors import MalformedPolicyDocumentException
from kmscore.frozen import frozen

ContextValue = str | tuple[str, ...] | bool
Matcher = Callable[[str, str], bool]  # (request value, policy value) -> match


def wildcard_match(pattern: str, value: str) -> bool:
    """True when `value` matches `pattern`, where `*` is any run and `?` any one character.

    Greedy matching with a single back-tracking point: O(len(pattern) * len(value)) at
    worst, so a hostile policy cannot make evaluation exponential.
    """
    p = v = 0
    star, mark = -1, 0
    while v < len(value):
        if p < len(pattern) and pattern[p] in ("?", value[v]) and pattern[p] != "*":
            p, v = p + 1, v + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark, p = p, v, p + 1
        elif star >= 0:
            mark += 1
            p, v = star + 1, mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def arn_match(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-delimited components matched separately."""
    pat, val = pattern.split(":", 5), value.split(":", 5)
    if len(pat) != 6 or len(val) != 6 or val[0] != "arn":
        return False
    return all(wildcard_match(p, v) for p, v in zip(pat, val, strict=True))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    number = _number(text)
    if number is not None:
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(parse: Callable[[str], object], test: Callable[[object, object], bool]) -> Matcher:
    def match(request: str, policy: str) -> bool:
        a, b = parse(request), parse(policy)
        return a is not None and b is not None and test(a, b)

    return match


def _in_network(request: str, policy: str) -> bool:
    try:
        return ipaddress.ip_address(request) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


def _eq(a: object, b: object) -> bool:
    return a == b


@frozen
class Operator:
    """A base operator: its matcher, whether it is the negated form, and value validation."""

    name: str
    match: Matcher
    negated: bool = False
    validate: Callable[[str], object] | None = None


def _valid_ip(text: str) -> object:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _family(names: tuple[str, str], match: Matcher, validate=None) -> list[Operator]:
    positive, negative = names
    return [Operator(positive, match, False, validate), Operator(negative, match, True, validate)]


_OPERATORS: list[Operator] = [
    *_family(("StringEquals", "StringNotEquals"), _eq),
    *_family(
        ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
        lambda a, b: a.casefold() == b.casefold(),
    ),
    *_family(("StringLike", "StringNotLike"), lambda a, b: wildcard_match(b, a)),
    *_family(("NumericEquals", "NumericNotEquals"), _compare(_number, _eq), _number),
    Operator("NumericLessThan", _compare(_number, lambda a, b: a < b), False, _number),
    Operator("NumericLessThanEquals", _compare(_number, lambda a, b: a <= b), False, _number),
    Operator("NumericGreaterThan", _compare(_number, lambda a, b: a > b), False, _number),
    Operator("NumericGreaterThanEquals", _compare(_number, lambda a, b: a >= b), False, _number),
    *_family(("DateEquals", "DateNotEquals"), _compare(_date, _eq), _date),
    Operator("DateLessThan", _compare(_date, lambda a, b: a < b), False, _date),
    Operator("DateLessThanEquals", _compare(_date, lambda a, b: a <= b), False, _date),
    Operator("DateGreaterThan", _compare(_date, lambda a, b: a > b), False, _date),
    Operator("DateGreaterThanEquals", _compare(_date, lambda a, b: a >= b), False, _date),
    Operator("Bool", lambda a, b: a.lower() == b.lower()),
    Operator("BinaryEquals", _eq),
    *_family(("IpAddress", "NotIpAddress"), _in_network, _valid_ip),
    *_family(("ArnEquals", "ArnNotEquals"), lambda a, b: arn_match(b, a)),
    *_family(("ArnLike", "ArnNotLike"), lambda a, b: arn_match(b, a)),
]
OPERATORS: dict[str, Operator] = {op.name.lower(): op for op in _OPERATORS}
_NULL = "null"
_QUALIFIERS = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}


@frozen
class Condition:
    """One (operator, key) pair of a Condition block.

    operator:  the canonical spelling as written, e.g. "ForAnyValue:StringLikeIfExists".
    base:      the base operator, e.g. "StringLike" or "Null".
    qualifier: "ForAnyValue", "ForAllValues" or None.
    if_exists: the ...IfExists suffix was present.
    key:       the condition key, lower-cased (key names are case-insensitive).
    values:    the policy values (ORed); JSON booleans/numbers are kept as their JSON text.
    """

    operator: str
    base: str
    qualifier: str | None
    if_exists: bool
    key: str
    values: tuple[str, ...]


def _malformed(message: str) -> MalformedPolicyDocumentException:
    return MalformedPolicyDocumentException(message)


def split_operator(text: str) -> tuple[str | None, str, bool]:
    """ "ForAnyValue:StringLikeIfExists" -> ("ForAnyValue", "StringLike", True).

    Operator names are matched case-insensitively and returned in canonical spelling.
    Raises MalformedPolicyDocumentException for an unknown operator.
    """
    qualifier = None
    rest = text
    if ":" in text:
        prefix, rest = text.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            raise _malformed(f"Unknown condition set operator in policy: {text}")
    if_exists = rest.lower().endswith("ifexists")
    base = rest[: -len("ifexists")] if if_exists else rest
    if base.lower() == _NULL:
        if if_exists or qualifier:
            raise _malformed(f"Invalid condition operator in policy: {text}")
        return None, "Null", False
    op = OPERATORS.get(base.lower())
    if op is None:
        raise _malformed(f"Unknown condition operator in policy: {text}")
    return qualifier, op.name, if_exists


def _scalar(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    raise _malformed(f"Condition values must be strings, numbers or booleans: {where}")


def _values(raw: object, where: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise _malformed(f"Condition key has no values: {where}")
    return tuple(_scalar(item, where) for item in items)


def _check_values(base: str, values: tuple[str, ...], where: str) -> None:
    if base == "Null":
        if any(v.lower() not in ("true", "false") for v in values):
            raise _malformed(f"Null condition values must be true or false: {where}")
        return
    validate = OPERATORS[base.lower()].validate
    if validate is not None and any(validate(v) is None for v in values):
        raise _malformed(f"Invalid value for condition operator {base}: {where}")


def _check_key(key: object, where: str) -> str:
    if not isinstance(key, str) or ":" not in key or key.startswith(":") or key.endswith(":"):
        raise _malformed(f"Condition keys must be prefixed by a vendor, e.g. kms: ({where})")
    return key.lower()


def parse_condition_block(raw: object) -> tuple[Condition, ...]:
    """Parse a statement's Condition element; raises MalformedPolicyDocumentException."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _malformed("The Condition element must be a JSON object.")
    conditions: list[Condition] = []
    for operator, block in raw.items():
        qualifier, base, if_exists = split_operator(operator)
        if not isinstance(block, dict) or not block:
            raise _malformed(f"Condition operator {operator} must map keys to values.")
        spelled = (f"{qualifier}:" if qualifier else "") + base + ("IfExists" if if_exists else "")
        for key, value in block.items():
            where = f"{operator} {key}"
            folded = _check_key(key, where)
            values = _values(value, where)
            _check_values(base, values, where)
            conditions.append(Condition(spelled, base, qualifier, if_exists, folded, values))
    return tuple(conditions)


def _as_values(value: ContextValue | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, str):
        return (value,)
    return tuple(_scalar(item, "request context") for item in value)


def fold_context(context: Mapping[str, ContextValue]) -> dict[str, tuple[str, ...]]:
    """Request context with lower-cased key names and every value as a tuple of strings.

    Keys that differ only by case merge into one multi-valued key (values deduplicated in
    order), because a policy cannot tell them apart either.
    """
    folded: dict[str, tuple[str, ...]] = {}
    for key, value in context.items():
        values = _as_values(value)
        if values is None:
            continue
        name = key.lower()
        merged = folded.get(name, ()) + values
        folded[name] = tuple(dict.fromkeys(merged))
    return folded


def _value_holds(op: Operator, request: str, policy_values: tuple[str, ...]) -> bool:
    return any(op.match(request, p) for p in policy_values) != op.negated


def condition_holds(cond: Condition, context: Mapping[str, tuple[str, ...]]) -> bool:
    """Evaluate one condition against a `fold_context`-ed request context."""
    values = context.get(cond.key) or ()
    if cond.base == "Null":
        return any((v.lower() == "true") == (not values) for v in cond.values)
    op = OPERATORS[cond.base.lower()]
    if cond.qualifier is not None:
        if values == ("",):  # "an empty data set (for example, an empty string)"
            values = ()
        if not values:
            return cond.if_exists or cond.qualifier == "ForAllValues"
        tests = (_value_holds(op, v, cond.values) for v in values)
        return all(tests) if cond.qualifier == "ForAllValues" else any(tests)
    if not values:
        return cond.if_exists or op.negated
    matched = any(op.match(v, p) for v in values for p in cond.values)
    return matched != op.negated


def conditions_hold(
    conditions: tuple[Condition, ...], context: Mapping[str, tuple[str, ...]]
) -> bool:
    """All conditions of a statement must hold (AND)."""
    return all(condition_holds(c, context) for c in conditions)
