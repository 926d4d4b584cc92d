"""Grants: validation, constraint matching, tokens (pure functions, no state)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from kmscore.errors import InvalidGrantTokenException, ValidationException
from kmscore.models import Grant, GrantConstraints

GRANT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "Sign",
        "Verify",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
    }
)
# Operations that take an encryption context; constraints apply only to these.
CONTEXT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    }
)
TOKEN_PREFIX = "kmsgt1."
MAX_CONSTRAINT_PAIRS = 8


def validate_operations(operations: Iterable[str]) -> tuple[str, ...]:
    ops = tuple(dict.fromkeys(operations))
    if not ops:
        raise ValidationException("1 validation error detected: Operations must not be empty")
    bad = [o for o in ops if o not in GRANT_OPERATIONS]
    if bad:
        raise ValidationException(
            f"1 validation error detected: Value '{bad}' at 'operations' failed to satisfy "
            "constraint: Member must satisfy enum value set"
        )
    return ops


def parse_constraints(
    raw: Mapping[str, Mapping[str, str]] | GrantConstraints | None,
) -> GrantConstraints | None:
    """From {"EncryptionContextSubset": {...}} / {"EncryptionContextEquals": {...}}
    (or an already-built GrantConstraints)."""
    if isinstance(raw, GrantConstraints):
        if raw.encryption_context_subset is not None and raw.encryption_context_equals is not None:
            raise ValidationException("More than one constraint supplied")
        both_none = raw.encryption_context_subset is None and raw.encryption_context_equals is None
        return None if both_none else raw
    if not raw:
        return None
    unknown = set(raw) - {"EncryptionContextSubset", "EncryptionContextEquals"}
    if unknown:
        raise ValidationException(f"Unknown grant constraint: {sorted(unknown)[0]}")
    subset = raw.get("EncryptionContextSubset")
    equals = raw.get("EncryptionContextEquals")
    if subset is not None and equals is not None:
        raise ValidationException("More than one constraint supplied")
    chosen = subset if subset is not None else equals
    if chosen is None:
        return None
    if not isinstance(chosen, Mapping) or len(chosen) > MAX_CONSTRAINT_PAIRS:
        raise ValidationException("A grant constraint holds at most 8 string pairs")
    pairs = tuple(sorted((str(k), str(v)) for k, v in chosen.items()))
    if subset is not None:
        return GrantConstraints(encryption_context_subset=pairs)
    return GrantConstraints(encryption_context_equals=pairs)


def _fold(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    # In grant constraints keys are case-insensitive, values case-sensitive.
    return {k.lower(): v for k, v in pairs}


def constraints_hold(c: GrantConstraints | None, context: Mapping[str, str]) -> bool:
    if c is None:
        return True
    ctx = _fold(context.items())
    if c.encryption_context_equals is not None:
        return ctx == _fold(c.encryption_context_equals)
    want = _fold(c.encryption_context_subset or ())
    return all(ctx.get(k) == v for k, v in want.items())


def grant_allows(grant: Grant, operation: str, context: Mapping[str, str] | None) -> bool:
    """True when `grant` permits `operation` (e.g. "Decrypt") under `context`."""
    if operation not in grant.operations:
        return False
    if operation not in CONTEXT_OPERATIONS:
        return True
    return constraints_hold(grant.constraints, context or {})


def at_least_as_strict(child: GrantConstraints | None, parent: GrantConstraints | None) -> bool:
    """A grant created through a grant must be as strict as its parent (or stricter)."""
    if parent is None:
        return True
    if child is None:
        return False
    if parent.encryption_context_equals is not None:
        return child.encryption_context_equals is not None and _fold(
            child.encryption_context_equals
        ) == _fold(parent.encryption_context_equals)
    want = _fold(parent.encryption_context_subset or ())
    have = _fold(child.encryption_context_subset or child.encryption_context_equals or ())
    return all(have.get(k) == v for k, v in want.items())


def make_token(grant_id: str, secret: bytes) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(bytes.fromhex(grant_id) + secret).decode()


def token_grant_id(token: str) -> str:
    """The grant id a token names; InvalidGrantTokenException when malformed."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 8192:
        raise InvalidGrantTokenException("Invalid grant token")
    try:
        raw = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :].encode())
    except (binascii.Error, ValueError):
        raise InvalidGrantTokenException("Invalid grant token") from None
    if len(raw) < 33:
        raise InvalidGrantTokenException("Invalid grant token")
    return raw[:32].hex()
