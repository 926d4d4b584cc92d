"""Associate/Describe/List/Update/DisassociateInstanceStorageConfig, and their grants.

Associating a KMS key creates a grant on it for the instance's service role, with the
caller's permissions (kms:CreateGrant through Connect). Disassociating, or updating to
another key, retires the old grant once no delivery still uses it; an update (even to
the same key) makes sure a valid grant exists again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kmscore.caller import Caller
from kmscore.clock import Clock
from kmscore.errors import KMSError
from kmscore.frozen import frozen
from s3sim.connect import errors as E
from s3sim.connect.access import service_role, via_connect
from s3sim.connect.instances import Instances, page
from s3sim.connect.models import (
    ALL_RESOURCE_TYPES,
    GRANT_OPERATIONS,
    Instance,
    StorageConfig,
)
from s3sim.connect.paths import KEY_ARN, is_uuid
from s3sim.connect.store import Store
from s3sim.s3.errors import S3Error


@frozen
class S3ConfigInput:
    """A StorageConfig as the caller sent it (already out of its wire shape)."""

    storage_type: str
    bucket: str
    prefix: str = ""
    encryption_type: str | None = None
    key_id: str | None = None


def _kms_error(err: KMSError) -> E.ConnectError:
    if err.code == "AccessDeniedException":
        return E.AccessDeniedException(err.message)
    return E.InvalidParameterException(f"KMS key error: {err.code}: {err.message}")


class StorageConfigs:
    def __init__(
        self,
        store: Store,
        instances: Instances,
        kms: Any,
        s3: Any,
        region: str,
        clock: Clock,
        rng: Callable[[int], bytes],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._instances = instances
        self._kms = kms
        self._s3 = s3
        self._region = region
        self._clock = clock
        self._rng = rng
        self._on_change = on_change

    # -- validation ------------------------------------------------------------------------
    def _check(self, caller: Caller, resource_type: str, cfg: S3ConfigInput) -> None:
        if resource_type not in ALL_RESOURCE_TYPES:
            raise E.InvalidParameterException(f"ResourceType {resource_type!r} is not valid")
        if cfg.storage_type != "S3":
            raise E.InvalidParameterException(
                f"StorageType {cfg.storage_type!r} is not supported here (only S3)"
            )
        if not cfg.bucket:
            raise E.InvalidParameterException("S3Config.BucketName is required")
        if cfg.encryption_type not in (None, "KMS"):
            raise E.InvalidParameterException("EncryptionConfig.EncryptionType must be KMS")
        if cfg.encryption_type == "KMS" and not cfg.key_id:
            raise E.InvalidParameterException("EncryptionConfig.KeyId is required")
        try:
            self._s3.buckets.head(caller, cfg.bucket)
        except S3Error as err:
            if err.code == "NoSuchBucket":
                raise E.InvalidParameterException(
                    f"The S3 bucket {cfg.bucket} does not exist"
                ) from None
            raise E.AccessDeniedException(
                f"User: {caller.arn} cannot access the S3 bucket {cfg.bucket}"
            ) from None
        if cfg.key_id:
            self._check_key(caller, cfg.key_id)

    def _check_key(self, caller: Caller, key_id: str) -> None:
        if not KEY_ARN.match(key_id):
            raise E.InvalidParameterException(
                f"KeyId {key_id!r} must be the full ARN of a KMS key, not just its id or alias"
            )
        try:
            md = self._kms.describe_key(via_connect(caller, self._region), key_id)
        except KMSError as err:
            raise _kms_error(err) from None
        if md.key_spec != "SYMMETRIC_DEFAULT":
            raise E.InvalidParameterException(
                "Amazon Connect supports only SYMMETRIC_DEFAULT KMS keys; "
                f"{key_id} is {md.key_spec}"
            )

    def _grant(self, caller: Caller, inst: Instance, rtype: str, key_arn: str) -> tuple[str, str]:
        try:
            return self._kms.create_grant(
                via_connect(caller, self._region),
                key_arn,
                inst.service_role,
                list(GRANT_OPERATIONS),
                retiring_principal=inst.service_role,
                name=f"connect-{inst.instance_id}-{rtype}",
            )
        except KMSError as err:
            raise _kms_error(err) from None

    # -- operations ------------------------------------------------------------------------
    def associate(
        self, caller: Caller, instance_id: str, resource_type: str, cfg: S3ConfigInput
    ) -> str:
        inst = self._instances.get(caller, instance_id, "AssociateInstanceStorageConfig")
        self._check(caller, resource_type, cfg)
        if self._store.config_for(inst.instance_id, resource_type) is not None:
            raise E.ResourceConflictException(
                f"A storage config for {resource_type} already exists on this instance"
            )
        grant_id = token = None
        if cfg.key_id:
            grant_id, token = self._grant(caller, inst, resource_type, cfg.key_id)
        config = StorageConfig(
            association_id=str(uuid.UUID(bytes=self._rng(16), version=4)),
            instance_id=inst.instance_id,
            resource_type=resource_type,
            bucket=cfg.bucket,
            prefix=cfg.prefix or "",
            key_arn=cfg.key_id or "",
            grant_id=grant_id,
            grant_token=token,
            created=self._clock.now(),
        )
        self._store.insert_config(config)
        self._store.promote_waiting(inst.instance_id, resource_type)
        self._on_change()
        return config.association_id

    def _find(self, inst: Instance, association_id: str, resource_type: str) -> StorageConfig:
        if resource_type not in ALL_RESOURCE_TYPES:
            raise E.InvalidParameterException(f"ResourceType {resource_type!r} is not valid")
        if not is_uuid(association_id or ""):
            raise E.ResourceNotFoundException(f"Association not found: {association_id}")
        config = self._store.get_config(inst.instance_id, association_id)
        if config is None or config.resource_type != resource_type:
            raise E.ResourceNotFoundException(f"Association not found: {association_id}")
        return config

    def describe(
        self, caller: Caller, instance_id: str, association_id: str, resource_type: str
    ) -> StorageConfig:
        inst = self._instances.get(caller, instance_id, "DescribeInstanceStorageConfig")
        return self._find(inst, association_id, resource_type)

    def list(
        self,
        caller: Caller,
        instance_id: str,
        resource_type: str,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[StorageConfig], str | None]:
        inst = self._instances.get(caller, instance_id, "ListInstanceStorageConfigs")
        if resource_type not in ALL_RESOURCE_TYPES:
            raise E.InvalidParameterException(f"ResourceType {resource_type!r} is not valid")
        limit = 10 if max_results is None else max_results
        if not isinstance(limit, int) or not 1 <= limit <= 10:
            raise E.InvalidParameterException("MaxResults must be between 1 and 10")
        rows = [
            c for c in self._store.configs(inst.instance_id) if c.resource_type == resource_type
        ]
        return page(rows, limit, next_token)

    def update(
        self,
        caller: Caller,
        instance_id: str,
        association_id: str,
        resource_type: str,
        cfg: S3ConfigInput,
    ) -> None:
        inst = self._instances.get(caller, instance_id, "UpdateInstanceStorageConfig")
        old = self._find(inst, association_id, resource_type)
        self._check(caller, resource_type, cfg)
        grant_id = token = None
        if cfg.key_id:
            grant_id, token = self._grant(caller, inst, resource_type, cfg.key_id)
        new = replace(
            old,
            bucket=cfg.bucket,
            prefix=cfg.prefix or "",
            key_arn=cfg.key_id or "",
            grant_id=grant_id,
            grant_token=token,
        )
        self._store.replace_config(new)
        if old.grant_id and old.grant_id != grant_id:
            self._store.add_retiring(old)
        self.retire_pending(inst)
        self._on_change()

    def disassociate(
        self, caller: Caller, instance_id: str, association_id: str, resource_type: str
    ) -> None:
        inst = self._instances.get(caller, instance_id, "DisassociateInstanceStorageConfig")
        old = self._find(inst, association_id, resource_type)
        self._store.delete_config(old.association_id)
        self._store.add_retiring(old)
        self._store.demote_to_waiting(inst.instance_id, resource_type)
        self.retire_pending(inst)
        self._on_change()

    # -- grant retirement ----------------------------------------------------------------------
    def retire_pending(self, only: Instance | None = None) -> int:
        """Retire grants no longer configured once no delivery of that type is in flight."""
        done = 0
        for grant_id, token, _key, instance_id, rtype in self._store.retiring():
            if only is not None and instance_id != only.instance_id:
                continue
            inst = self._store.get_instance(instance_id)
            current = self._store.config_for(instance_id, rtype)
            if current is not None and current.grant_id == grant_id:
                self._store.remove_retiring(grant_id)  # in use again (same grant re-ensured)
                continue
            if inst is not None and self._store.delivering_with_key(instance_id, rtype):
                continue
            if inst is not None:
                try:
                    self._kms.retire_grant(service_role(inst), grant_token=token)
                except KMSError:
                    pass  # already revoked or retired, or the key is gone: nothing to retire
            self._store.remove_retiring(grant_id)
            done += 1
        return done
