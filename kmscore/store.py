"""Persistence of keys, material versions, aliases, grants, policies, tags, rotation.

The whole state is one msgpack document at <data-dir>/kms/state.msgpack, written
atomically (temp file, fsync, rename, fsync of the directory). Key material is only
ever stored sealed under the root key (see rootkey.py).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from kmscore.models import AliasRecord, Grant, GrantConstraints, KeyRecord, Material

FORMAT_VERSION = 1


@dataclass
class State:
    """The mutable in-memory state; guarded by the KMS facade's lock."""

    keys: dict[str, KeyRecord] = field(default_factory=dict)
    # (account, region, alias name) -> AliasRecord
    aliases: dict[tuple[str, str, str], AliasRecord] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)


def _key_to_dict(k: KeyRecord) -> dict[str, Any]:
    d = asdict(k)
    d["tags"] = [list(t) for t in k.tags]
    return d


def _key_from_dict(d: dict[str, Any]) -> KeyRecord:
    d = dict(d)
    d["materials"] = tuple(Material(**m) for m in d["materials"])
    d["tags"] = tuple((t[0], t[1]) for t in d.get("tags", ()))
    return KeyRecord(**d)


def _pairs(v: Any) -> tuple[tuple[str, str], ...] | None:
    return None if v is None else tuple((p[0], p[1]) for p in v)


def _grant_from_dict(d: dict[str, Any]) -> Grant:
    d = dict(d)
    d["operations"] = tuple(d["operations"])
    c = d.get("constraints")
    if c is not None:
        d["constraints"] = GrantConstraints(
            _pairs(c.get("encryption_context_subset")), _pairs(c.get("encryption_context_equals"))
        )
    return Grant(**d)


def dumps(state: State) -> bytes:
    doc = {
        "version": FORMAT_VERSION,
        "keys": [_key_to_dict(k) for k in state.keys.values()],
        "aliases": [asdict(a) for a in state.aliases.values()],
        "grants": [asdict(g) for g in state.grants.values()],
    }
    return msgpack.packb(doc, use_bin_type=True)


def loads(data: bytes) -> State:
    doc = msgpack.unpackb(data, raw=False)
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported kms state version {doc.get('version')!r}")
    state = State()
    for d in doc["keys"]:
        k = _key_from_dict(d)
        state.keys[k.key_id] = k
    for d in doc["aliases"]:
        a = AliasRecord(**d)
        state.aliases[(a.account, a.region, a.name)] = a
    for d in doc["grants"]:
        g = _grant_from_dict(d)
        state.grants[g.grant_id] = g
    return state


class StateFile:
    """Loads and atomically saves the state document."""

    def __init__(self, kms_dir: Path, fsync: bool = True) -> None:
        self.path = kms_dir / "state.msgpack"
        self._dir = kms_dir
        self._fsync = fsync
        kms_dir.mkdir(parents=True, exist_ok=True)

    def load(self) -> State:
        if not self.path.exists():
            return State()
        return loads(self.path.read_bytes())

    def save(self, state: State) -> None:
        data = dumps(state)
        tmp = self._dir / f"state.msgpack.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        if self._fsync:
            dfd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
