"""Who may call the server: access keys, their principals and IAM action patterns.

Built-in identities, overridable by <data-dir>/identities.json: a JSON list of objects
{"accessKeyId", "secretAccessKey", "arn", "actions": [..]} (see the README).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path

from kmscore.caller import Caller
from kmscore.frozen import frozen

_ARN = re.compile(r"^arn:aws:(iam|sts)::(\d{12}):\S+$")
_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")


class IdentitiesError(ValueError):
    """identities.json is unreadable or invalid (the message says where)."""


@frozen
class Identity:
    access_key_id: str
    secret_access_key: str
    arn: str
    account: str
    actions: tuple[str, ...]

    def caller(self, source_ip: str, user_agent: str) -> Caller:
        return _caller(self, source_ip, user_agent)


@lru_cache(maxsize=1024)  # one client sends request after request: one (immutable) Caller
def _caller(identity: Identity, source_ip: str, user_agent: str) -> Caller:
    return Caller(
        arn=identity.arn,
        account=identity.account,
        iam_actions=identity.actions,
        source_ip=source_ip,
        user_agent=user_agent,
        access_key_id=identity.access_key_id,
    )


def _identity(key: str, secret: str, arn: str, actions: tuple[str, ...]) -> Identity:
    m = _ARN.match(arn)
    if m is None:
        raise IdentitiesError(f"invalid principal ARN {arn!r}")
    return Identity(key, secret, arn, m.group(2), actions)


BUILTIN: tuple[Identity, ...] = (
    _identity(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "arn:aws:iam::111122223333:root",
        ("*",),
    ),
    _identity(
        "AKIAALICE00EXAMPLE01",
        "alice/Secret/Key/EXAMPLE/0000000000000001",
        "arn:aws:iam::111122223333:user/alice",
        ("s3:*",),
    ),
    _identity(
        "AKIAOTHER00EXAMPLE01",
        "other/Secret/Key/EXAMPLE/000000000000001",
        "arn:aws:iam::444455556666:root",
        ("*",),
    ),
)


class Identities(Mapping[str, Identity]):
    """Identities by access key id (read-only)."""

    def __init__(self, identities: Iterable[Identity]) -> None:
        self._by_key: dict[str, Identity] = {}
        for ident in identities:
            if ident.access_key_id in self._by_key:
                raise IdentitiesError(f"duplicate access key id {ident.access_key_id!r}")
            self._by_key[ident.access_key_id] = ident

    def __getitem__(self, key: str) -> Identity:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)


def parse_identities(doc: object, source: str = "identities.json") -> Identities:
    if not isinstance(doc, list) or not doc:
        raise IdentitiesError(f"{source}: expected a non-empty JSON list of identities")
    out = []
    for i, item in enumerate(doc):
        where = f"{source}[{i}]"
        if not isinstance(item, dict):
            raise IdentitiesError(f"{where}: expected an object")
        for name in ("accessKeyId", "secretAccessKey", "arn"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise IdentitiesError(f"{where}: {name!r} must be a non-empty string")
        if not _KEY_ID.match(item["accessKeyId"]):
            raise IdentitiesError(f"{where}: accessKeyId must be 16+ characters A-Z0-9")
        actions = item.get("actions", [])
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise IdentitiesError(f"{where}: 'actions' must be a list of strings")
        try:
            ident = _identity(
                item["accessKeyId"], item["secretAccessKey"], item["arn"], tuple(actions)
            )
        except IdentitiesError as e:
            raise IdentitiesError(f"{where}: {e}") from None
        out.append(ident)
    return Identities(out)


def load_identities(data_dir: Path) -> Identities:
    """<data-dir>/identities.json if it exists, else the built-in identities."""
    path = Path(data_dir) / "identities.json"
    if not path.exists():
        return Identities(BUILTIN)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise IdentitiesError(f"{path}: cannot read identities: {e}") from None
    return parse_identities(doc, str(path))
