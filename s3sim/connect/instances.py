"""CreateInstance, DescribeInstance, ListInstances, DeleteInstance."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable

from kmscore.caller import Caller
from kmscore.clock import Clock
from kmscore.frozen import frozen
from s3sim.connect.access import require
from s3sim.connect.errors import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
)
from s3sim.connect.models import IDENTITY_TYPES, Instance
from s3sim.connect.paths import instance_arn, is_uuid, service_role_arn
from s3sim.connect.store import Store

_ALIAS = re.compile(r"^(?!d-)([\da-zA-Z]+)([-]*[\da-zA-Z])*$")
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@frozen
class NewInstance:
    identity_management_type: str
    inbound_calls: bool
    outbound_calls: bool
    alias: str | None = None
    directory_id: str | None = None


def _check(spec: NewInstance) -> None:
    if spec.identity_management_type not in IDENTITY_TYPES:
        raise InvalidParameterException(
            f"IdentityManagementType must be one of {', '.join(IDENTITY_TYPES)}"
        )
    if not isinstance(spec.inbound_calls, bool) or not isinstance(spec.outbound_calls, bool):
        raise InvalidParameterException("InboundCallsEnabled and OutboundCallsEnabled are required")
    if spec.identity_management_type == "EXISTING_DIRECTORY":
        if not spec.directory_id:
            raise InvalidRequestException("DirectoryId is required for EXISTING_DIRECTORY")
    elif not spec.alias:
        raise InvalidRequestException(
            f"InstanceAlias is required for {spec.identity_management_type}"
        )
    if spec.alias is not None and (len(spec.alias) > 45 or not _ALIAS.match(spec.alias)):
        raise InvalidParameterException(f"InstanceAlias {spec.alias!r} is not valid")


class Instances:
    def __init__(self, store: Store, region: str, clock: Clock, rng: Callable[[int], bytes]):
        self._store = store
        self._region = region
        self._clock = clock
        self._rng = rng

    def create(self, caller: Caller, spec: NewInstance) -> Instance:
        require(caller, "CreateInstance")
        _check(spec)
        if spec.alias and self._store.alias_taken(caller.account, spec.alias):
            raise InvalidRequestException(f"Instance alias {spec.alias} already exists")
        instance_id = str(uuid.UUID(bytes=self._rng(16), version=4))
        suffix = "".join(_SUFFIX[b % len(_SUFFIX)] for b in self._rng(10))
        inst = Instance(
            instance_id=instance_id,
            arn=instance_arn(self._region, caller.account, instance_id),
            account=caller.account,
            alias=spec.alias,
            identity_management_type=spec.identity_management_type,
            inbound_calls=spec.inbound_calls,
            outbound_calls=spec.outbound_calls,
            created=self._clock.now(),
            service_role=service_role_arn(caller.account, suffix),
        )
        self._store.insert_instance(inst)
        return inst

    def get(self, caller: Caller, instance_id: str, action: str) -> Instance:
        """The instance, if it exists in the caller's account and IAM allows `action`."""
        if not isinstance(instance_id, str) or not instance_id:
            raise InvalidParameterException("InstanceId is required")
        arn = instance_arn(self._region, caller.account, instance_id)
        require(caller, action, arn)
        inst = self._store.get_instance(instance_id) if is_uuid(instance_id) else None
        if inst is None or inst.account != caller.account:
            raise ResourceNotFoundException(f"Instance not found: {instance_id}")
        return inst

    def list(
        self, caller: Caller, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[Instance], str | None]:
        require(caller, "ListInstances")
        limit = 10 if max_results is None else max_results
        if not isinstance(limit, int) or not 1 <= limit <= 10:
            raise InvalidParameterException("MaxResults must be between 1 and 10")
        return page(self._store.instances(caller.account), limit, next_token)


def page(rows: list, limit: int, next_token: str | None) -> tuple[list, str | None]:
    """Offset pagination with an opaque token."""
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise InvalidParameterException("NextToken is not valid") from None
    chunk = rows[start : start + limit]
    end = start + len(chunk)
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(rows) else None
    return chunk, token
