"""Pipeline state as plain data (for /_s3sim/ JSON) and as lines (for `s3sim status`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from s3sim.connect.models import Item
from s3sim.connect.store import Store

STATUS_ORDER = ("STAGED", "WAITING_FOR_CONFIG", "DELIVERING", "FAILED", "DELIVERED", "EXPIRED")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item_view(item: Item) -> dict[str, Any]:
    """One item as the simulator endpoint shows it (JSON-ready)."""
    return {
        "ContactId": item.contact_id,
        "ResourceType": item.resource_type,
        "StagingKey": item.staging_key,
        "Status": item.status,
        "Attempts": item.attempts,
        "LastError": (
            {"Code": item.last_error_code, "Message": item.last_error_message}
            if item.last_error_code
            else None
        ),
        "Location": item.location,
        "Size": item.size,
        "ETag": item.etag,
        "StagedAt": _iso(item.staged_at),
        "UpdatedAt": _iso(item.updated_at),
        "DeliveredAt": _iso(item.delivered_at),
        "NextAttemptAt": _iso(item.next_attempt_at),
    }


def status_lines(source: Store | Path, *, items_per_instance: int = 20) -> list[str]:
    """`s3sim status`: per instance, item counts by status, configs and failing items.

    `source` is a Store, or a data dir (its <data-dir>/connect/connect.db is read).
    """
    if not isinstance(source, Store):
        db = Path(source) / "connect" / "connect.db"
        if not db.exists():
            return ["connect: no instances"]
        store = Store(db)
        try:
            return status_lines(store, items_per_instance=items_per_instance)
        finally:
            store.close()
    store = source
    lines = []
    instances = store.instances()
    if not instances:
        return ["connect: no instances"]
    for inst in instances:
        counts = store.status_counts(inst.instance_id)
        summary = ", ".join(f"{s} {counts[s]}" for s in STATUS_ORDER if counts.get(s))
        lines.append(
            f"connect instance {inst.instance_id} ({inst.alias or '-'}, account {inst.account}): "
            f"{summary or 'no items'}"
        )
        for cfg in store.configs(inst.instance_id):
            key = cfg.key_arn or "bucket default encryption"
            lines.append(f"  {cfg.resource_type} -> s3://{cfg.bucket}/{cfg.prefix} ({key})")
        shown = 0
        for item in store.items(inst.instance_id):
            if item.status not in ("FAILED", "WAITING_FOR_CONFIG") or shown >= items_per_instance:
                continue
            shown += 1
            err = (
                f": {item.last_error_code}: {item.last_error_message}"
                if item.last_error_code
                else ""
            )
            lines.append(f"  {item.status} {item.staging_key} attempts={item.attempts}{err}")
    return lines
