"""Key policies, rotation and tags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from kmscore import tags as taglib
from kmscore.caller import Caller
from kmscore.errors import (
    LimitExceededException,
    MalformedPolicyDocumentException,
    NotFoundException,
    UnsupportedOperationException,
    require_int_between,
)
from kmscore.models import AWS, Page, Rotation, RotationStatus
from kmscore.paging import paginate
from kmscore.service import DAY, KMSCore, to_dt

POLICY_NAME = "default"
MAX_ON_DEMAND_ROTATIONS = 10
DEFAULT_ROTATION_DAYS = 365


def _policy_name(name: str | None) -> str:
    if name not in (None, POLICY_NAME):
        raise NotFoundException("No such policy exists")
    return POLICY_NAME


class AdminOps(KMSCore):
    # ------------------------------------------------------------- key policy
    def get_key_policy(self, caller: Caller, key_id: str, policy_name: str | None = None) -> str:
        params = {"keyId": key_id, "policyName": policy_name or POLICY_NAME}
        with self._call(caller, "GetKeyPolicy", params, read_only=True) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:GetKeyPolicy", key)
                _policy_name(policy_name)
                return key.policy

    def put_key_policy(
        self,
        caller: Caller,
        key_id: str,
        policy: str,
        policy_name: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
    ) -> None:
        params = {
            "keyId": key_id,
            "policyName": policy_name or POLICY_NAME,
            "bypassPolicyLockoutSafetyCheck": bypass_policy_lockout_safety_check,
        }
        with self._call(caller, "PutKeyPolicy", params, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:PutKeyPolicy", key)
                _policy_name(policy_name)
                self._require_not_pending(key)
                if not isinstance(policy, str):
                    raise MalformedPolicyDocumentException("The policy must be a string")
                parsed = self._authz.parse(policy)  # validates fully before anything changes
                if not bypass_policy_lockout_safety_check and not caller.is_root:
                    if self._engine.would_lock_out(
                        parsed, caller.arn, caller.account, key_arn=key.arn
                    ):
                        raise MalformedPolicyDocumentException(self._engine.LOCKOUT_MESSAGE)
                self._put_key(replace(key, policy=policy))
                self._save()

    def list_key_policies(
        self, caller: Caller, key_id: str, limit: int | None = None, marker: str | None = None
    ) -> Page:
        with self._call(caller, "ListKeyPolicies", {"keyId": key_id}, read_only=True) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:ListKeyPolicies", key)
            return paginate([POLICY_NAME], lambda n: n, limit, marker, default_limit=100)

    # ------------------------------------------------------------- rotation
    def enable_key_rotation(
        self, caller: Caller, key_id: str, rotation_period_in_days: int | None = None
    ) -> None:
        days = DEFAULT_ROTATION_DAYS if rotation_period_in_days is None else rotation_period_in_days
        params = {"keyId": key_id, "rotationPeriodInDays": days}
        with self._call(caller, "EnableKeyRotation", params, read_only=False) as rec:
            require_int_between(days, "rotationPeriodInDays", 90, 2560)
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:EnableKeyRotation", key)
                self._require_usable(key)
                self._customer_managed(key)
                nxt = self._now() + days * DAY
                key = replace(
                    key, rotation_enabled=True, rotation_period_days=days, next_rotation_date=nxt
                )
                self._put_key(key)
                self._save()

    def _customer_managed(self, key) -> None:  # noqa: ANN001
        if key.key_manager == AWS:
            raise UnsupportedOperationException(f"{key.arn} is an AWS managed key.")

    def disable_key_rotation(self, caller: Caller, key_id: str) -> None:
        with self._call(caller, "DisableKeyRotation", {"keyId": key_id}, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:DisableKeyRotation", key)
                self._require_usable(key)
                self._customer_managed(key)
                key = replace(key, rotation_enabled=False, next_rotation_date=None)
                self._put_key(key)
                self._save()

    def get_key_rotation_status(self, caller: Caller, key_id: str) -> RotationStatus:
        with self._call(caller, "GetKeyRotationStatus", {"keyId": key_id}, read_only=True) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:GetKeyRotationStatus", key)
                self._require_not_pending(key)
            return RotationStatus(
                key.arn,
                key.rotation_enabled,
                key.rotation_period_days if key.rotation_enabled else None,
                to_dt(key.next_rotation_date) if key.rotation_enabled else None,
                to_dt(key.on_demand_rotation_start),
            )

    def rotate_key_on_demand(self, caller: Caller, key_id: str) -> str:
        """Adds new key material now; returns the key id."""
        with self._call(caller, "RotateKeyOnDemand", {"keyId": key_id}, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:RotateKeyOnDemand", key)
                self._require_usable(key)
                self._customer_managed(key)
                if key.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS:
                    raise LimitExceededException(
                        "The on-demand rotations limit has been reached for the given keyId. "
                        f"No more on-demand rotations can be performed for this key: {key.arn}"
                    )
                m = self._new_material(key.key_id, "ON_DEMAND")
                key = replace(
                    key,
                    materials=key.materials + (m,),
                    on_demand_rotations=key.on_demand_rotations + 1,
                    on_demand_rotation_start=m.created,
                )
                self._put_key(key)
                self._save()
            return key.key_id

    def list_key_rotations(
        self, caller: Caller, key_id: str, limit: int | None = None, marker: str | None = None
    ) -> Page:
        """Page of Rotation, oldest first (the initial material is not a rotation)."""
        with self._call(caller, "ListKeyRotations", {"keyId": key_id}, read_only=True) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:ListKeyRotations", key)
                self._require_not_pending(key)
            rows = [
                Rotation(key.key_id, m.material_id, to_dt(m.created), m.rotation_type)
                for m in key.materials
                if m.rotation_type is not None
            ]
            sort = {r.key_material_id: f"{i:06d}" for i, r in enumerate(rows)}
            return paginate(
                rows, lambda r: sort[r.key_material_id], limit, marker, default_limit=100
            )

    # ------------------------------------------------------------- tags
    def tag_resource(
        self, caller: Caller, key_id: str, tags: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> None:
        new = taglib.normalize_tags(tags)
        params = {"keyId": key_id, "tags": [{"tagKey": k, "tagValue": v} for k, v in new]}
        with self._call(caller, "TagResource", params, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:TagResource", key)
                self._require_not_pending(key)
                self._put_key(replace(key, tags=taglib.merge(key.tags, new)))
                self._save()

    def untag_resource(self, caller: Caller, key_id: str, tag_keys: Iterable[str]) -> None:
        keys = list(tag_keys)
        with self._call(
            caller, "UntagResource", {"keyId": key_id, "tagKeys": keys}, read_only=False
        ) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:UntagResource", key)
                self._require_not_pending(key)
                remaining = tuple(t for t in key.tags if t[0] not in set(keys))
                self._put_key(replace(key, tags=remaining))
                self._save()

    def list_resource_tags(
        self, caller: Caller, key_id: str, limit: int | None = None, marker: str | None = None
    ) -> Page:
        """Page of (tag key, tag value)."""
        with self._call(caller, "ListResourceTags", {"keyId": key_id}, read_only=True) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:ListResourceTags", key)
            return paginate(
                list(key.tags), lambda t: t[0], limit, marker, default_limit=50, max_limit=50
            )
