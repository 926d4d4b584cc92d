"""kmscore's models: snake_case frozen dataclasses (no wire shapes here)."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime

from kmscore.frozen import frozen

ENABLED = "Enabled"
DISABLED = "Disabled"
PENDING_DELETION = "PendingDeletion"
DESTROYED = "Destroyed"  # internal tombstone: never shown, lookups give NotFound

CUSTOMER = "CUSTOMER"
AWS = "AWS"

AWS_OWNED_ACCOUNT = "000000000000"  # the account AWS-owned keys live in (never a customer's)

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"


@frozen
class Material:
    """One version of a key's material. `sealed` is the material under the root key."""

    material_id: str  # 64 hex chars
    created: float  # epoch seconds
    rotation_type: str | None  # None for the first material; "AUTOMATIC" | "ON_DEMAND"
    sealed: bytes


@frozen
class KeyRecord:
    """Everything stored about one KMS key."""

    key_id: str
    account: str
    region: str
    description: str
    state: str
    key_manager: str
    creation_date: float
    policy: str
    materials: tuple[Material, ...]
    owner_service: str | None = None  # AWS-owned keys: the owning service principal
    owned_name: str | None = None
    deletion_date: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation_date: float | None = None
    on_demand_rotations: int = 0
    on_demand_rotation_start: float | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/{self.key_id}"

    @property
    def current_material(self) -> Material:
        return self.materials[-1]

    def material(self, material_id: str) -> Material | None:
        for m in self.materials:
            if m.material_id == material_id:
                return m
        return None


@frozen
class AliasRecord:
    name: str  # "alias/x"
    account: str
    region: str
    target_key_id: str
    creation_date: float
    last_updated: float

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:{self.name}"


@frozen
class GrantConstraints:
    encryption_context_subset: tuple[tuple[str, str], ...] | None = None
    encryption_context_equals: tuple[tuple[str, str], ...] | None = None


@frozen
class Grant:
    grant_id: str
    key_id: str
    key_arn: str
    grantee_principal: str
    operations: tuple[str, ...]
    issuing_account: str
    creation_date: float
    token: str
    retiring_principal: str | None = None
    constraints: GrantConstraints | None = None
    name: str | None = None


@frozen
class KeyMetadata:
    key_id: str
    arn: str
    account: str
    state: str
    key_manager: str
    key_spec: str
    key_usage: str
    description: str
    creation_date: datetime
    deletion_date: datetime | None
    pending_deletion_window_days: int | None
    current_key_material_id: str
    enabled: bool
    origin: str = "AWS_KMS"
    encryption_algorithms: tuple[str, ...] = (SYMMETRIC_DEFAULT,)
    multi_region: bool = False


@frozen
class DataKey:
    key_arn: str
    plaintext: bytes | None  # None for GenerateDataKeyWithoutPlaintext
    ciphertext_blob: bytes
    key_material_id: str


@frozen
class Decrypted:
    key_arn: str
    plaintext: bytes
    key_material_id: str


@frozen
class Encrypted:
    key_arn: str
    ciphertext_blob: bytes
    key_material_id: str


@frozen
class ReEncrypted:
    ciphertext_blob: bytes
    source_key_arn: str
    key_arn: str
    source_key_material_id: str
    destination_key_material_id: str


@frozen
class DeletionScheduled:
    key_arn: str
    deletion_date: datetime
    key_state: str
    pending_window_days: int


@frozen
class RotationStatus:
    key_arn: str
    enabled: bool
    rotation_period_days: int | None
    next_rotation_date: datetime | None
    on_demand_rotation_start: datetime | None


@frozen
class Rotation:
    key_id: str
    key_material_id: str
    rotation_date: datetime
    rotation_type: str


@frozen
class Alias:
    name: str
    arn: str
    target_key_id: str | None
    creation_date: datetime | None
    last_updated: datetime | None


@frozen
class Page:
    """One page of a listing. `next_marker` is None when not truncated."""

    items: tuple = field(default_factory=tuple)
    next_marker: str | None = None

    @property
    def truncated(self) -> bool:
        return self.next_marker is not None
