"""The KMS JSON adapter (awsJson1_1, X-Amz-Target "TrentService.<Op>").

`handler(components)` serves requests; `dispatch(kms, caller, op, params)` is the pure
translation between the wire (PascalCase JSON, base64 blobs, epoch-second dates) and
the kmscore.KMS facade (snake_case, bytes, datetimes).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web

from kmscore import KMS, Caller
from kmscore.audit import request_id_var
from kmscore.errors import KMSError, ValidationException
from kmscore.models import Alias, Grant, KeyMetadata, Page
from s3sim.http.awsjson import Json, WireError, json_handler

TARGET_PREFIX = "TrentService."


# ------------------------------------------------------------------ conversions
def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _blob(params: Json, name: str) -> bytes:
    raw = _req(params, name)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationException(f"{name} is not valid base64") from None


def _req(params: Json, name: str) -> Any:
    value = params.get(name)
    if value is None:
        field = name[0].lower() + name[1:]
        raise ValidationException(
            f"1 validation error detected: Value null at '{field}' failed to satisfy "
            "constraint: Member must not be null"
        )
    return value


def _drop_none(d: Json) -> Json:
    return {k: v for k, v in d.items() if v is not None}


def key_metadata(md: KeyMetadata) -> Json:
    return _drop_none(
        {
            "AWSAccountId": md.account,
            "KeyId": md.key_id,
            "Arn": md.arn,
            "CreationDate": _epoch(md.creation_date),
            "Enabled": md.enabled,
            "Description": md.description,
            "KeyUsage": md.key_usage,
            "KeyState": md.state,
            "DeletionDate": _epoch(md.deletion_date),
            "Origin": md.origin,
            "KeyManager": md.key_manager,
            "CustomerMasterKeySpec": md.key_spec,
            "KeySpec": md.key_spec,
            "EncryptionAlgorithms": list(md.encryption_algorithms),
            "MultiRegion": md.multi_region,
            "PendingDeletionWindowInDays": md.pending_deletion_window_days,
            "CurrentKeyMaterialId": md.current_key_material_id,
        }
    )


def grant_entry(g: Grant) -> Json:
    c = g.constraints
    constraints = None
    if c is not None and c.encryption_context_equals is not None:
        constraints = {"EncryptionContextEquals": dict(c.encryption_context_equals)}
    elif c is not None:
        constraints = {"EncryptionContextSubset": dict(c.encryption_context_subset or ())}
    return _drop_none(
        {
            "KeyId": g.key_arn,
            "GrantId": g.grant_id,
            "Name": g.name,
            "CreationDate": g.creation_date,
            "GranteePrincipal": g.grantee_principal,
            "RetiringPrincipal": g.retiring_principal,
            "IssuingAccount": g.issuing_account,
            "Operations": list(g.operations),
            "Constraints": constraints,
        }
    )


def alias_entry(a: Alias) -> Json:
    return _drop_none(
        {
            "AliasName": a.name,
            "AliasArn": a.arn,
            "TargetKeyId": a.target_key_id,
            "CreationDate": _epoch(a.creation_date),
            "LastUpdatedDate": _epoch(a.last_updated),
        }
    )


def paged(page: Page, field: str, convert: Callable[[Any], Any]) -> Json:
    out: Json = {field: [convert(i) for i in page.items], "Truncated": page.truncated}
    if page.next_marker:
        out["NextMarker"] = page.next_marker
    return out


def _list_args(p: Json) -> Json:
    return {"limit": p.get("Limit"), "marker": p.get("Marker")}


# ------------------------------------------------------------------ operations
def _create_key(kms: KMS, c: Caller, p: Json) -> Json:
    md = kms.create_key(
        c,
        description=p.get("Description", ""),
        policy=p.get("Policy"),
        key_usage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
        key_spec=p.get("KeySpec") or p.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT",
        tags=[(t.get("TagKey"), t.get("TagValue")) for t in p.get("Tags") or ()],
        bypass_policy_lockout_safety_check=bool(p.get("BypassPolicyLockoutSafetyCheck")),
        origin=p.get("Origin", "AWS_KMS"),
        multi_region=bool(p.get("MultiRegion")),
    )
    return {"KeyMetadata": key_metadata(md)}


def _data_key(kms: KMS, c: Caller, p: Json, plaintext: bool) -> Json:
    fn = kms.generate_data_key if plaintext else kms.generate_data_key_without_plaintext
    spec = p.get("KeySpec")
    n = p.get("NumberOfBytes")
    if spec is not None and n is not None:
        raise ValidationException("Please specify either number of bytes or key spec.")
    dk = fn(
        c,
        _req(p, "KeyId"),
        p.get("EncryptionContext"),
        key_spec=spec if (spec or n is not None) else "AES_256",
        number_of_bytes=n,
        grant_tokens=p.get("GrantTokens") or (),
    )
    out = {
        "CiphertextBlob": _b64(dk.ciphertext_blob),
        "KeyId": dk.key_arn,
        "KeyMaterialId": dk.key_material_id,
    }
    if dk.plaintext is not None:
        out["Plaintext"] = _b64(dk.plaintext)
    return out


def _decrypt(kms: KMS, c: Caller, p: Json) -> Json:
    d = kms.decrypt(
        c,
        _blob(p, "CiphertextBlob"),
        p.get("EncryptionContext"),
        key_id=p.get("KeyId"),
        grant_tokens=p.get("GrantTokens") or (),
    )
    return {
        "KeyId": d.key_arn,
        "Plaintext": _b64(d.plaintext),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "KeyMaterialId": d.key_material_id,
    }


def _encrypt(kms: KMS, c: Caller, p: Json) -> Json:
    e = kms.encrypt(
        c,
        _req(p, "KeyId"),
        _blob(p, "Plaintext"),
        p.get("EncryptionContext"),
        grant_tokens=p.get("GrantTokens") or (),
    )
    return {
        "CiphertextBlob": _b64(e.ciphertext_blob),
        "KeyId": e.key_arn,
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }


def _re_encrypt(kms: KMS, c: Caller, p: Json) -> Json:
    r = kms.re_encrypt(
        c,
        _blob(p, "CiphertextBlob"),
        _req(p, "DestinationKeyId"),
        source_context=p.get("SourceEncryptionContext"),
        destination_context=p.get("DestinationEncryptionContext"),
        source_key_id=p.get("SourceKeyId"),
        grant_tokens=p.get("GrantTokens") or (),
    )
    return {
        "CiphertextBlob": _b64(r.ciphertext_blob),
        "SourceKeyId": r.source_key_arn,
        "KeyId": r.key_arn,
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "SourceKeyMaterialId": r.source_key_material_id,
        "DestinationKeyMaterialId": r.destination_key_material_id,
    }


def _create_grant(kms: KMS, c: Caller, p: Json) -> Json:
    gid, token = kms.create_grant(
        c,
        _req(p, "KeyId"),
        _req(p, "GranteePrincipal"),
        _req(p, "Operations"),
        retiring_principal=p.get("RetiringPrincipal"),
        constraints=p.get("Constraints"),
        name=p.get("Name"),
        grant_tokens=p.get("GrantTokens") or (),
    )
    return {"GrantToken": token, "GrantId": gid}


def _schedule_deletion(kms: KMS, c: Caller, p: Json) -> Json:
    r = kms.schedule_key_deletion(c, _req(p, "KeyId"), p.get("PendingWindowInDays"))
    return {
        "KeyId": r.key_arn,
        "DeletionDate": _epoch(r.deletion_date),
        "KeyState": r.key_state,
        "PendingWindowInDays": r.pending_window_days,
    }


def _rotation_status(kms: KMS, c: Caller, p: Json) -> Json:
    s = kms.get_key_rotation_status(c, _req(p, "KeyId"))
    return _drop_none(
        {
            "KeyRotationEnabled": s.enabled,
            "KeyId": s.key_arn,
            "RotationPeriodInDays": s.rotation_period_days,
            "NextRotationDate": _epoch(s.next_rotation_date),
            "OnDemandRotationStartDate": _epoch(s.on_demand_rotation_start),
        }
    )


def _rotation_entry(r: Any) -> Json:
    return {
        "KeyId": r.key_id,
        "KeyMaterialId": r.key_material_id,
        "RotationDate": _epoch(r.rotation_date),
        "RotationType": r.rotation_type,
    }


def _none(_: Any) -> Json:
    return {}


Op = Callable[[KMS, Caller, Json], Json]

OPERATIONS: dict[str, Op] = {
    "CreateKey": _create_key,
    "DescribeKey": lambda k, c, p: {
        "KeyMetadata": key_metadata(k.describe_key(c, _req(p, "KeyId"), p.get("GrantTokens") or ()))
    },
    "ListKeys": lambda k, c, p: paged(
        k.list_keys(c, **_list_args(p)), "Keys", lambda r: {"KeyId": r[0], "KeyArn": r[1]}
    ),
    "UpdateKeyDescription": lambda k, c, p: _none(
        k.update_key_description(c, _req(p, "KeyId"), _req(p, "Description"))
    ),
    "EnableKey": lambda k, c, p: _none(k.enable_key(c, _req(p, "KeyId"))),
    "DisableKey": lambda k, c, p: _none(k.disable_key(c, _req(p, "KeyId"))),
    "ScheduleKeyDeletion": _schedule_deletion,
    "CancelKeyDeletion": lambda k, c, p: {"KeyId": k.cancel_key_deletion(c, _req(p, "KeyId"))},
    "CreateAlias": lambda k, c, p: _none(
        k.create_alias(c, _req(p, "AliasName"), _req(p, "TargetKeyId"))
    ),
    "UpdateAlias": lambda k, c, p: _none(
        k.update_alias(c, _req(p, "AliasName"), _req(p, "TargetKeyId"))
    ),
    "DeleteAlias": lambda k, c, p: _none(k.delete_alias(c, _req(p, "AliasName"))),
    "ListAliases": lambda k, c, p: paged(
        k.list_aliases(c, p.get("KeyId"), **_list_args(p)), "Aliases", alias_entry
    ),
    "Encrypt": _encrypt,
    "Decrypt": _decrypt,
    "ReEncrypt": _re_encrypt,
    "GenerateDataKey": lambda k, c, p: _data_key(k, c, p, True),
    "GenerateDataKeyWithoutPlaintext": lambda k, c, p: _data_key(k, c, p, False),
    "GenerateRandom": lambda k, c, p: {
        "Plaintext": _b64(k.generate_random(c, _req(p, "NumberOfBytes")))
    },
    "CreateGrant": _create_grant,
    "ListGrants": lambda k, c, p: paged(
        k.list_grants(
            c,
            _req(p, "KeyId"),
            grant_id=p.get("GrantId"),
            grantee_principal=p.get("GranteePrincipal"),
            **_list_args(p),
        ),
        "Grants",
        grant_entry,
    ),
    "ListRetirableGrants": lambda k, c, p: paged(
        k.list_retirable_grants(c, _req(p, "RetiringPrincipal"), **_list_args(p)),
        "Grants",
        grant_entry,
    ),
    "RetireGrant": lambda k, c, p: _none(
        k.retire_grant(c, p.get("GrantToken"), p.get("KeyId"), p.get("GrantId"))
    ),
    "RevokeGrant": lambda k, c, p: _none(k.revoke_grant(c, _req(p, "KeyId"), _req(p, "GrantId"))),
    "GetKeyPolicy": lambda k, c, p: {
        "Policy": k.get_key_policy(c, _req(p, "KeyId"), p.get("PolicyName")),
        "PolicyName": p.get("PolicyName") or "default",
    },
    "PutKeyPolicy": lambda k, c, p: _none(
        k.put_key_policy(
            c,
            _req(p, "KeyId"),
            _req(p, "Policy"),
            p.get("PolicyName"),
            bool(p.get("BypassPolicyLockoutSafetyCheck")),
        )
    ),
    "ListKeyPolicies": lambda k, c, p: paged(
        k.list_key_policies(c, _req(p, "KeyId"), **_list_args(p)), "PolicyNames", str
    ),
    "EnableKeyRotation": lambda k, c, p: _none(
        k.enable_key_rotation(c, _req(p, "KeyId"), p.get("RotationPeriodInDays"))
    ),
    "DisableKeyRotation": lambda k, c, p: _none(k.disable_key_rotation(c, _req(p, "KeyId"))),
    "GetKeyRotationStatus": _rotation_status,
    "RotateKeyOnDemand": lambda k, c, p: {"KeyId": k.rotate_key_on_demand(c, _req(p, "KeyId"))},
    "ListKeyRotations": lambda k, c, p: paged(
        k.list_key_rotations(c, _req(p, "KeyId"), **_list_args(p)), "Rotations", _rotation_entry
    ),
    "TagResource": lambda k, c, p: _none(
        k.tag_resource(
            c, _req(p, "KeyId"), [(t.get("TagKey"), t.get("TagValue")) for t in _req(p, "Tags")]
        )
    ),
    "UntagResource": lambda k, c, p: _none(
        k.untag_resource(c, _req(p, "KeyId"), _req(p, "TagKeys"))
    ),
    "ListResourceTags": lambda k, c, p: paged(
        k.list_resource_tags(c, _req(p, "KeyId"), **_list_args(p)),
        "Tags",
        lambda t: {"TagKey": t[0], "TagValue": t[1]},
    ),
}


def dispatch(kms: KMS, caller: Caller, op: str, params: Json) -> Json:
    """Run one KMS operation from wire-shaped params; returns the wire-shaped response."""
    fn = OPERATIONS.get(op)
    if fn is None:
        raise WireError("UnknownOperationException", "")
    if not isinstance(params, dict):
        raise WireError("SerializationException", "Request body must be a JSON object")
    try:
        return fn(kms, caller, params)
    except (AttributeError, TypeError) as e:  # wrong JSON types from the client
        raise ValidationException(f"Invalid request: {e}") from None


# ------------------------------------------------------------------ HTTP
# Operations that change no key state: without fsync they run on the event loop (their
# audit record is one write to the OS; a thread hand-off would cost more than the call).
QUICK = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
        "DescribeKey",
        "ListKeys",
        "ListAliases",
        "ListGrants",
        "ListRetirableGrants",
        "GetKeyPolicy",
        "ListKeyPolicies",
        "GetKeyRotationStatus",
        "ListKeyRotations",
        "ListResourceTags",
    }
)


def handler(components: Any) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    kms: KMS = components.kms
    return json_handler(
        TARGET_PREFIX,
        partial(dispatch, kms),
        (KMSError,),
        request_id_var=request_id_var,
        inline=lambda op: not kms.fsync and op in QUICK,
    )
