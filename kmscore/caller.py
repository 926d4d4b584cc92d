"""Who is calling kmscore, and through which service."""

from __future__ import annotations

import fnmatch

from kmscore.frozen import frozen


@frozen
class Caller:
    """An authenticated principal as kmscore sees it.

    arn:          e.g. "arn:aws:iam::111122223333:root", "...:user/alice",
                  or a Connect service-role ARN.
    account:      the 12-digit account id of the principal.
    iam_actions:  the IAM action patterns the identity's own (IAM) policy allows,
                  e.g. ("kms:*",) or ("s3:*",). A root principal has ("*",).
    via_service:  the value of kms:ViaService when another service calls on the
                  principal's behalf, e.g. "s3.us-east-1.amazonaws.com"; None for
                  direct KMS API calls.
    invoked_by:   CloudTrail's userIdentity.invokedBy, e.g. "s3.amazonaws.com".
    service_principal: set when an AWS service acts as itself (not on behalf of a
                  customer principal), e.g. "connect.amazonaws.com" using its
                  AWS-owned key. Only such callers may use AWS-owned keys.
    """

    arn: str
    account: str
    iam_actions: tuple[str, ...] = ()
    via_service: str | None = None
    invoked_by: str | None = None
    service_principal: str | None = None
    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    access_key_id: str = ""

    @property
    def is_root(self) -> bool:
        return self.arn == f"arn:aws:iam::{self.account}:root"

    def iam_allows(self, action: str) -> bool:
        """True when the identity's IAM permissions allow `action` (e.g. "kms:Decrypt")."""
        if self.is_root:
            return True
        action = action.lower()
        return any(fnmatch.fnmatchcase(action, p.lower()) for p in self.iam_actions)

    def via(self, service_host: str, invoked_by: str) -> Caller:
        """The same principal calling through another service (kms:ViaService)."""
        return Caller(
            arn=self.arn,
            account=self.account,
            iam_actions=self.iam_actions,
            via_service=service_host,
            invoked_by=invoked_by,
            service_principal=self.service_principal,
            source_ip=invoked_by,
            user_agent=invoked_by,
            access_key_id=self.access_key_id,
        )
