"""Connect's metadata in SQLite (<data-dir>/connect/connect.db): WAL, one transaction
per change (s3sim/storage/sqlitedb.py: fsynced at commit with --fsync, so an
acknowledged ingest survives an OS crash; written to the OS at commit without it, so it
survives kill -9). Thread-safe through one lock around one connection."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from s3sim.connect.errors import DataKeyGone
from s3sim.connect.models import (
    DELIVERED,
    DELIVERING,
    FAILED,
    STAGED,
    WAITING_FOR_CONFIG,
    Contact,
    DataKeyRecord,
    Instance,
    Item,
    StorageConfig,
)
from s3sim.connect.schema import (
    ITEM_COLS,
    PENDING_SQL,
    SCHEMA,
    config_of,
    contact_of,
    data_key_of,
    instance_of,
    item_of,
    to_dt,
    to_ts,
)
from s3sim.storage.sqlitedb import Database


class Store(Database):
    def __init__(self, path: Path, fsync: bool = True, shared: bool = False) -> None:
        super().__init__(path, SCHEMA, fsync, shared)

    # -- instances -------------------------------------------------------------------
    def insert_instance(self, i: Instance) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO instances VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    i.instance_id,
                    i.arn,
                    i.account,
                    i.alias,
                    i.identity_management_type,
                    int(i.inbound_calls),
                    int(i.outbound_calls),
                    to_ts(i.created),
                    i.service_role,
                    i.status,
                ),
            )

    def get_instance(self, instance_id: str) -> Instance | None:
        r = self._one("SELECT * FROM instances WHERE instance_id=?", (instance_id,))
        return None if r is None else instance_of(r)

    def instances(self, account: str | None = None) -> list[Instance]:
        if account is None:
            rows = self._all("SELECT * FROM instances ORDER BY created, instance_id")
        else:
            rows = self._all(
                "SELECT * FROM instances WHERE account=? ORDER BY created, instance_id", (account,)
            )
        return [instance_of(r) for r in rows]

    def alias_taken(self, account: str, alias: str) -> bool:
        return bool(
            self._one("SELECT 1 FROM instances WHERE account=? AND alias=?", (account, alias))
        )

    def delete_instance(self, instance_id: str) -> list[str]:
        """Remove the instance and everything it owns; returns the staged blob ids."""
        with self.tx() as db:
            blobs = [
                r[0]
                for r in db.execute(
                    "SELECT blob_id FROM items WHERE instance_id=? AND blob_id IS NOT NULL",
                    (instance_id,),
                )
            ]
            for table in ("items", "data_keys", "storage_configs", "contacts", "instances"):
                db.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))
        return blobs

    # -- storage configs ---------------------------------------------------------------
    def insert_config(self, c: StorageConfig) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO storage_configs VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    c.association_id,
                    c.instance_id,
                    c.resource_type,
                    c.bucket,
                    c.prefix,
                    c.key_arn,
                    c.grant_id,
                    c.grant_token,
                    to_ts(c.created),
                ),
            )

    def replace_config(self, c: StorageConfig) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE storage_configs SET bucket=?, prefix=?, key_arn=?, grant_id=?, "
                "grant_token=? WHERE association_id=?",
                (c.bucket, c.prefix, c.key_arn, c.grant_id, c.grant_token, c.association_id),
            )

    def get_config(self, instance_id: str, association_id: str) -> StorageConfig | None:
        r = self._one(
            "SELECT * FROM storage_configs WHERE instance_id=? AND association_id=?",
            (instance_id, association_id),
        )
        return None if r is None else config_of(r)

    def config_for(self, instance_id: str, resource_type: str) -> StorageConfig | None:
        r = self._one(
            "SELECT * FROM storage_configs WHERE instance_id=? AND resource_type=?",
            (instance_id, resource_type),
        )
        return None if r is None else config_of(r)

    def configs(self, instance_id: str) -> list[StorageConfig]:
        rows = self._all(
            "SELECT * FROM storage_configs WHERE instance_id=? ORDER BY created, association_id",
            (instance_id,),
        )
        return [config_of(r) for r in rows]

    def delete_config(self, association_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM storage_configs WHERE association_id=?", (association_id,))

    # -- grants waiting to be retired ----------------------------------------------------
    def add_retiring(self, c: StorageConfig) -> None:
        if not c.grant_id or not c.grant_token:
            return
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO retiring_grants VALUES (?,?,?,?,?)",
                (c.grant_id, c.grant_token, c.key_arn, c.instance_id, c.resource_type),
            )

    def retiring(self) -> list[tuple[str, str, str, str, str]]:
        return [tuple(r) for r in self._all("SELECT * FROM retiring_grants")]

    def remove_retiring(self, grant_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM retiring_grants WHERE grant_id=?", (grant_id,))

    def delivering_with_key(self, instance_id: str, resource_type: str) -> int:
        r = self._one(
            "SELECT COUNT(*) FROM items WHERE instance_id=? AND resource_type=? AND status=?",
            (instance_id, resource_type, DELIVERING),
        )
        return int(r[0])

    # -- data keys ----------------------------------------------------------------------
    def insert_data_key(self, d: DataKeyRecord) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO data_keys VALUES (?,?,?,?,?,?,?)",
                (
                    d.dk_id,
                    d.instance_id,
                    d.key_arn,
                    d.ciphertext_blob,
                    to_ts(d.created),
                    d.items,
                    int(d.retired),
                ),
            )

    def current_data_key(self, instance_id: str) -> DataKeyRecord | None:
        r = self._one(
            "SELECT * FROM data_keys WHERE instance_id=? AND retired=0 ORDER BY created DESC",
            (instance_id,),
        )
        return None if r is None else data_key_of(r)

    def get_data_key(self, dk_id: str) -> DataKeyRecord | None:
        r = self._one("SELECT * FROM data_keys WHERE dk_id=?", (dk_id,))
        return None if r is None else data_key_of(r)

    def data_keys(self, instance_id: str | None = None) -> list[DataKeyRecord]:
        if instance_id is None:
            return [data_key_of(r) for r in self._all("SELECT * FROM data_keys")]
        rows = self._all("SELECT * FROM data_keys WHERE instance_id=?", (instance_id,))
        return [data_key_of(r) for r in rows]

    def live_data_keys(self) -> list[DataKeyRecord]:
        """The data keys not yet retired."""
        return [data_key_of(r) for r in self._all("SELECT * FROM data_keys WHERE retired=0")]

    def data_key_ids(self) -> set[str]:
        return {r[0] for r in self._all("SELECT dk_id FROM data_keys")}

    def retire_data_key(self, dk_id: str, at: datetime | None = None) -> None:
        """`retired` holds the time of retirement (1 in older stores), set once."""
        stamp = max(1.0, to_ts(at) or 1.0)
        with self.tx() as db:
            db.execute("UPDATE data_keys SET retired=? WHERE dk_id=? AND retired=0", (stamp, dk_id))

    def destroy_unused_data_keys(
        self, keep: set[str] | None = None, retired_before: datetime | None = None
    ) -> list[str]:
        """Delete retired data keys that no pending item needs (except `keep`, and those
        retired after `retired_before`); their ids."""
        find = (
            "SELECT dk_id FROM data_keys d WHERE retired<>0 AND retired<=? AND NOT EXISTS "
            f"(SELECT 1 FROM items i WHERE i.dk_id=d.dk_id AND i.status IN {PENDING_SQL})"
        )
        cutoff = float("inf") if retired_before is None else to_ts(retired_before)
        keep = keep or set()
        if not [r for r in self._all(find, (cutoff,)) if r[0] not in keep]:
            return []  # the usual case: no write transaction at all
        with self.tx() as db:
            ids = [r[0] for r in db.execute(find, (cutoff,)).fetchall() if r[0] not in keep]
            for dk_id in ids:
                db.execute("DELETE FROM data_keys WHERE dk_id=?", (dk_id,))
                db.execute("UPDATE items SET dk_id=NULL WHERE dk_id=?", (dk_id,))
        return ids

    # -- items --------------------------------------------------------------------------
    def stage_item(self, item: Item, contact: Contact) -> str | None:
        """Insert (or re-stage) an item and its contact in one transaction.

        A second ingest of the same staging key replaces the staged bytes but keeps the
        first ingest time (so the delivered key does not change: no duplicate object).
        Returns the replaced blob id, if any.
        """
        with self.tx() as db:
            old = db.execute(
                "SELECT blob_id, staged_at, generation FROM items WHERE instance_id=? AND "
                "resource_type=? AND contact_id=? AND ext=?",
                (item.instance_id, item.resource_type, item.contact_id, item.ext),
            ).fetchone()
            staged_at, gen = to_ts(item.staged_at), 1
            if old is not None:
                staged_at, gen = old[1], old[2] + 1
                db.execute(
                    "DELETE FROM items WHERE instance_id=? AND resource_type=? AND "
                    "contact_id=? AND ext=?",
                    (item.instance_id, item.resource_type, item.contact_id, item.ext),
                )
            db.execute(
                f"INSERT INTO items ({ITEM_COLS}) VALUES ({','.join('?' * 20)})",
                (
                    item.item_id,
                    item.instance_id,
                    item.resource_type,
                    item.contact_id,
                    item.ext,
                    item.status,
                    staged_at,
                    to_ts(item.updated_at),
                    item.size,
                    item.etag,
                    item.content_type,
                    item.blob_id,
                    item.dk_id,
                    0,
                    to_ts(item.next_attempt_at),
                    None,
                    None,
                    None,
                    None,
                    gen,
                ),
            )
            cur = db.execute("UPDATE data_keys SET items=items+1 WHERE dk_id=?", (item.dk_id,))
            if cur.rowcount != 1:  # rolled back: nothing staged under a destroyed key
                raise DataKeyGone(item.dk_id)
            db.execute(
                "INSERT OR IGNORE INTO contacts VALUES (?,?,?,?,?)",
                (
                    contact.instance_id,
                    contact.contact_id,
                    contact.arn,
                    contact.channel,
                    to_ts(contact.initiated),
                ),
            )
        return None if old is None else old[0]

    def get_item(self, item_id: str) -> Item | None:
        r = self._one(f"SELECT {ITEM_COLS} FROM items WHERE item_id=?", (item_id,))
        return None if r is None else item_of(r)

    def items(self, instance_id: str, contact_id: str | None = None) -> list[Item]:
        sql = f"SELECT {ITEM_COLS} FROM items WHERE instance_id=?"
        args: tuple = (instance_id,)
        if contact_id is not None:
            sql += " AND contact_id=?"
            args += (contact_id,)
        return [item_of(r) for r in self._all(sql + " ORDER BY staged_at, item_id", args)]

    def due_items(self, now: datetime, limit: int) -> list[Item]:
        """Pending items whose next attempt is due: a DELIVERING one only once its claim's
        lease (its `next_attempt_at`) ran out, i.e. the process delivering it died."""
        rows = self._all(
            f"SELECT {ITEM_COLS} FROM items WHERE status IN {PENDING_SQL} AND status<>? AND "
            "(next_attempt_at IS NULL OR next_attempt_at<=?) ORDER BY staged_at LIMIT ?",
            (WAITING_FOR_CONFIG, to_ts(now), limit),
        )
        return [item_of(r) for r in rows]

    def next_due(self) -> datetime | None:
        r = self._one(f"SELECT MIN(next_attempt_at) FROM items WHERE status IN {PENDING_SQL}")
        return to_dt(r[0]) if r else None

    def status_counts(self, instance_id: str | None = None) -> dict[str, int]:
        sql, args = "SELECT status, COUNT(*) FROM items", ()
        if instance_id is not None:
            sql, args = sql + " WHERE instance_id=?", (instance_id,)
        return {r[0]: r[1] for r in self._all(sql + " GROUP BY status", args)}

    def update_item(
        self,
        item_id: str,
        generation: int | None = None,
        *,
        from_status: str | None = None,
        fence: int | None = None,
        **fields: Any,
    ) -> bool:
        """Set fields of an item (only if its generation, its status when `from_status` is
        given and its `attempts` when `fence` is given still match)."""
        conv = {k: to_ts(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        sets = ", ".join(f"{k}=?" for k in conv)
        sql, args = f"UPDATE items SET {sets} WHERE item_id=?", (*conv.values(), item_id)
        for column, value in (
            ("generation", generation),
            ("status", from_status),
            ("attempts", fence),
        ):
            if value is not None:
                sql, args = sql + f" AND {column}=?", (*args, value)
        with self.tx() as db:
            return db.execute(sql, args).rowcount == 1

    def claim_item(self, item: Item, now: datetime, lease_until: datetime) -> bool:
        """Compare-and-set the claim of a delivery: the item becomes DELIVERING with
        `attempts + 1` (the claim's fencing token) and `next_attempt_at = lease_until`,
        only if it is still as read (generation, status, attempts) and still due (no live
        lease). Of processes racing for one item exactly one wins."""
        sql = (
            "UPDATE items SET status=?, attempts=attempts+1, updated_at=?, next_attempt_at=? "
            "WHERE item_id=? AND generation=? AND status=? AND attempts=? AND status IN "
            "(?,?,?) AND (next_attempt_at IS NULL OR next_attempt_at<=?)"
        )
        args = (DELIVERING, to_ts(now), to_ts(lease_until), item.item_id, item.generation)
        args += (item.status, item.attempts, STAGED, FAILED, DELIVERING, to_ts(now))
        with self.tx() as db:
            return db.execute(sql, args).rowcount == 1

    def release_claims(self) -> int:
        """Every DELIVERING item becomes due at once (its lease is dropped): for the startup
        sweep, when no process can be delivering anything."""
        probe = "SELECT 1 FROM items WHERE status=? AND next_attempt_at IS NOT NULL LIMIT 1"
        if not self._one(probe, (DELIVERING,)):
            return 0  # the usual case: no write transaction at all
        with self.tx() as db:
            return db.execute(
                "UPDATE items SET next_attempt_at=NULL WHERE status=?", (DELIVERING,)
            ).rowcount

    def promote_waiting(self, instance_id: str | None = None, resource_type: str = "") -> int:
        """WAITING_FOR_CONFIG items whose config now exists become STAGED, due now.

        With no arguments: every such item (the worker's safety net for an ingest that
        raced an association); otherwise those of one instance and resource type.
        """
        sql = (
            "UPDATE items SET status=?, next_attempt_at=NULL WHERE status=? AND EXISTS "
            "(SELECT 1 FROM storage_configs c WHERE c.instance_id=items.instance_id AND "
            "c.resource_type=items.resource_type)"
        )
        args: tuple = (STAGED, WAITING_FOR_CONFIG)
        if instance_id is not None:
            sql += " AND instance_id=? AND resource_type=?"
            args += (instance_id, resource_type)
        probe = "SELECT 1 FROM items WHERE status=? AND EXISTS" + sql.split("EXISTS", 1)[1]
        if not self._one(probe + " LIMIT 1", args[1:]):
            return 0
        with self.tx() as db:
            return db.execute(sql, args).rowcount

    def demote_to_waiting(self, instance_id: str, resource_type: str) -> int:
        """STAGED and FAILED items of a type wait for a config again (it was removed)."""
        with self.tx() as db:
            return db.execute(
                "UPDATE items SET status=?, next_attempt_at=NULL WHERE instance_id=? AND "
                "resource_type=? AND status IN (?, ?)",
                (WAITING_FOR_CONFIG, instance_id, resource_type, STAGED, FAILED),
            ).rowcount

    def expired_items(self, before: datetime) -> list[Item]:
        rows = self._all(
            f"SELECT {ITEM_COLS} FROM items WHERE status IN {PENDING_SQL} AND status<>? AND "
            "staged_at<?",
            (DELIVERING, to_ts(before)),
        )
        return [item_of(r) for r in rows]

    def staged_blob_ids(self) -> set[str]:
        rows = self._all("SELECT blob_id FROM items WHERE blob_id IS NOT NULL")
        return {r[0] for r in rows}

    # -- contacts -------------------------------------------------------------------------
    def get_contact(self, instance_id: str, contact_id: str) -> Contact | None:
        r = self._one(
            "SELECT * FROM contacts WHERE instance_id=? AND contact_id=?", (instance_id, contact_id)
        )
        return None if r is None else contact_of(r)

    def delivered(self, instance_id: str, contact_id: str) -> list[Item]:
        return [i for i in self.items(instance_id, contact_id) if i.status == DELIVERED]
