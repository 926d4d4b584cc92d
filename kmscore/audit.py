"""The audit trail: one CloudTrail-shaped JSON record per KMS call, allowed or denied.

Records are appended as JSON lines to <data-dir>/kms/audit.jsonl (flushed and, by
default, fsynced before the call returns). Plaintext and key material never enter a
record: callers pass only request parameters that are safe to log.
`lookup()` serves CloudTrail's LookupEvents, newest first, by reading the file backwards.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from kmscore.caller import Caller
from kmscore.clock import Clock

EVENT_VERSION = "1.11"
EVENT_SOURCE = "kms.amazonaws.com"

# The adapter sets this so that requestID in the record equals x-amzn-RequestId.
request_id_var: ContextVar[str | None] = ContextVar("kmscore_request_id", default=None)

LOOKUP_KEYS = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)


class InvalidLookupAttributesException(ValueError):
    code = "InvalidLookupAttributesException"


class InvalidNextTokenException(ValueError):
    code = "InvalidNextTokenException"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity_type(caller: Caller) -> str:
    if caller.service_principal and not caller.arn:
        return "AWSService"
    if caller.is_root:
        return "Root"
    if ":assumed-role/" in caller.arn or ":role/" in caller.arn:
        return "AssumedRole"
    return "IAMUser"


def _principal_id(caller: Caller) -> str:
    if caller.is_root:
        return caller.account
    digest = uuid.uuid5(uuid.NAMESPACE_URL, caller.arn or caller.service_principal or "").hex
    return ("AROA" if ":role/" in caller.arn else "AIDA") + digest[:17].upper()


def user_identity(caller: Caller) -> dict[str, Any]:
    kind = _identity_type(caller)
    if kind == "AWSService":
        return {"type": kind, "invokedBy": caller.service_principal}
    ident: dict[str, Any] = {
        "type": kind,
        "principalId": _principal_id(caller),
        "arn": caller.arn,
        "accountId": caller.account,
        "accessKeyId": caller.access_key_id,
    }
    if kind == "IAMUser":
        ident["userName"] = caller.arn.rsplit("/", 1)[-1]
    if caller.invoked_by:
        ident["invokedBy"] = caller.invoked_by
    return ident


def username(record: dict[str, Any]) -> str:
    ident = record.get("userIdentity") or {}
    if ident.get("type") == "Root":
        return "root"
    if ident.get("type") == "AWSService":
        return ident.get("invokedBy", "")
    return (ident.get("arn") or "").rsplit("/", 1)[-1]


class AuditLog:
    """Appends records durably; thread-safe."""

    def __init__(
        self,
        kms_dir: Path,
        region: str,
        clock: Clock,
        rng: Callable[[int], bytes] = os.urandom,
        fsync: bool = True,
    ) -> None:
        kms_dir.mkdir(parents=True, exist_ok=True)
        self.path = kms_dir / "audit.jsonl"
        self._region = region
        self._clock = clock
        self._rng = rng
        self._fsync = fsync
        self._lock = threading.Lock()
        # one write() per record on an O_APPEND descriptor: records of several server
        # processes sharing this file never interleave
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sync_lock = threading.Lock()
        self._written = self._synced = os.lseek(self._fd, 0, os.SEEK_END)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)

    def _uuid(self) -> str:
        return str(uuid.UUID(bytes=self._rng(16), version=4))

    def record(
        self,
        caller: Caller,
        event_name: str,
        *,
        read_only: bool,
        request_parameters: dict[str, Any] | None,
        response_elements: dict[str, Any] | None = None,
        resources: Sequence[tuple[str, str]] = (),  # (account, key ARN)
        error: tuple[str, str] | None = None,  # (code, message)
        recipient_account: str | None = None,
    ) -> dict[str, Any]:
        """Build one record and append it; returns the record."""
        rec: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": user_identity(caller),
            "eventTime": iso(self._clock.now()),
            "eventSource": EVENT_SOURCE,
            "eventName": event_name,
            "awsRegion": self._region,
            "sourceIPAddress": caller.invoked_by or caller.source_ip,
            "userAgent": caller.invoked_by or caller.user_agent,
        }
        if error is not None:
            rec["errorCode"] = error[0]
            if error[1]:
                rec["errorMessage"] = error[1]
        rec["requestParameters"] = request_parameters
        rec["responseElements"] = response_elements
        rec["requestID"] = request_id_var.get() or self._uuid()
        rec["eventID"] = self._uuid()
        rec["readOnly"] = read_only
        if resources:
            rec["resources"] = [
                {"accountId": acct, "type": "AWS::KMS::Key", "ARN": arn} for acct, arn in resources
            ]
        rec["eventType"] = "AwsApiCall"
        rec["managementEvent"] = True
        rec["recipientAccountId"] = recipient_account or caller.account
        rec["eventCategory"] = "Management"
        self.append(rec)
        return rec

    def append(self, rec: dict[str, Any]) -> None:
        """Append one record; with fsync, return only once it is on stable storage.

        Group commit: concurrent appenders share one fsync (whoever syncs covers every
        byte written before the sync started).
        """
        line = json.dumps(rec, separators=(",", ":"), sort_keys=False).encode() + b"\n"
        with self._lock:
            if os.write(self._fd, line) != len(line):
                raise OSError("short write to the audit trail")
            self._written += len(line)
            mine = self._written
        if not self._fsync:
            return
        with self._sync_lock:
            if self._synced >= mine:
                return
            with self._lock:
                upto = self._written
            os.fsync(self._fd)
            self._synced = upto

    def lookup(
        self,
        account: str,
        attributes: Sequence[tuple[str, str]] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        max_results: int = 50,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Records visible to `account`, newest first; returns (records, next token)."""
        if len(attributes) > 1:
            raise InvalidLookupAttributesException("You can only specify one lookup attribute.")
        for k, _ in attributes:
            if k not in LOOKUP_KEYS:
                raise InvalidLookupAttributesException(f"Invalid lookup attribute key: {k}")
        if not 1 <= max_results <= 50:
            max_results = 50
        size = os.stat(self.path).st_size  # every process's records, whole lines
        offset = _decode_token(next_token, size) if next_token else size
        out: list[dict[str, Any]] = []
        for pos, rec in _reverse_records(self.path, offset):
            t = rec.get("eventTime", "")
            if end is not None and t > iso(end):
                continue
            if start is not None and t < iso(start):
                return out, None
            if not _visible(rec, account) or not all(_matches(rec, k, v) for k, v in attributes):
                continue
            if len(out) == max_results:
                return out, _encode_token(pos)
            out.append(rec)
        return out, None


def _visible(rec: dict[str, Any], account: str) -> bool:
    ident = rec.get("userIdentity") or {}
    return rec.get("recipientAccountId") == account or ident.get("accountId") == account


def _matches(rec: dict[str, Any], key: str, value: str) -> bool:
    resources = rec.get("resources") or []
    if key == "EventName":
        return rec.get("eventName") == value
    if key == "EventSource":
        return rec.get("eventSource") == value
    if key == "EventId":
        return rec.get("eventID") == value
    if key == "ReadOnly":
        return str(bool(rec.get("readOnly"))).lower() == value.lower()
    if key == "Username":
        return username(rec) == value
    if key == "AccessKeyId":
        return (rec.get("userIdentity") or {}).get("accessKeyId") == value
    if key == "ResourceType":
        return any(r.get("type") == value for r in resources)
    # ResourceName: the key ARN or its bare key id
    return any(r.get("ARN") == value or r.get("ARN", "").endswith("/" + value) for r in resources)


def _encode_token(pos: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": pos}).encode()).decode()


def _decode_token(token: str, size: int) -> int:
    try:
        pos = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidNextTokenException("Invalid NextToken") from None
    if not isinstance(pos, int) or not 0 <= pos <= size:
        raise InvalidNextTokenException("Invalid NextToken")
    return pos


def _reverse_records(path: Path, end: int, block: int = 65536) -> Iterator[tuple[int, dict]]:
    """(offset just past the line's newline, record) for each line before `end`, backwards.

    Bytes after the last newline before `end` are a record another process is still
    appending: skipped."""
    with open(path, "rb") as f:
        pos = end
        tail = b""
        first = True
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + tail
            lines = buf.split(b"\n")
            if first and len(lines) > 1:
                lines[-1], first = b"", False
            tail = lines[0]
            starts = [pos]
            for line in lines[:-1]:
                starts.append(starts[-1] + len(line) + 1)
            for i in range(len(lines) - 1, 0, -1):
                if lines[i].strip():
                    yield starts[i] + len(lines[i]) + 1, json.loads(lines[i])
        if tail.strip():
            yield len(tail) + 1, json.loads(tail)
