"""The CloudTrail JSON adapter: LookupEvents over kmscore's audit trail.

X-Amz-Target "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from kmscore import KMS, Caller
from kmscore.audit import InvalidLookupAttributesException, InvalidNextTokenException, username
from s3sim.http.awsjson import Json, WireError, json_handler

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise WireError("InvalidTimeRangeException", f"Invalid {name}") from None


def event_entry(rec: Json) -> Json:
    ident = rec.get("userIdentity") or {}
    out: Json = {
        "EventId": rec.get("eventID"),
        "EventName": rec.get("eventName"),
        "ReadOnly": "true" if rec.get("readOnly") else "false",
        "EventTime": datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=UTC)
        .timestamp(),
        "EventSource": rec.get("eventSource"),
        "Username": username(rec),
        "Resources": [
            {"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
            for r in rec.get("resources") or ()
        ],
        "CloudTrailEvent": json.dumps(rec),
    }
    if ident.get("accessKeyId"):
        out["AccessKeyId"] = ident["accessKeyId"]
    return out


def lookup_events(kms: KMS, caller: Caller, params: Json) -> Json:
    """Pure translation of LookupEvents (wire in, wire out)."""
    attrs = []
    for a in params.get("LookupAttributes") or ():
        if not isinstance(a, dict) or "AttributeKey" not in a or "AttributeValue" not in a:
            raise WireError("InvalidLookupAttributesException", "Invalid lookup attribute")
        attrs.append((a["AttributeKey"], a["AttributeValue"]))
    start = _time(params.get("StartTime"), "StartTime")
    end = _time(params.get("EndTime"), "EndTime")
    if start and end and start > end:
        raise WireError("InvalidTimeRangeException", "Start time must be earlier than end time.")
    max_results = params.get("MaxResults", 50)
    if not isinstance(max_results, int) or not 1 <= max_results <= 50:
        raise WireError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    try:
        records, token = kms.lookup_events(
            caller.account, attrs, start, end, max_results, params.get("NextToken")
        )
    except (InvalidLookupAttributesException, InvalidNextTokenException) as e:
        raise WireError(e.code, str(e)) from None
    out: Json = {"Events": [event_entry(r) for r in records]}
    if token:
        out["NextToken"] = token
    return out


def dispatch(kms: KMS, caller: Caller, op: str, params: Json) -> Json:
    if op != "LookupEvents":
        raise WireError("UnknownOperationException", f"Unknown operation {op}")
    if not isinstance(params, dict):
        raise WireError("SerializationException", "Request body must be a JSON object")
    if not caller.iam_allows("cloudtrail:LookupEvents"):
        raise WireError(
            "AccessDeniedException",
            f"User: {caller.arn} is not authorized to perform: cloudtrail:LookupEvents",
        )
    return lookup_events(kms, caller, params)


def handler(components: Any) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    return json_handler(TARGET_PREFIX, partial(dispatch, components.kms), ())
