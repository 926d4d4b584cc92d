"""Shared pieces of the key-policy tests (test_policy*.py)."""

from __future__ import annotations

import json

from kmscore.policy import AuthzRequest, PolicyResult, evaluate, parse_policy

ACCT = "111122223333"
OTHER = "444455556666"
ROOT = f"arn:aws:iam::{ACCT}:root"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/bob"
OTHER_ROOT = f"arn:aws:iam::{OTHER}:root"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
S3_VIA = "s3.us-east-1.amazonaws.com"

DENY = PolicyResult(explicit_deny=True, allow=False, allow_via_account_root=False)
ALLOW = PolicyResult(explicit_deny=False, allow=True, allow_via_account_root=False)
VIA_ROOT = PolicyResult(explicit_deny=False, allow=False, allow_via_account_root=True)
IMPLICIT = PolicyResult(explicit_deny=False, allow=False, allow_via_account_root=False)


def stmt(effect="Allow", principal=None, action="kms:*", resource="*", **extra) -> dict:
    s = {"Effect": effect, "Principal": principal or {"AWS": ROOT}}
    s["Action"] = action
    s["Resource"] = resource
    s.update(extra)
    return s


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def req(arn=ALICE, account=ACCT, action="kms:Decrypt", resource=KEY, service=None, **context):
    ctx = {k.replace("__", ":"): v for k, v in context.items()}
    return AuthzRequest(arn, account, action, resource, ctx, service_principal=service)


def check(doc: str, request: AuthzRequest) -> PolicyResult:
    return evaluate(parse_policy(doc), request)
