"""Who Connect acts as: the customer's IAM check, the service itself, the service role."""

from __future__ import annotations

from kmscore.caller import Caller
from s3sim.connect.errors import AccessDeniedException
from s3sim.connect.models import CONNECT_PRINCIPAL, ROLE_ACTIONS, Instance


def require(caller: Caller, action: str, resource: str = "*") -> None:
    """The caller's IAM permissions must allow `connect:<action>`."""
    if not caller.iam_allows(f"connect:{action}"):
        raise AccessDeniedException(
            f"User: {caller.arn} is not authorized to perform: connect:{action} "
            f"on resource: {resource}"
        )


def connect_itself(instance: Instance) -> Caller:
    """Connect acting as itself on its AWS-owned key, on behalf of this instance.

    The account is the instance's, so the customer's trail shows these calls with
    userIdentity {type: AWSService, invokedBy: connect.amazonaws.com}.
    """
    return Caller(
        arn="",
        account=instance.account,
        service_principal=CONNECT_PRINCIPAL,
        invoked_by=CONNECT_PRINCIPAL,
        source_ip=CONNECT_PRINCIPAL,
        user_agent=CONNECT_PRINCIPAL,
    )


def service_role(instance: Instance) -> Caller:
    """The instance's service role: S3 permissions only; KMS only through grants."""
    return Caller(
        arn=instance.service_role,
        account=instance.account,
        iam_actions=ROLE_ACTIONS,
        source_ip=CONNECT_PRINCIPAL,
        user_agent=CONNECT_PRINCIPAL,
    )


def via_connect(caller: Caller, region: str) -> Caller:
    """The customer's principal calling KMS through Connect (kms:ViaService)."""
    return caller.via(f"connect.{region}.amazonaws.com", CONNECT_PRINCIPAL)
