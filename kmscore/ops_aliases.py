"""Alias operations: create, update, delete, list."""

from __future__ import annotations

import re
from dataclasses import replace

from kmscore.caller import Caller
from kmscore.errors import (
    AccessDeniedException,
    AlreadyExistsException,
    InvalidAliasNameException,
    NotFoundException,
    ValidationException,
)
from kmscore.models import AWS, Alias, AliasRecord, KeyRecord, Page
from kmscore.paging import paginate
from kmscore.service import CallRecord, KMSCore, to_dt

_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
RESERVED = "alias/aws/"


def check_alias_name(name: str) -> str:
    if not isinstance(name, str) or not _ALIAS.match(name):
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
        )
    if name.startswith(RESERVED):
        raise InvalidAliasNameException("Alias must not begin with 'alias/aws/'")
    return name


class AliasOps(KMSCore):
    def _customer_target(
        self, caller: Caller, key_id: str, action: str, rec: CallRecord
    ) -> KeyRecord:
        key = self._resolve(caller, key_id, rec)
        self._authorize(caller, action, key)
        if key.account != caller.account:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        if key.key_manager == AWS:
            raise ValidationException("An alias cannot point to an AWS managed key")
        self._require_not_pending(key)
        return key

    def create_alias(self, caller: Caller, alias_name: str, target_key_id: str) -> None:
        params = {"aliasName": alias_name, "targetKeyId": target_key_id}
        with self._call(caller, "CreateAlias", params, read_only=False) as rec:
            check_alias_name(alias_name)
            with self._lock:
                key = self._customer_target(caller, target_key_id, "kms:CreateAlias", rec)
                slot = (caller.account, self.region, alias_name)
                if slot in self._state.aliases:
                    arn = self._state.aliases[slot].arn
                    raise AlreadyExistsException(f"An alias with the name {arn} already exists")
                now = self._now()
                self._state.aliases[slot] = AliasRecord(
                    alias_name, caller.account, self.region, key.key_id, now, now
                )
                self._save()

    def _existing(self, caller: Caller, alias_name: str) -> AliasRecord:
        alias = self._state.aliases.get((caller.account, self.region, alias_name))
        if alias is None:
            arn = f"arn:aws:kms:{self.region}:{caller.account}:{alias_name}"
            raise NotFoundException(f"Alias {arn} is not found.")
        return alias

    def update_alias(self, caller: Caller, alias_name: str, target_key_id: str) -> None:
        params = {"aliasName": alias_name, "targetKeyId": target_key_id}
        with self._call(caller, "UpdateAlias", params, read_only=False) as rec:
            check_alias_name(alias_name)
            with self._lock:
                alias = self._existing(caller, alias_name)
                old = self._resolve(caller, alias.target_key_id, rec)
                self._authorize(caller, "kms:UpdateAlias", old)
                new = self._customer_target(caller, target_key_id, "kms:UpdateAlias", rec)
                self._state.aliases[(caller.account, self.region, alias_name)] = replace(
                    alias, target_key_id=new.key_id, last_updated=self._now()
                )
                self._save()

    def delete_alias(self, caller: Caller, alias_name: str) -> None:
        with self._call(caller, "DeleteAlias", {"aliasName": alias_name}, read_only=False) as rec:
            check_alias_name(alias_name)
            with self._lock:
                alias = self._existing(caller, alias_name)
                key = self._resolve(caller, alias.target_key_id, rec)
                self._authorize(caller, "kms:DeleteAlias", key)
                del self._state.aliases[(caller.account, self.region, alias_name)]
                self._save()

    def list_aliases(
        self,
        caller: Caller,
        key_id: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> Page:
        """Page of Alias for the caller's account (or one key)."""
        params = {"keyId": key_id} if key_id else None
        with self._call(caller, "ListAliases", params, read_only=True) as rec:
            with self._lock:
                if key_id:
                    key = self._resolve(caller, key_id, rec)
                    self._authorize(caller, "kms:ListAliases", key)
                    rows = self._aliases_of(key.key_id)
                else:
                    if not caller.iam_allows("kms:ListAliases"):
                        raise_denied(caller, "kms:ListAliases")
                    rows = [
                        a
                        for a in self._state.aliases.values()
                        if a.account == caller.account and a.region == self.region
                    ]
                out = [
                    Alias(
                        a.name,
                        a.arn,
                        a.target_key_id,
                        to_dt(a.creation_date),
                        to_dt(a.last_updated),
                    )
                    for a in rows
                ]
            return paginate(out, lambda a: a.name, limit, marker, default_limit=50, max_limit=100)


def raise_denied(caller: Caller, action: str) -> None:
    raise AccessDeniedException(
        f"User: {caller.arn} is not authorized to perform: {action} on resource: * because "
        f"no identity-based policy allows the {action} action"
    )
