"""Grant operations: create, list, list retirable, retire, revoke."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from kmscore import grants as grantlib
from kmscore.authz import Request
from kmscore.caller import Caller
from kmscore.errors import (
    AccessDeniedException,
    InvalidGrantIdException,
    NotFoundException,
    ValidationException,
)
from kmscore.models import Grant, GrantConstraints, KeyRecord, Page
from kmscore.paging import paginate
from kmscore.service import KMSCore

_GRANT_ID = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-zA-Z0-9:/_-]{1,256}$")
_PRINCIPAL = re.compile(
    r"^(arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+|[a-z0-9.-]+\.amazonaws\.com|\d{12})$"
)


def _valid_principal(p: object) -> bool:
    return isinstance(p, str) and len(p) <= 256 and bool(_PRINCIPAL.match(p))


def _constraints_param(c: GrantConstraints | None) -> dict | None:
    if c is None:
        return None
    if c.encryption_context_equals is not None:
        return {"encryptionContextEquals": dict(c.encryption_context_equals)}
    return {"encryptionContextSubset": dict(c.encryption_context_subset or ())}


def _same_request(
    g: Grant,
    grantee: str,
    ops: tuple[str, ...],
    retiring: str | None,
    constraints: GrantConstraints | None,
) -> bool:
    return (
        g.grantee_principal == grantee
        and set(g.operations) == set(ops)
        and g.retiring_principal == retiring
        and g.constraints == constraints
    )


class GrantOps(KMSCore):
    def create_grant(
        self,
        caller: Caller,
        key_id: str,
        grantee_principal: str,
        operations: Iterable[str],
        retiring_principal: str | None = None,
        constraints: Mapping[str, Mapping[str, str]] | GrantConstraints | None = None,
        name: str | None = None,
        grant_tokens: Iterable[str] = (),
    ) -> tuple[str, str]:
        """Returns (grant_id, grant_token)."""
        ops_in = list(operations or ())
        params: dict = {
            "keyId": key_id,
            "granteePrincipal": grantee_principal,
            "operations": ops_in,
        }
        if retiring_principal:
            params["retiringPrincipal"] = retiring_principal
        if name:
            params["name"] = name
        with self._call(caller, "CreateGrant", params, read_only=False) as rec:
            ops = grantlib.validate_operations(ops_in)
            parsed = grantlib.parse_constraints(constraints)
            if parsed is not None:
                params["constraints"] = _constraints_param(parsed)
            for principal in (grantee_principal, retiring_principal):
                if principal is not None and not _valid_principal(principal):
                    raise ValidationException(f"Invalid principal: {principal!r}")
            if name is not None and not _NAME.match(name):
                raise ValidationException("Grant name must match ^[a-zA-Z0-9:/_-]+$")
            self._check_tokens(grant_tokens)
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                extra = {
                    "kms:GrantOperations": ops,
                    "kms:GranteePrincipal": grantee_principal,
                    "kms:GrantIsForAWSResource": caller.via_service is not None,
                }
                if retiring_principal:
                    extra["kms:RetiringPrincipal"] = retiring_principal
                via = self._authorize(caller, "kms:CreateGrant", key, None, extra)
                if via is not None and not (
                    set(ops) <= set(via.operations)
                    and grantlib.at_least_as_strict(parsed, via.constraints)
                ):
                    raise AccessDeniedException(
                        f"User: {caller.arn} is not authorized to perform: kms:CreateGrant on "
                        f"resource: {key.arn} because the grant it uses is less permissive"
                    )
                self._require_not_pending(key)
                grant = self._find_named(
                    key, name, grantee_principal, ops, retiring_principal, parsed
                )
                if grant is None:
                    grant = self._new_grant(
                        caller, key, grantee_principal, ops, retiring_principal, parsed, name
                    )
                token = grantlib.make_token(grant.grant_id, self._rng(16))
            rec.response = {"grantId": grant.grant_id}
            return grant.grant_id, token

    def _find_named(
        self,
        key: KeyRecord,
        name: str | None,
        grantee: str,
        ops: tuple[str, ...],
        retiring: str | None,
        constraints: GrantConstraints | None,
    ) -> Grant | None:
        if not name:
            return None
        for g in self._key_grants(key.key_id):
            if g.name == name and _same_request(g, grantee, ops, retiring, constraints):
                return g
        return None

    def _new_grant(
        self,
        caller: Caller,
        key: KeyRecord,
        grantee: str,
        ops: tuple[str, ...],
        retiring: str | None,
        constraints: GrantConstraints | None,
        name: str | None,
    ) -> Grant:
        grant_id = self._rng(32).hex()
        grant = Grant(
            grant_id=grant_id,
            key_id=key.key_id,
            key_arn=key.arn,
            grantee_principal=grantee,
            operations=ops,
            issuing_account=f"arn:aws:iam::{caller.account}:root",
            creation_date=self._now(),
            token=grantlib.make_token(grant_id, self._rng(16)),
            retiring_principal=retiring,
            constraints=constraints,
            name=name,
        )
        self._state.grants[grant_id] = grant
        self._save()
        return grant

    def list_grants(
        self,
        caller: Caller,
        key_id: str,
        limit: int | None = None,
        marker: str | None = None,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
    ) -> Page:
        """Page of Grant for the key, optionally filtered."""
        with self._call(caller, "ListGrants", {"keyId": key_id}, read_only=True) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:ListGrants", key)
                grants = [
                    g
                    for g in self._key_grants(key.key_id)
                    if (grant_id is None or g.grant_id == grant_id)
                    and (grantee_principal is None or g.grantee_principal == grantee_principal)
                ]
            return paginate(
                grants,
                lambda g: f"{g.creation_date:020.6f}{g.grant_id}",
                limit,
                marker,
                default_limit=50,
                max_limit=100,
            )

    def list_retirable_grants(
        self,
        caller: Caller,
        retiring_principal: str,
        limit: int | None = None,
        marker: str | None = None,
    ) -> Page:
        params = {"retiringPrincipal": retiring_principal}
        with self._call(caller, "ListRetirableGrants", params, read_only=True):
            if not caller.iam_allows("kms:ListRetirableGrants"):
                raise AccessDeniedException(
                    f"User: {caller.arn} is not authorized to perform: kms:ListRetirableGrants"
                )
            if not retiring_principal:
                raise ValidationException("RetiringPrincipal is required")
            with self._lock:
                grants = [
                    g
                    for g in self._state.grants.values()
                    if g.retiring_principal == retiring_principal
                    and self._state.keys[g.key_id].account == caller.account
                ]
            return paginate(
                grants,
                lambda g: f"{g.creation_date:020.6f}{g.grant_id}",
                limit,
                marker,
                default_limit=50,
                max_limit=100,
            )

    def retire_grant(
        self,
        caller: Caller,
        grant_token: str | None = None,
        key_id: str | None = None,
        grant_id: str | None = None,
    ) -> None:
        params: dict = {}
        if key_id:
            params["keyId"] = key_id
        if grant_id:
            params["grantId"] = grant_id
        with self._call(caller, "RetireGrant", params, read_only=False) as rec:
            with self._lock:
                if grant_token:
                    gid = grantlib.token_grant_id(grant_token)
                    grant = self._state.grants.get(gid)
                    if grant is None:
                        raise NotFoundException(f"Grant ID {gid} not found")
                elif key_id and grant_id:
                    key = self._resolve(caller, key_id, rec)
                    grant = self._grant_of(key, grant_id)
                else:
                    raise ValidationException(
                        "Either GrantToken or both KeyId and GrantId must be specified"
                    )
                key = self._state.keys[grant.key_id]
                rec.key(key)
                if caller.arn not in (grant.retiring_principal, grant.grantee_principal) and not (
                    self._authz.policy_allows(Request(caller, "kms:RetireGrant", key))
                ):
                    raise AccessDeniedException(
                        f"User: {caller.arn} is not authorized to perform: kms:RetireGrant on "
                        f"resource: {key.arn}"
                    )
                del self._state.grants[grant.grant_id]
                self._save()

    def revoke_grant(self, caller: Caller, key_id: str, grant_id: str) -> None:
        params = {"keyId": key_id, "grantId": grant_id}
        with self._call(caller, "RevokeGrant", params, read_only=False) as rec:
            with self._lock:
                key = self._resolve(caller, key_id, rec)
                self._authorize(caller, "kms:RevokeGrant", key)
                grant = self._grant_of(key, grant_id)
                del self._state.grants[grant.grant_id]
                self._save()

    def _grant_of(self, key: KeyRecord, grant_id: str) -> Grant:
        if not isinstance(grant_id, str) or not _GRANT_ID.match(grant_id):
            raise InvalidGrantIdException("Invalid grant ID")
        grant = self._state.grants.get(grant_id)
        if grant is None or grant.key_id != key.key_id:
            raise NotFoundException(f"Grant ID {grant_id} not found")
        return grant
