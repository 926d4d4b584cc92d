"""Connect's SQLite schema and the conversions between rows and models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from s3sim.connect.models import PENDING, Contact, DataKeyRecord, Instance, Item, StorageConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
  instance_id TEXT PRIMARY KEY, arn TEXT NOT NULL, account TEXT NOT NULL, alias TEXT,
  idm_type TEXT NOT NULL, inbound INTEGER NOT NULL, outbound INTEGER NOT NULL,
  created REAL NOT NULL, service_role TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS storage_configs (
  association_id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, resource_type TEXT NOT NULL,
  bucket TEXT NOT NULL, prefix TEXT NOT NULL, key_arn TEXT NOT NULL, grant_id TEXT,
  grant_token TEXT, created REAL NOT NULL, UNIQUE (instance_id, resource_type));
CREATE TABLE IF NOT EXISTS retiring_grants (
  grant_id TEXT PRIMARY KEY, grant_token TEXT NOT NULL, key_arn TEXT NOT NULL,
  instance_id TEXT NOT NULL, resource_type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_keys (
  dk_id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, key_arn TEXT NOT NULL,
  blob BLOB NOT NULL, created REAL NOT NULL, items INTEGER NOT NULL, retired INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  item_id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, resource_type TEXT NOT NULL,
  contact_id TEXT NOT NULL, ext TEXT NOT NULL, status TEXT NOT NULL, staged_at REAL NOT NULL,
  updated_at REAL NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
  content_type TEXT NOT NULL, blob_id TEXT, dk_id TEXT, attempts INTEGER NOT NULL,
  next_attempt_at REAL, last_error_code TEXT, last_error_message TEXT, location TEXT,
  delivered_at REAL, generation INTEGER NOT NULL,
  UNIQUE (instance_id, resource_type, contact_id, ext));
CREATE INDEX IF NOT EXISTS items_by_status ON items (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS contacts (
  instance_id TEXT NOT NULL, contact_id TEXT NOT NULL, arn TEXT NOT NULL,
  channel TEXT NOT NULL, initiated REAL NOT NULL, PRIMARY KEY (instance_id, contact_id));
"""

ITEM_COLS = (
    "item_id, instance_id, resource_type, contact_id, ext, status, staged_at, updated_at, "
    "size, etag, content_type, blob_id, dk_id, attempts, next_attempt_at, last_error_code, "
    "last_error_message, location, delivered_at, generation"
)
PENDING_SQL = "(" + ",".join(f"'{s}'" for s in PENDING) + ")"


def to_ts(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def to_dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC)


def instance_of(r: Any) -> Instance:
    return Instance(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), to_dt(r[7]), r[8], r[9])


def config_of(r: Any) -> StorageConfig:
    return StorageConfig(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], to_dt(r[8]))


def data_key_of(r: Any) -> DataKeyRecord:
    return DataKeyRecord(r[0], r[1], r[2], bytes(r[3]), to_dt(r[4]), r[5], bool(r[6]))


def item_of(r: Any) -> Item:
    return Item(
        *r[:6],
        to_dt(r[6]),
        to_dt(r[7]),
        *r[8:14],
        to_dt(r[14]),
        r[15],
        r[16],
        r[17],
        to_dt(r[18]),
        r[19],
    )


def contact_of(r: Any) -> Contact:
    return Contact(r[0], r[1], r[2], r[3], to_dt(r[4]))
