"""The KMS facade's core: state, lock, key resolution, lazy lifecycle, audit wrapper.

The operations live in ops_*.py mixins; kmscore.KMS combines them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmscore import authz, rootkey
from kmscore import grants as grantlib
from kmscore.audit import AuditLog
from kmscore.caller import Caller
from kmscore.clock import Clock
from kmscore.errors import (
    DisabledException,
    KMSError,
    KMSInvalidStateException,
    NotFoundException,
    ValidationException,
)
from kmscore.models import (
    DESTROYED,
    DISABLED,
    PENDING_DELETION,
    AliasRecord,
    Grant,
    KeyRecord,
    Material,
)
from kmscore.shared import SharedCell, StateLock
from kmscore.store import State, StateFile

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]*):(\d{12}):key/(.+)$")
_ALIAS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]*):(\d{12}):(alias/.+)$")
DAY = 86400.0
MAX_CATCH_UP_ROTATIONS = 64


@dataclass
class CallRecord:
    """What an operation tells the audit wrapper while it runs (internal, mutable)."""

    resources: list[tuple[str, str]] = field(default_factory=list)
    response: dict[str, Any] | None = None
    recipient: str | None = None

    def key(self, key: KeyRecord) -> None:
        if (key.account, key.arn) not in self.resources:
            self.resources.append((key.account, key.arn))
        if self.recipient is None and key.owner_service is None:
            self.recipient = key.account


def to_dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC)


class KMSCore:
    def __init__(
        self,
        data_dir: Path,
        region: str,
        clock: Clock,
        rng: Callable[[int], bytes] = os.urandom,
        root_key: bytes | None = None,
        *,
        fsync: bool = True,
        policy_engine: Any = None,
        env: Mapping[str, str] | None = None,
        shared: bool = False,
    ) -> None:
        if policy_engine is None:
            from kmscore import policy as policy_engine
        self.region = region
        self._clock = clock
        self._rng = rng
        self._dir = Path(data_dir) / "kms"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._root = root_key if root_key is not None else rootkey.load_root_key(self._dir, env)
        if len(self._root) != 32:
            raise rootkey.RootKeyError("the root key must be 32 bytes")
        # whether a call may wait for the disk (its audit record or state is fsynced)
        self.fsync = fsync
        self._file = StateFile(self._dir, fsync=fsync)
        # several server processes over one data dir: a cross-process lock and a save
        # counter tell each when to reload the state document (kmscore/shared.py)
        cell = SharedCell(self._dir / "state.gen") if shared else None
        self._lock = StateLock(cell, self._reload)
        self._state: State = self._file.load()
        self._plain: dict[tuple[str, str], bytes] = {}  # unsealed material cache (memory only)
        self._authz = authz.Authorizer(policy_engine)
        self._engine = policy_engine
        self.audit = AuditLog(self._dir, region, clock, rng, fsync=fsync)

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        self.audit.close()

    def _now(self) -> float:
        return self._clock.time()

    def _save(self) -> None:
        self._file.save(self._state)
        self._lock.saved()

    def _reload(self) -> None:
        self._state = self._file.load()

    def _new_uuid(self) -> str:
        return str(uuid.UUID(bytes=self._rng(16), version=4))

    def _new_material(self, key_id: str, rotation_type: str | None) -> Material:
        material_id = self._rng(32).hex()
        plain = self._rng(32)
        sealed = rootkey.seal_material(self._root, plain, _label(key_id, material_id), self._rng)
        self._plain[(key_id, material_id)] = plain
        return Material(material_id, self._now(), rotation_type, sealed)

    def _material_bytes(self, key: KeyRecord, material: Material) -> bytes:
        k = (key.key_id, material.material_id)
        plain = self._plain.get(k)
        if plain is None:
            plain = rootkey.unseal_material(
                self._root, material.sealed, _label(key.key_id, material.material_id)
            )
            self._plain[k] = plain
        return plain

    def _put_key(self, key: KeyRecord) -> None:
        self._state.keys[key.key_id] = key

    # ------------------------------------------------------------------ audit
    @contextmanager
    def _call(
        self, caller: Caller, name: str, params: dict[str, Any] | None, read_only: bool
    ) -> Iterator[CallRecord]:
        """Run one operation and write exactly one audit record for it."""
        rec = CallRecord()
        error: tuple[str, str] | None = None
        try:
            yield rec
        except KMSError as e:
            error = (e.code, e.message)
            raise
        except Exception:
            error = ("KMSInternalException", "")
            raise
        finally:
            self.audit.record(
                caller,
                name,
                read_only=read_only,
                request_parameters=params,
                response_elements=None if error else rec.response,
                resources=rec.resources,
                error=error,
                recipient_account=rec.recipient if rec.recipient else None,
            )

    # ------------------------------------------------------------------ resolution
    def _resolve(self, caller: Caller, key_id: str, rec: CallRecord | None = None) -> KeyRecord:
        """Find a key by id, ARN, alias name or alias ARN, as `caller` may see it."""
        if not isinstance(key_id, str) or not key_id:
            raise ValidationException("KeyId is required")
        key = self._find(caller, key_id)
        if key.owner_service is not None and caller.service_principal != key.owner_service:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        key = self._refresh(key)
        if key.state == DESTROYED:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        if rec is not None:
            rec.key(key)
        return key

    def _find(self, caller: Caller, key_id: str) -> KeyRecord:
        if m := _KEY_ARN.match(key_id):
            region, account, kid = m.groups()
            if region != self.region:
                raise NotFoundException(f"Invalid arn {region}")
            key = self._state.keys.get(kid)
            if key is None or key.account != account:
                raise NotFoundException(f"Key '{key_id}' does not exist")
            return key
        if m := _ALIAS_ARN.match(key_id):
            region, account, name = m.groups()
            if region != self.region:
                raise NotFoundException(f"Invalid arn {region}")
            return self._alias_target(account, name, key_id)
        if key_id.startswith("alias/"):
            arn = f"arn:aws:kms:{self.region}:{caller.account}:{key_id}"
            return self._alias_target(caller.account, key_id, arn)
        if not _UUID.match(key_id):
            raise NotFoundException(f"Invalid keyId '{key_id}'")
        key = self._state.keys.get(key_id)
        if key is None or key.account != caller.account:
            arn = f"arn:aws:kms:{self.region}:{caller.account}:key/{key_id}"
            raise NotFoundException(f"Key '{arn}' does not exist")
        return key

    def _alias_target(self, account: str, name: str, arn: str) -> KeyRecord:
        alias = self._state.aliases.get((account, self.region, name))
        key = self._state.keys.get(alias.target_key_id) if alias else None
        if key is None or key.state == DESTROYED:
            raise NotFoundException(f"Alias '{arn}' is not found.")
        return key

    # ------------------------------------------------------------------ lifecycle
    @staticmethod
    def _due(key: KeyRecord, now: float) -> bool:
        """Whether the clock says something is due: destruction or an auto rotation."""
        if key.state == PENDING_DELETION and key.deletion_date is not None:
            return now >= key.deletion_date
        return bool(
            key.rotation_enabled
            and key.state != DISABLED
            and key.next_rotation_date
            and now >= key.next_rotation_date
        )

    def _refresh(self, key: KeyRecord) -> KeyRecord:
        """Apply what the clock says is due: destruction after the window, auto rotation."""
        now = self._now()
        if not self._due(key, now):
            return key
        if key.state == PENDING_DELETION and key.deletion_date is not None:
            return self._destroy(key)
        if key.next_rotation_date:
            return self._catch_up_rotation(key, now)
        return key

    def _catch_up_rotation(self, key: KeyRecord, now: float) -> KeyRecord:
        period = (key.rotation_period_days or 365) * DAY
        materials = list(key.materials)
        due = key.next_rotation_date or now
        for _ in range(MAX_CATCH_UP_ROTATIONS):
            if now < due:
                break
            m = self._new_material(key.key_id, "AUTOMATIC")
            materials.append(replace(m, created=due))
            due += period
        if now >= due:  # far behind: skip ahead rather than loop without end
            due = now + period
        key = replace(key, materials=tuple(materials), next_rotation_date=due)
        self._put_key(key)
        self._save()
        return key

    def _destroy(self, key: KeyRecord) -> KeyRecord:
        """The deletion window has passed: erase material, aliases and grants."""
        dead = replace(
            key,
            state=DESTROYED,
            materials=(),
            policy="",
            tags=(),
            rotation_enabled=False,
            description="",
        )
        self._put_key(dead)
        for k, a in list(self._state.aliases.items()):
            if a.target_key_id == key.key_id:
                del self._state.aliases[k]
        for gid, g in list(self._state.grants.items()):
            if g.key_id == key.key_id:
                del self._state.grants[gid]
        for k in [k for k in self._plain if k[0] == key.key_id]:
            del self._plain[k]
        self._save()
        self.audit.record(
            Caller(arn="", account=key.account, service_principal="kms.amazonaws.com"),
            "DeleteKey",
            read_only=False,
            request_parameters=None,
            resources=[(key.account, key.arn)],
            recipient_account=key.account,
        )
        return dead

    def purge_expired(self) -> int:
        """Destroy every key whose deletion window has passed; returns how many."""
        with self._lock:
            now = self._now()
            due = [
                k
                for k in self._state.keys.values()
                if k.state == PENDING_DELETION and k.deletion_date and now >= k.deletion_date
            ]
            for k in due:
                self._destroy(k)
            return len(due)

    # ------------------------------------------------------------------ checks
    def _require_usable(self, key: KeyRecord) -> None:
        """Crypto operations need an Enabled key."""
        if key.state == DISABLED:
            raise DisabledException(f"{key.arn} is disabled.")
        if key.state == PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")

    def _require_not_pending(self, key: KeyRecord) -> None:
        if key.state == PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")

    def _authorize(
        self,
        caller: Caller,
        action: str,
        key: KeyRecord,
        context: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Grant | None:
        req = authz.Request(caller, action, key, context, extra)
        return self._authz.check(req, self._key_grants(key.key_id))

    def _check_tokens(self, grant_tokens: Iterable[str] | None) -> None:
        tokens = list(grant_tokens or ())
        if len(tokens) > 10:
            raise ValidationException("At most 10 grant tokens may be supplied")
        for t in tokens:
            grantlib.token_grant_id(t)

    def _key_grants(self, key_id: str) -> list[Grant]:
        return [g for g in self._state.grants.values() if g.key_id == key_id]

    def _aliases_of(self, key_id: str) -> list[AliasRecord]:
        return [a for a in self._state.aliases.values() if a.target_key_id == key_id]


def _label(key_id: str, material_id: str) -> bytes:
    return f"{key_id}/{material_id}".encode()
