"""The Connect restJson1 adapter (boto3's `connect` client) and the simulator views.

`handler(components)` serves the Connect API; `dispatch(connect, caller, method, path,
query, body)` is the pure translation between the wire (PascalCase JSON, epoch-second
timestamps) and s3sim.connect.ConnectService. `admin_routes(components)` returns the
unauthenticated simulator endpoints under /_s3sim/connect/.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from kmscore.caller import Caller
from s3sim.connect.contacts import ContactView
from s3sim.connect.errors import ConnectError, InvalidParameterException
from s3sim.connect.instances import NewInstance
from s3sim.connect.models import Instance, StorageConfig
from s3sim.connect.report import STATUS_ORDER, item_view
from s3sim.connect.storage_configs import S3ConfigInput

BODY_LIMIT = 256 * 1024
Json = dict[str, Any]

ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (m, re.compile(p), op)
    for m, p, op in (
        ("PUT", r"^/instance$", "CreateInstance"),
        ("GET", r"^/instance$", "ListInstances"),
        ("GET", r"^/instance/(?P<InstanceId>[^/]+)$", "DescribeInstance"),
        ("DELETE", r"^/instance/(?P<InstanceId>[^/]+)$", "DeleteInstance"),
        ("PUT", r"^/instance/(?P<InstanceId>[^/]+)/storage-config$", "AssociateStorage"),
        ("GET", r"^/instance/(?P<InstanceId>[^/]+)/storage-configs$", "ListStorage"),
        ("GET", r"^/instance/(?P<InstanceId>[^/]+)/storage-config/(?P<A>[^/]+)$", "DescStorage"),
        ("POST", r"^/instance/(?P<InstanceId>[^/]+)/storage-config/(?P<A>[^/]+)$", "UpdStorage"),
        ("DELETE", r"^/instance/(?P<InstanceId>[^/]+)/storage-config/(?P<A>[^/]+)$", "DisStorage"),
        ("GET", r"^/contacts/(?P<InstanceId>[^/]+)/(?P<ContactId>[^/]+)$", "DescribeContact"),
    )
)


class UnknownOperation(Exception):
    pass


# ------------------------------------------------------------------ wire shapes
def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _drop_none(d: Json) -> Json:
    return {k: v for k, v in d.items() if v is not None}


def instance_summary(i: Instance) -> Json:
    return _drop_none(
        {
            "Id": i.instance_id,
            "Arn": i.arn,
            "IdentityManagementType": i.identity_management_type,
            "InstanceAlias": i.alias,
            "CreatedTime": _epoch(i.created),
            "ServiceRole": i.service_role,
            "InstanceStatus": i.status,
            "InboundCallsEnabled": i.inbound_calls,
            "OutboundCallsEnabled": i.outbound_calls,
            "InstanceAccessUrl": f"https://{i.alias or i.instance_id}.my.connect.aws",
        }
    )


def storage_config(c: StorageConfig) -> Json:
    s3: Json = {"BucketName": c.bucket, "BucketPrefix": c.prefix}
    if c.key_arn:
        s3["EncryptionConfig"] = {"EncryptionType": "KMS", "KeyId": c.key_arn}
    return {"AssociationId": c.association_id, "StorageType": c.storage_type, "S3Config": s3}


_MEDIA = {"CALL_RECORDINGS": "AUDIO", "SCREEN_RECORDINGS": "VIDEO"}


def contact(view: ContactView) -> Json:
    c = view.contact
    recordings = [
        _drop_none(
            {
                "StorageType": "S3",
                "Location": r.location,
                "MediaStreamType": _MEDIA.get(r.resource_type),
                "ParticipantType": "ALL",
                "StartTimestamp": _epoch(r.staged_at),
                "StopTimestamp": _epoch(r.staged_at),
                "Status": "AVAILABLE",
            }
        )
        for r in view.recordings
    ]
    last = max([c.initiated] + [r.delivered_at for r in view.recordings if r.delivered_at])
    return {
        "Arn": c.arn,
        "Id": c.contact_id,
        "Channel": c.channel,
        "InitiationMethod": "API",
        "InitiationTimestamp": _epoch(c.initiated),
        "LastUpdateTimestamp": _epoch(last),
        "Recordings": recordings,
    }


def _s3_config(body: Json) -> S3ConfigInput:
    sc = body.get("StorageConfig")
    if not isinstance(sc, dict):
        raise InvalidParameterException("StorageConfig is required")
    s3 = sc.get("S3Config") or {}
    enc = s3.get("EncryptionConfig") or {}
    if not isinstance(s3, dict) or not isinstance(enc, dict):
        raise InvalidParameterException("S3Config is not valid")
    return S3ConfigInput(
        storage_type=sc.get("StorageType") or "",
        bucket=s3.get("BucketName") or "",
        prefix=s3.get("BucketPrefix") or "",
        encryption_type=enc.get("EncryptionType"),
        key_id=enc.get("KeyId"),
    )


def _int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameterException(f"{name} must be an integer") from None


def _rtype(query: Mapping[str, str]) -> str:
    value = query.get("resourceType")
    if not value:
        raise InvalidParameterException("ResourceType is required")
    return value


# ------------------------------------------------------------------ dispatch
def route(method: str, path: str) -> tuple[str, dict[str, str]]:
    for m, pattern, op in ROUTES:
        if m == method and (match := pattern.match(path)):
            return op, match.groupdict()
    raise UnknownOperation(f"{method} {path}")


def dispatch(
    connect: Any,
    caller: Caller,
    method: str,
    path: str,
    query: Mapping[str, str],
    body: Json,
) -> Json | None:
    """One Connect API call: wire in, wire out (None means an empty 200)."""
    op, p = route(method, path)
    iid = p.get("InstanceId", "")
    if op == "CreateInstance":
        spec = NewInstance(
            identity_management_type=body.get("IdentityManagementType") or "",
            inbound_calls=body.get("InboundCallsEnabled"),
            outbound_calls=body.get("OutboundCallsEnabled"),
            alias=body.get("InstanceAlias"),
            directory_id=body.get("DirectoryId"),
        )
        inst = connect.create_instance(caller, spec)
        return {"Id": inst.instance_id, "Arn": inst.arn}
    if op == "DescribeInstance":
        return {"Instance": instance_summary(connect.describe_instance(caller, iid))}
    if op == "ListInstances":
        rows, token = connect.list_instances(
            caller, _int(query, "maxResults"), query.get("nextToken")
        )
        return _drop_none(
            {"InstanceSummaryList": [instance_summary(i) for i in rows], "NextToken": token}
        )
    if op == "DeleteInstance":
        connect.delete_instance(caller, iid)
        return None
    if op == "AssociateStorage":
        rtype = body.get("ResourceType") or ""
        assoc = connect.associate_storage_config(caller, iid, rtype, _s3_config(body))
        return {"AssociationId": assoc}
    if op == "ListStorage":
        rows, token = connect.list_storage_configs(
            caller, iid, _rtype(query), _int(query, "maxResults"), query.get("nextToken")
        )
        return _drop_none({"StorageConfigs": [storage_config(c) for c in rows], "NextToken": token})
    if op == "DescStorage":
        cfg = connect.describe_storage_config(caller, iid, p["A"], _rtype(query))
        return {"StorageConfig": storage_config(cfg)}
    if op == "UpdStorage":
        connect.update_storage_config(caller, iid, p["A"], _rtype(query), _s3_config(body))
        return None
    if op == "DisStorage":
        connect.disassociate_storage_config(caller, iid, p["A"], _rtype(query))
        return None
    if op == "DescribeContact":
        return {"Contact": contact(connect.describe_contact(caller, iid, p["ContactId"]))}
    raise UnknownOperation(op)  # pragma: no cover - every route is handled above


# ------------------------------------------------------------------ aiohttp
def _response(status: int, body: Json | None, request_id: str, code: str | None = None):
    headers = {"x-amzn-RequestId": request_id}
    if code:
        headers["x-amzn-ErrorType"] = code
    text = json.dumps(body if body is not None else {})
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def error_response(code: str, message: str, status: int, request_id: str) -> web.Response:
    return _response(status, {"Message": message, "message": message}, request_id, code)


async def _read_body(request: web.Request, auth: Any) -> bytes:
    body = request.get("body")
    if body is not None:
        return body
    from s3sim.http.payload import Payload

    return await Payload(request, auth).read_all(BODY_LIMIT)


def handler(components: Any) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    connect = components.connect

    async def handle(request: web.Request) -> web.StreamResponse:
        auth = request["auth"]
        request_id = getattr(auth, "request_id", None) or str(uuid.uuid4())
        try:
            raw = await _read_body(request, auth)
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return error_response("SerializationException", "Malformed JSON", 400, request_id)
            if not isinstance(body, dict):
                return error_response(
                    "SerializationException", "Expected an object", 400, request_id
                )
            out = await asyncio.get_running_loop().run_in_executor(
                None,
                dispatch,
                connect,
                auth.caller,
                request.method,
                request.path,
                dict(request.query),
                body,
            )
            return _response(200, out, request_id)
        except ConnectError as e:
            return error_response(e.code, e.message, e.status, request_id)
        except UnknownOperation:
            return error_response("UnknownOperationException", "Unknown operation", 404, request_id)

    return handle


# ------------------------------------------------------------------ simulator views
def admin_routes(components: Any) -> list[web.RouteDef]:
    """GET /_s3sim/connect/instances[/<id>/items[/<ContactId>]] (no auth, JSON)."""
    connect = components.connect

    def _items(instance_id: str, contact_id: str | None) -> web.Response:
        try:
            items = connect.pipeline_items(instance_id, contact_id)
        except ConnectError as e:
            return web.json_response({"Error": e.code, "Message": e.message}, status=e.status)
        if contact_id is not None and not items:
            return web.json_response(
                {"Error": "ResourceNotFoundException", "Message": f"No items for {contact_id}"},
                status=404,
            )
        counts: dict[str, int] = {}
        for i in items:
            counts[i.status] = counts.get(i.status, 0) + 1
        out: Json = {"InstanceId": instance_id, "Counts": counts}
        if contact_id is not None:
            out["ContactId"] = contact_id
        out["Items"] = [item_view(i) for i in items]
        return web.json_response(out)

    async def items(request: web.Request) -> web.Response:
        return _items(request.match_info["instance_id"], None)

    async def contact_items(request: web.Request) -> web.Response:
        return _items(request.match_info["instance_id"], request.match_info["contact_id"])

    async def instances(request: web.Request) -> web.Response:
        rows = []
        for inst in connect.store.instances():
            counts = connect.store.status_counts(inst.instance_id)
            rows.append(
                {
                    "InstanceId": inst.instance_id,
                    "Alias": inst.alias,
                    "Account": inst.account,
                    "Counts": {s: counts[s] for s in STATUS_ORDER if s in counts},
                }
            )
        return web.json_response({"Instances": rows})

    base = "/_s3sim/connect/instances"
    return [
        web.get(base, instances),
        web.get(base + "/{instance_id}/items", items),
        web.get(base + "/{instance_id}/items/{contact_id}", contact_items),
    ]
