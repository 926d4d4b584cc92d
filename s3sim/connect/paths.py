"""Pure naming rules: staging keys, delivered object keys, ARNs, retry backoff."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kmscore.frozen import frozen
from s3sim.connect.models import EXTENSIONS

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CONTACT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,255}$")
KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


class BadStagingKey(ValueError):
    """The key in `connect-staging` does not name instance/type/contact.ext."""


@frozen
class StagingKey:
    instance_id: str
    resource_type: str
    contact_id: str
    ext: str


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def parse_staging_key(key: str) -> StagingKey:
    """`<InstanceId>/<ResourceType>/<ContactId>.<ext>`, or BadStagingKey saying why."""
    parts = key.split("/")
    if len(parts) != 3:
        raise BadStagingKey(
            f"Key {key!r} must be <InstanceId>/<ResourceType>/<ContactId>.<ext> "
            "(e.g. <instance-id>/CALL_RECORDINGS/<contact-id>.wav)"
        )
    instance_id, resource_type, name = parts
    if not is_uuid(instance_id):
        raise BadStagingKey(f"{instance_id!r} is not an instance id")
    if resource_type not in EXTENSIONS:
        raise BadStagingKey(
            f"Resource type {resource_type!r} is not one of {', '.join(sorted(EXTENSIONS))}"
        )
    contact_id, dot, ext = name.rpartition(".")
    if not dot or not _CONTACT.match(contact_id):
        raise BadStagingKey(f"{name!r} must be <ContactId>.<ext>")
    if ext not in EXTENSIONS[resource_type]:
        allowed = ", ".join(EXTENSIONS[resource_type])
        raise BadStagingKey(f"Extension {ext!r} is not allowed for {resource_type} ({allowed})")
    return StagingKey(instance_id, resource_type, contact_id, ext)


def target_key(prefix: str, contact_id: str, ext: str, staged_at: datetime) -> str:
    """`<prefix>/YYYY/MM/DD/<ContactId>_<YYYYMMDD>T<HH:MM>_UTC.<ext>` (UTC of ingest)."""
    t = staged_at.astimezone(UTC)
    name = f"{t:%Y/%m/%d}/{contact_id}_{t:%Y%m%d}T{t:%H:%M}_UTC.{ext}"
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff after `attempts` failures: base, 2*base, 4*base, ... <= cap."""
    if attempts <= 0:
        return 0.0
    return min(cap, base * (2 ** min(attempts - 1, 30)))


def instance_arn(region: str, account: str, instance_id: str) -> str:
    return f"arn:aws:connect:{region}:{account}:instance/{instance_id}"


def contact_arn(instance_arn_: str, contact_id: str) -> str:
    return f"{instance_arn_}/contact/{contact_id}"


def service_role_arn(account: str, suffix: str) -> str:
    return (
        f"arn:aws:iam::{account}:role/aws-service-role/connect.amazonaws.com/"
        f"AWSServiceRoleForAmazonConnect_{suffix}"
    )
