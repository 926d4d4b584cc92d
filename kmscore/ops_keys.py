"""Key lifecycle operations: create, describe, list, describe, enable/disable, deletion."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import lru_cache

from kmscore.caller import Caller
from kmscore.errors import (
    AccessDeniedException,
    KMSInvalidStateException,
    MalformedPolicyDocumentException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
    require_int_between,
)
from kmscore.models import (
    AWS,
    AWS_OWNED_ACCOUNT,
    CUSTOMER,
    DESTROYED,
    DISABLED,
    ENABLED,
    ENCRYPT_DECRYPT,
    PENDING_DELETION,
    SYMMETRIC_DEFAULT,
    AliasRecord,
    DeletionScheduled,
    KeyMetadata,
    KeyRecord,
    Page,
)
from kmscore.paging import paginate
from kmscore.service import DAY, KMSCore, to_dt
from kmscore.tags import normalize_tags

MAX_DESCRIPTION = 8192
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]*:\d{12}:key/([0-9a-f-]{36})$")


@lru_cache(maxsize=4096)
def _key_id_of(key_arn: str) -> str | None:
    m = _KEY_ARN.match(key_arn)
    return m.group(1) if m else None


def metadata(key: KeyRecord) -> KeyMetadata:
    return KeyMetadata(
        key_id=key.key_id,
        arn=key.arn,
        account=key.account,
        state=key.state,
        key_manager=key.key_manager,
        key_spec=SYMMETRIC_DEFAULT,
        key_usage=ENCRYPT_DECRYPT,
        description=key.description,
        creation_date=to_dt(key.creation_date),
        deletion_date=to_dt(key.deletion_date),
        pending_deletion_window_days=key.pending_window_days,
        current_key_material_id=key.current_material.material_id,
        enabled=key.state == ENABLED,
    )


def _check_description(description: str) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise ValidationException("Description must be a string of at most 8192 characters")
    return description


class KeyOps(KMSCore):
    def create_key(
        self,
        caller: Caller,
        description: str = "",
        policy: str | None = None,
        key_usage: str = ENCRYPT_DECRYPT,
        key_spec: str = SYMMETRIC_DEFAULT,
        tags: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        bypass_policy_lockout_safety_check: bool = False,
        origin: str = "AWS_KMS",
        multi_region: bool = False,
    ) -> KeyMetadata:
        params = {
            "description": description,
            "keyUsage": key_usage,
            "keySpec": key_spec,
            "origin": origin,
            "bypassPolicyLockoutSafetyCheck": bypass_policy_lockout_safety_check,
            "multiRegion": multi_region,
        }
        with self._call(caller, "CreateKey", params, read_only=False) as rec:
            if not caller.iam_allows("kms:CreateKey"):
                raise AccessDeniedException(
                    f"User: {caller.arn} is not authorized to perform: kms:CreateKey on "
                    "resource: * because no identity-based policy allows the kms:CreateKey action"
                )
            if key_usage != ENCRYPT_DECRYPT or key_spec != SYMMETRIC_DEFAULT:
                raise UnsupportedOperationException(
                    f"{key_spec}/{key_usage} keys are not supported; only SYMMETRIC_DEFAULT"
                )
            if origin != "AWS_KMS" or multi_region:
                raise UnsupportedOperationException("Only single-Region AWS_KMS keys are supported")
            _check_description(description)
            text = policy if policy is not None else self._engine.default_key_policy(caller.account)
            parsed = self._authz.parse(text)
            key_tags = normalize_tags(tags)
            with self._lock:
                key_id = self._new_uuid()
                arn = f"arn:aws:kms:{self.region}:{caller.account}:key/{key_id}"
                if not bypass_policy_lockout_safety_check and self._locks_out(parsed, caller, arn):
                    raise MalformedPolicyDocumentException(self._engine.LOCKOUT_MESSAGE)
                key = KeyRecord(
                    key_id=key_id,
                    account=caller.account,
                    region=self.region,
                    description=description,
                    state=ENABLED,
                    key_manager=CUSTOMER,
                    creation_date=self._now(),
                    policy=text,
                    materials=(self._new_material(key_id, None),),
                    tags=key_tags,
                )
                self._put_key(key)
                self._save()
            rec.key(key)
            md = metadata(key)
            rec.response = {"keyMetadata": {"keyId": key_id, "arn": key.arn}}
            return md

    def _locks_out(self, parsed: object, caller: Caller, arn: str) -> bool:
        if caller.is_root:
            return False
        return self._engine.would_lock_out(parsed, caller.arn, caller.account, key_arn=arn)

    def describe_key(
        self, caller: Caller, key_id: str, grant_tokens: Iterable[str] = ()
    ) -> KeyMetadata:
        with self._call(caller, "DescribeKey", {"keyId": key_id}, read_only=True) as rec:
            self._check_tokens(grant_tokens)
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:DescribeKey", key)
                return metadata(key)

    def list_keys(
        self, caller: Caller, limit: int | None = None, marker: str | None = None
    ) -> Page:
        """Page of (key_id, key_arn) for the caller's account."""
        with self._call(caller, "ListKeys", None, read_only=True):
            if not caller.iam_allows("kms:ListKeys"):
                raise AccessDeniedException(
                    f"User: {caller.arn} is not authorized to perform: kms:ListKeys on resource: *"
                )
            with self._lock:
                keys = [
                    self._refresh(k)
                    for k in list(self._state.keys.values())
                    if k.account == caller.account and k.owner_service is None
                ]
                rows = [(k.key_id, k.arn) for k in keys if k.state != DESTROYED]
            return paginate(rows, lambda r: r[0], limit, marker, default_limit=100)

    def update_key_description(self, caller: Caller, key_id: str, description: str) -> None:
        params = {"keyId": key_id, "description": description}
        with self._call(caller, "UpdateKeyDescription", params, read_only=False) as rec:
            _check_description(description)
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:UpdateKeyDescription", key)
                self._put_key(replace(key, description=description))
                self._save()

    def enable_key(self, caller: Caller, key_id: str) -> None:
        self._set_enabled(caller, key_id, "EnableKey", ENABLED)

    def disable_key(self, caller: Caller, key_id: str) -> None:
        self._set_enabled(caller, key_id, "DisableKey", DISABLED)

    def _set_enabled(self, caller: Caller, key_id: str, op: str, state: str) -> None:
        with self._call(caller, op, {"keyId": key_id}, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, f"kms:{op}", key)
                self._require_not_pending(key)
                if key.state != state:
                    self._put_key(replace(key, state=state))
                    self._save()

    def schedule_key_deletion(
        self, caller: Caller, key_id: str, pending_window_in_days: int | None = None
    ) -> DeletionScheduled:
        days = 30 if pending_window_in_days is None else pending_window_in_days
        params = {"keyId": key_id, "pendingWindowInDays": days}
        with self._call(caller, "ScheduleKeyDeletion", params, read_only=False) as rec:
            require_int_between(days, "pendingWindowInDays", 7, 30)
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:ScheduleKeyDeletion", key)
                self._require_not_pending(key)
                if key.key_manager == AWS:
                    raise UnsupportedOperationException(f"{key.arn} is an AWS managed key.")
                when = self._now() + days * DAY
                key = replace(
                    key, state=PENDING_DELETION, deletion_date=when, pending_window_days=days
                )
                self._put_key(key)
                self._save()
            rec.response = {"keyId": key.arn, "keyState": PENDING_DELETION}
            return DeletionScheduled(key.arn, to_dt(when), PENDING_DELETION, days)

    def cancel_key_deletion(self, caller: Caller, key_id: str) -> str:
        """Returns the key ARN; the key is left Disabled, as on AWS."""
        with self._call(caller, "CancelKeyDeletion", {"keyId": key_id}, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:CancelKeyDeletion", key)
                if key.state != PENDING_DELETION:
                    raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
                key = replace(key, state=DISABLED, deletion_date=None, pending_window_days=None)
                self._put_key(key)
                self._save()
            rec.response = {"keyId": key.arn}
            return key.arn

    def key_state(self, key_arn: str) -> str:
        """The state of a key by ARN, for in-process caches (no authorization, no audit).

        "Enabled" | "Disabled" | "PendingDeletion"; NotFoundException when unknown or destroyed.
        """
        key_id = _key_id_of(key_arn or "")
        with self._lock.reading():  # every S3 request with a cached bucket key asks
            key = self._state.keys.get(key_id) if key_id else None
            if key is None or key.state == DESTROYED:
                raise NotFoundException(f"Key '{key_arn}' does not exist")
            lifecycle = key.state == PENDING_DELETION or key.rotation_enabled
            if not lifecycle or not self._due(key, self._now()):
                return key.state
        with self._lock:
            key = self._state.keys.get(key_id) if key_id else None
            if key is None:
                raise NotFoundException(f"Key '{key_arn}' does not exist")
            key = self._refresh(key)
            if key.state == DESTROYED:
                raise NotFoundException(f"Key '{key_arn}' does not exist")
            return key.state

    # ------------------------------------------------------------- service keys
    def aws_managed_key(self, account: str, alias: str = "aws/s3") -> str:
        """ARN of the account's AWS-managed key for `alias` ("aws/s3"), created on first use."""
        name = alias if alias.startswith("alias/") else f"alias/{alias}"
        if not name.startswith("alias/aws/") or len(name) <= len("alias/aws/"):
            raise ValidationException(f"{alias!r} is not an AWS managed key alias")
        service = name[len("alias/aws/") :]
        with self._lock:
            existing = self._state.aliases.get((account, self.region, name))
            if existing is not None:
                key = self._state.keys.get(existing.target_key_id)
                if key is not None and key.state != DESTROYED:
                    return key.arn
            key_id = self._new_uuid()
            now = self._now()
            key = KeyRecord(
                key_id=key_id,
                account=account,
                region=self.region,
                description=f"Default key that protects my {service.upper()} objects "
                "when no other key is defined",
                state=ENABLED,
                key_manager=AWS,
                creation_date=now,
                policy=self._engine.aws_managed_key_policy(account, service, self.region),
                materials=(self._new_material(key_id, None),),
                rotation_enabled=True,
                rotation_period_days=365,
                next_rotation_date=now + 365 * DAY,
            )
            self._put_key(key)
            self._state.aliases[(account, self.region, name)] = AliasRecord(
                name, account, self.region, key_id, now, now
            )
            self._save()
            return key.arn

    def aws_owned_key(self, service_principal: str, name: str) -> str:
        """ARN of the AWS-owned key `name` of `service_principal`, created on first use."""
        with self._lock:
            for k in self._state.keys.values():
                if k.owner_service == service_principal and k.owned_name == name:
                    return k.arn
            key_id = self._new_uuid()
            key = KeyRecord(
                key_id=key_id,
                account=AWS_OWNED_ACCOUNT,
                region=self.region,
                description=f"AWS owned key {name} of {service_principal}",
                state=ENABLED,
                key_manager=AWS,
                creation_date=self._now(),
                policy="",
                materials=(self._new_material(key_id, None),),
                owner_service=service_principal,
                owned_name=name,
            )
            self._put_key(key)
            self._save()
            return key.arn
