"""KMS key policies: parse and validate a policy document, evaluate it for a request.

Pure code, no I/O. `parse_policy` either returns a whole `Policy` or raises (PutKeyPolicy
never half-applies). `evaluate` follows IAM's evaluation order for one resource policy:
explicit Deny > Allow > implicit deny (reference_policies_evaluation-logic.html).

Principals (reference_policies_elements_principal.html): `"*"` and `{"AWS": "*"}` match
anyone; an exact ARN matches that principal; an account root ARN
`arn:aws:iam::<acct>:root` or a bare `<acct>` stands for the account, i.e. it delegates to
the account's IAM: for a principal of that account other than the root itself, an Allow
matched this way yields `allow_via_account_root` (the caller's IAM must also allow; the
caller of this module checks that). `{"Service": "x.amazonaws.com"}` matches
`AuthzRequest.service_principal`. A Deny applies to every match, direct or via the account.

Conditions: see kmscore.conditions. `evaluate` adds `aws:PrincipalArn`,
`aws:PrincipalAccount` and `kms:CallerAccount` from the request when the context does not
supply them (and the caller is not a service acting as itself).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import Enum

from kmscore.conditions import (
    Condition,
    ContextValue,
    conditions_hold,
    fold_context,
    parse_condition_block,
    wildcard_match,
)
from kmscore.errors import MalformedPolicyDocumentException, ValidationException
from kmscore.frozen import frozen

MAX_POLICY_LENGTH = 32768
VERSIONS = ("2012-10-17", "2008-10-17")
LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."
INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."

_TOP_LEVEL = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}
# PutKeyPolicy: printable ASCII, printable Basic Latin and Latin-1 Supplement, tab, LF, CR.
_ALLOWED_CHARS = re.compile(r"[\t\n\r\u0020-\u007e\u00a0-\u00ff]*")
_ACCOUNT = re.compile(r"\d{12}")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):[^*?\s]+")
_ROOT_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root")
_ACTION = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_SERVICE = re.compile(r"[a-z0-9.-]+")


@frozen
class Principal:
    """wildcard: "*" or {"AWS": "*"}; aws: ARNs or account ids; services: service principals."""

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


@frozen
class Statement:
    effect: str  # "Allow" | "Deny"
    principal: Principal
    actions: tuple[str, ...]  # patterns; the NotAction list when not_action
    resources: tuple[str, ...]  # patterns; the NotResource list when not_resource
    sid: str | None = None
    not_action: bool = False
    not_resource: bool = False
    conditions: tuple[Condition, ...] = ()


@frozen
class Policy:
    version: str
    statements: tuple[Statement, ...]
    id: str | None = None


@frozen
class AuthzRequest:
    principal_arn: str
    principal_account: str
    action: str  # e.g. "kms:Decrypt"
    resource: str  # the key ARN
    context: Mapping[str, ContextValue]
    service_principal: str | None = None


@frozen
class PolicyResult:
    """At most one field is True. A Deny wins; `allow` wins over `allow_via_account_root`."""

    explicit_deny: bool
    allow: bool
    allow_via_account_root: bool


def _malformed(message: str) -> MalformedPolicyDocumentException:
    return MalformedPolicyDocumentException(message)


# ---------------------------------------------------------------- parsing


def _object_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _malformed(f"Duplicate element in policy: {key}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> object:
    raise _malformed(f"Invalid JSON value in policy: {name}")


def _load_json(text: str) -> object:
    if not isinstance(text, str) or not text:
        raise ValidationException("Policy must be a non-empty string.")
    if len(text) > MAX_POLICY_LENGTH:
        raise ValidationException(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_POLICY_LENGTH}"
        )
    if not _ALLOWED_CHARS.fullmatch(text):
        raise _malformed("The policy document contains characters that are not allowed.")
    try:
        return json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _malformed("The policy document is not valid JSON.") from None


def _strings(raw: object, element: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(i, str) and i for i in items):
        raise _malformed(f"{element} must be a non-empty string or list of non-empty strings.")
    return tuple(items)


def _parse_aws_principals(raw: object) -> tuple[bool, tuple[str, ...]]:
    try:
        entries = _strings(raw, "Principal")
    except MalformedPolicyDocumentException:
        raise _malformed(INVALID_PRINCIPALS) from None
    for entry in entries:
        if entry != "*" and not (_ACCOUNT.fullmatch(entry) or _PRINCIPAL_ARN.fullmatch(entry)):
            raise _malformed(INVALID_PRINCIPALS)
    return "*" in entries, entries


def _parse_principal(raw: object) -> Principal:
    if raw == "*":
        return Principal(wildcard=True)
    if not isinstance(raw, dict) or not raw:
        raise _malformed(INVALID_PRINCIPALS)
    unknown = set(raw) - {"AWS", "Service"}
    if unknown:
        raise _malformed(f"{INVALID_PRINCIPALS} Unsupported principal type: {sorted(unknown)[0]}")
    wildcard, aws = _parse_aws_principals(raw["AWS"]) if "AWS" in raw else (False, ())
    services: tuple[str, ...] = ()
    if "Service" in raw:
        try:
            services = _strings(raw["Service"], "Principal")
        except MalformedPolicyDocumentException:
            raise _malformed(INVALID_PRINCIPALS) from None
        if not all(_SERVICE.fullmatch(s) for s in services):
            raise _malformed(INVALID_PRINCIPALS)
    return Principal(wildcard=wildcard, aws=aws, services=services)


def _pick(raw: dict, name: str) -> tuple[tuple[str, ...], bool]:
    negated = f"Not{name}"
    if (name in raw) == (negated in raw):
        raise _malformed(f"Each statement must contain exactly one of {name} and {negated}.")
    element = name if name in raw else negated
    return _strings(raw[element], element), element == negated


def _parse_actions(raw: dict) -> tuple[tuple[str, ...], bool]:
    actions, negated = _pick(raw, "Action")
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise _malformed(f"Actions must be prefaced by a vendor, e.g. kms: ({action})")
    return actions, negated


def _parse_effect(raw: dict) -> str:
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _malformed("Each statement must have an Effect of Allow or Deny.")
    return effect


def _parse_statement(raw: object) -> Statement:
    if not isinstance(raw, dict):
        raise _malformed("Each Statement must be a JSON object.")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise _malformed(f"Unknown element in policy statement: {sorted(unknown)[0]}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise _malformed("Sid must be a string.")
    effect = _parse_effect(raw)
    if "NotPrincipal" in raw:
        raise _malformed("NotPrincipal is not supported in key policies by this simulator.")
    if "Principal" not in raw:
        raise _malformed("Each statement in a key policy must have a Principal.")
    principal = _parse_principal(raw["Principal"])
    actions, not_action = _parse_actions(raw)
    resources, not_resource = _pick(raw, "Resource")
    conditions = parse_condition_block(raw.get("Condition"))
    return Statement(
        effect, principal, actions, resources, sid, not_action, not_resource, conditions
    )


def parse_policy(text: str) -> Policy:
    """Parse and validate a key policy document.

    Raises MalformedPolicyDocumentException (message like AWS's) for anything invalid, and
    ValidationException (as the API's length constraint does) for an empty policy or one
    longer than 32768 characters.
    """
    doc = _load_json(text)
    if not isinstance(doc, dict):
        raise _malformed("The policy document must be a JSON object.")
    unknown = set(doc) - _TOP_LEVEL
    if unknown:
        raise _malformed(f"Unknown element in policy: {sorted(unknown)[0]}")
    version = doc.get("Version")
    if version not in VERSIONS:
        raise _malformed(f"Policy Version must be one of {', '.join(VERSIONS)}.")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise _malformed("Policy Id must be a string.")
    raw = doc.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise _malformed("The policy must contain at least one Statement.")
    parsed = tuple(_parse_statement(s) for s in statements)
    return Policy(version=version, statements=parsed, id=policy_id)


# ---------------------------------------------------------------- evaluation


class _Match(Enum):
    DIRECT = 1
    VIA_ROOT = 2


def _account_of(entry: str) -> str | None:
    """The account an entry stands for when it is an account root (ARN or bare id)."""
    if _ACCOUNT.fullmatch(entry):
        return entry
    root = _ROOT_ARN.fullmatch(entry)
    return root.group(1) if root else None


def _principal_match(principal: Principal, req: AuthzRequest) -> _Match | None:
    if principal.wildcard:
        return _Match.DIRECT
    service = (req.service_principal or "").lower()
    if service and service in (s.lower() for s in principal.services):
        return _Match.DIRECT
    is_root = req.principal_arn == f"arn:aws:iam::{req.principal_account}:root"
    best = None
    for entry in principal.aws:
        if req.principal_arn and entry == req.principal_arn:
            return _Match.DIRECT
        if req.principal_account and _account_of(entry) == req.principal_account:
            if is_root:
                return _Match.DIRECT
            best = _Match.VIA_ROOT
    return best


def _in_scope(statement: Statement, req: AuthzRequest, check_resource: bool) -> bool:
    action = req.action.lower()
    hit = any(wildcard_match(p.lower(), action) for p in statement.actions)
    if hit == statement.not_action:
        return False
    if not check_resource:
        return True
    hit = any(wildcard_match(p, req.resource) for p in statement.resources)
    return hit != statement.not_resource


def _context(req: AuthzRequest) -> dict[str, tuple[str, ...]]:
    derived: dict[str, ContextValue] = {}
    if req.service_principal is None and req.principal_arn:
        derived["aws:PrincipalArn"] = req.principal_arn
    if req.service_principal is None and req.principal_account:
        derived["aws:PrincipalAccount"] = req.principal_account
        derived["kms:CallerAccount"] = req.principal_account
    supplied = {k.lower() for k in req.context}
    derived = {k: v for k, v in derived.items() if k.lower() not in supplied}
    return fold_context({**derived, **req.context})


def _evaluate(policy: Policy, req: AuthzRequest, check_resource: bool) -> PolicyResult:
    context = _context(req)
    allow = via_root = False
    for statement in policy.statements:
        match = _principal_match(statement.principal, req)
        if match is None or not _in_scope(statement, req, check_resource):
            continue
        if not conditions_hold(statement.conditions, context):
            continue
        if statement.effect == "Deny":
            return PolicyResult(explicit_deny=True, allow=False, allow_via_account_root=False)
        if match is _Match.DIRECT:
            allow = True
        else:
            via_root = True
    return PolicyResult(False, allow, via_root and not allow)


def evaluate(policy: Policy, req: AuthzRequest) -> PolicyResult:
    """Explicit Deny > Allow > implicit deny (all three False)."""
    return _evaluate(policy, req, check_resource=True)


def would_lock_out(
    policy: Policy,
    principal_arn: str,
    principal_account: str,
    *,
    key_arn: str | None = None,
    context: Mapping[str, ContextValue] | None = None,
) -> bool:
    """True when `principal_arn` could no longer call kms:PutKeyPolicy under `policy`.

    AWS's lockout safety check (PutKeyPolicy, BypassPolicyLockoutSafetyCheck): "the key
    policy must allow the principal that is making the PutKeyPolicy request to make a
    subsequent PutKeyPolicy request". An Allow through the account root counts as allowing
    (the account's IAM can grant it). Without `key_arn`, Resource elements are not checked.
    On True, raise MalformedPolicyDocumentException(LOCKOUT_MESSAGE).
    """
    req = AuthzRequest(
        principal_arn, principal_account, "kms:PutKeyPolicy", key_arn or "*", context or {}
    )
    result = _evaluate(policy, req, check_resource=key_arn is not None)
    return not (result.allow or result.allow_via_account_root)


# ---------------------------------------------------------------- default policies


def _dump(doc: dict) -> str:
    return json.dumps(doc, indent=2)


def default_key_policy(account: str) -> str:
    """AWS's default key policy: the account root (hence the account's IAM) gets kms:*."""
    statement = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return _dump({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [statement]})


def _service_title(service: str) -> str:
    return service.upper() if len(service) <= 3 else service.capitalize()


def aws_managed_key_policy(account: str, service: str, region: str) -> str:
    """The policy of an AWS managed key (e.g. aws/s3), as AWS writes it.

    Principals of the account may use the key for crypto, but only through the service
    (kms:CallerAccount + kms:ViaService); the account root gets read-only access.
    """
    title = _service_title(service)
    use = {
        "Sid": f"Allow access through {title} for all principals in the account "
        f"that are authorized to use {title}",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:DescribeKey",
        ],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:CallerAccount": account,
                "kms:ViaService": f"{service}.{region}.amazonaws.com",
            }
        },
    }
    read = {
        "Sid": "Allow direct access to key metadata to the account",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
        "Resource": "*",
    }
    return _dump({"Version": "2012-10-17", "Id": f"auto-{service}-2", "Statement": [use, read]})
