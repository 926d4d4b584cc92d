"""The KMS facade: `KMS(data_dir, region, clock, rng=os.urandom, root_key=None)`.

Synchronous and thread-safe. Every public method that takes `caller` authorizes
(key policy + IAM + grants, fail-closed), writes one audit record and raises
kmscore.errors.* on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kmscore import rootkey
from kmscore.ops_admin import AdminOps
from kmscore.ops_aliases import AliasOps
from kmscore.ops_crypto import CryptoOps
from kmscore.ops_grants import GrantOps
from kmscore.ops_keys import KeyOps


class KMS(KeyOps, CryptoOps, GrantOps, AliasOps, AdminOps):
    """Keys, aliases, crypto, grants, policies, rotation, tags, audit lookup."""

    def derived_secret(self, name: str) -> bytes:
        """A 32-byte secret for another component, derived from the root key; never stored."""
        return rootkey.derive_secret(self._root, name)

    def lookup_events(
        self,
        account: str,
        attributes: Sequence[tuple[str, str]] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        max_results: int = 50,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """CloudTrail LookupEvents for `account`: (records newest first, next token).

        Raises kmscore.audit.InvalidLookupAttributesException / InvalidNextTokenException.
        """
        return self.audit.lookup(account, attributes, start, end, max_results, next_token)
