"""Authorization: key policy + IAM + grants, fail-closed.

Order: explicit Deny in the key policy -> AccessDeniedException; a policy Allow that
names the principal (same account; cross-account also needs the caller's IAM) -> ok;
an Allow via the caller's account root delegated to IAM and IAM allows -> ok; a grant
for this grantee, operation and encryption context (or named by a grant token) -> ok;
otherwise AccessDeniedException. Any failure inside evaluation denies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kmscore import grants as grantlib
from kmscore.caller import Caller
from kmscore.errors import AccessDeniedException, MalformedPolicyDocumentException
from kmscore.frozen import frozen
from kmscore.models import Grant, KeyRecord

log = logging.getLogger(__name__)
_CACHE_MAX = 1024


@frozen
class Request:
    """One authorization question about one key."""

    caller: Caller
    action: str  # "kms:Decrypt"
    key: KeyRecord
    context: Mapping[str, str] | None = None  # encryption context, for crypto operations
    extra: Mapping[str, Any] | None = None  # more condition keys (grant operations, ...)

    @property
    def operation(self) -> str:
        return self.action.split(":", 1)[1]


def condition_context(req: Request) -> dict[str, Any]:
    c = req.caller
    ctx: dict[str, Any] = {
        "kms:CallerAccount": c.account,
        "aws:PrincipalArn": c.arn,
        "aws:PrincipalAccount": c.account,
    }
    if c.via_service:
        ctx["kms:ViaService"] = c.via_service
    if req.context:  # an empty context means the keys are absent from the request
        for k, v in req.context.items():
            ctx[f"kms:EncryptionContext:{k}"] = v
        ctx["kms:EncryptionContextKeys"] = tuple(req.context)
    if req.extra:
        ctx.update(req.extra)
    return ctx


def denied(req: Request, reason: str) -> AccessDeniedException:
    return AccessDeniedException(
        f"User: {req.caller.arn or req.caller.service_principal} is not authorized to perform: "
        f"{req.action} on resource: {req.key.arn} because {reason}"
    )


class Authorizer:
    """Holds the policy engine and a small cache of parsed policies."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._parsed: dict[str, Any] = {}

    def parse(self, text: str) -> Any:
        """Parse (and cache) a policy; MalformedPolicyDocumentException when invalid."""
        hit = self._parsed.get(text)
        if hit is None:
            hit = self.engine.parse_policy(text)
            if len(self._parsed) >= _CACHE_MAX:
                self._parsed.clear()
            self._parsed[text] = hit
        return hit

    def policy_result(self, req: Request) -> Any:
        policy = self.parse(req.key.policy)
        areq = self.engine.AuthzRequest(
            principal_arn=req.caller.arn,
            principal_account=req.caller.account,
            action=req.action,
            resource=req.key.arn,
            context=condition_context(req),
            service_principal=req.caller.service_principal,
        )
        return self.engine.evaluate(policy, areq)

    def policy_allows(self, req: Request) -> bool:
        """True if the key policy (with IAM delegation) alone allows the request."""
        try:
            res = self.policy_result(req)
        except MalformedPolicyDocumentException:
            return False
        return _policy_ok(req, res)

    def check(self, req: Request, key_grants: Iterable[Grant]) -> Grant | None:
        """Raise AccessDeniedException unless allowed; returns the grant used, if any."""
        if req.key.owner_service is not None:
            if req.caller.service_principal == req.key.owner_service:
                return None
            raise denied(req, "the key is owned by another service")
        try:
            res = self.policy_result(req)
        except Exception:  # fail closed, whatever went wrong
            log.exception("key policy evaluation failed for %s", req.key.arn)
            raise denied(req, "the key policy could not be evaluated") from None
        if res.explicit_deny:
            raise denied(req, "of an explicit deny in a resource-based policy")
        if _policy_ok(req, res):
            return None
        grant = matching_grant(req, key_grants)
        if grant is not None:
            return grant
        raise denied(req, "no resource-based policy allows the " + req.action + " action")


def _policy_ok(req: Request, res: Any) -> bool:
    if res.explicit_deny:
        return False
    same_account = req.caller.account == req.key.account
    if res.allow and (same_account or req.caller.iam_allows(req.action)):
        return True
    return bool(res.allow_via_account_root and req.caller.iam_allows(req.action))


def is_grantee(grant: Grant, caller: Caller) -> bool:
    return grant.grantee_principal in (caller.arn, caller.service_principal)


def matching_grant(req: Request, key_grants: Iterable[Grant]) -> Grant | None:
    for g in key_grants:
        # Grants take effect at once here, so a grant token (validated by the caller of
        # this function) adds nothing beyond the grantee's own grants.
        if g.key_id != req.key.key_id or not is_grantee(g, req.caller):
            continue
        if grantlib.grant_allows(g, req.operation, req.context):
            return g
    return None
