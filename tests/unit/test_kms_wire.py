"""The KMS/CloudTrail JSON adapters' pure dispatch, checked against botocore's shapes."""

import base64
import json

import botocore.session
import pytest

from kmscore import KMS, Caller
from kmscore.clock import FixedClock
from kmscore.errors import KMSError
from s3sim.http import cloudtrail_api, kms_api

ACCT = "111122223333"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT, access_key_id="AKIAADMIN")
SESSION = botocore.session.get_session()
KMS_MODEL = SESSION.get_service_model("kms")
CT_MODEL = SESSION.get_service_model("cloudtrail")


def conforms(value, shape, path="$"):
    """Assert `value` (JSON as sent on the wire) fits botocore's output shape."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert k in shape.members, f"{path}.{k} is not in {shape.name}"
            conforms(v, shape.members[k], f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), path
        for i, v in enumerate(value):
            conforms(v, shape.member, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), path
        for k, v in value.items():
            conforms(k, shape.key, path)
            conforms(v, shape.value, f"{path}.{k}")
    elif t == "string":
        assert isinstance(value, str), path
        if shape.enum:
            assert value in shape.enum, f"{path}={value!r} not in enum"
    elif t == "blob":
        base64.b64decode(value, validate=True)
    elif t == "timestamp":
        assert isinstance(value, int | float) and not isinstance(value, bool), path
    elif t == "boolean":
        assert isinstance(value, bool), path
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    else:
        raise AssertionError(f"unhandled type {t} at {path}")


@pytest.fixture
def kms(tmp_path):
    k = KMS(tmp_path, "us-east-1", FixedClock(), root_key=b"\x05" * 32)
    yield k
    k.close()


def call(kms, op, **params):
    out = kms_api.dispatch(kms, ADMIN, op, json.loads(json.dumps(params)))
    shape = KMS_MODEL.operation_model(op).output_shape
    if shape is None:
        assert out == {}
    else:
        conforms(out, shape)
    return out


def b64(b):
    return base64.b64encode(b).decode()


def test_every_operation_conforms(kms):
    key = call(kms, "CreateKey", Description="d", Tags=[{"TagKey": "a", "TagValue": "b"}])
    kid = key["KeyMetadata"]["KeyId"]
    assert key["KeyMetadata"]["KeyState"] == "Enabled"
    call(kms, "DescribeKey", KeyId=kid)
    call(kms, "ListKeys", Limit=1)
    call(kms, "UpdateKeyDescription", KeyId=kid, Description="e")
    call(kms, "CreateAlias", AliasName="alias/w", TargetKeyId=kid)
    call(kms, "ListAliases")
    enc = call(kms, "Encrypt", KeyId="alias/w", Plaintext=b64(b"hi"), EncryptionContext={"a": "b"})
    dec = call(kms, "Decrypt", CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert base64.b64decode(dec["Plaintext"]) == b"hi"
    other = call(kms, "CreateKey")["KeyMetadata"]["KeyId"]
    call(kms, "UpdateAlias", AliasName="alias/w", TargetKeyId=other)
    call(
        kms,
        "ReEncrypt",
        CiphertextBlob=enc["CiphertextBlob"],
        DestinationKeyId=other,
        SourceEncryptionContext={"a": "b"},
    )
    call(kms, "GenerateDataKey", KeyId=kid, KeySpec="AES_128")
    call(kms, "GenerateDataKey", KeyId=kid, NumberOfBytes=12)
    assert "Plaintext" not in call(kms, "GenerateDataKeyWithoutPlaintext", KeyId=kid)
    call(kms, "GenerateRandom", NumberOfBytes=16)
    g = call(
        kms,
        "CreateGrant",
        KeyId=kid,
        GranteePrincipal=f"arn:aws:iam::{ACCT}:role/r",
        RetiringPrincipal=ADMIN.arn,
        Operations=["Decrypt"],
        Name="n",
        Constraints={"EncryptionContextSubset": {"a": "b"}},
    )
    grants = call(kms, "ListGrants", KeyId=kid)["Grants"]
    assert grants[0]["Constraints"] == {"EncryptionContextSubset": {"a": "b"}}
    call(kms, "ListRetirableGrants", RetiringPrincipal=ADMIN.arn)
    call(kms, "RetireGrant", GrantToken=g["GrantToken"])
    g2 = call(kms, "CreateGrant", KeyId=kid, GranteePrincipal=ADMIN.arn, Operations=["Encrypt"])
    call(kms, "RevokeGrant", KeyId=kid, GrantId=g2["GrantId"])
    pol = call(kms, "GetKeyPolicy", KeyId=kid, PolicyName="default")["Policy"]
    call(kms, "PutKeyPolicy", KeyId=kid, PolicyName="default", Policy=pol)
    call(kms, "ListKeyPolicies", KeyId=kid)
    call(kms, "EnableKeyRotation", KeyId=kid, RotationPeriodInDays=180)
    st = call(kms, "GetKeyRotationStatus", KeyId=kid)
    assert st["RotationPeriodInDays"] == 180 and st["KeyRotationEnabled"] is True
    call(kms, "RotateKeyOnDemand", KeyId=kid)
    assert call(kms, "ListKeyRotations", KeyId=kid)["Rotations"][0]["RotationType"] == "ON_DEMAND"
    call(kms, "DisableKeyRotation", KeyId=kid)
    call(kms, "TagResource", KeyId=kid, Tags=[{"TagKey": "x", "TagValue": "y"}])
    call(kms, "UntagResource", KeyId=kid, TagKeys=["a"])
    assert call(kms, "ListResourceTags", KeyId=kid)["Tags"] == [{"TagKey": "x", "TagValue": "y"}]
    call(kms, "DisableKey", KeyId=kid)
    call(kms, "EnableKey", KeyId=kid)
    call(kms, "ScheduleKeyDeletion", KeyId=kid, PendingWindowInDays=7)
    call(kms, "CancelKeyDeletion", KeyId=kid)
    call(kms, "DeleteAlias", AliasName="alias/w")


def test_errors_and_unknown_operation(kms):
    with pytest.raises(kms_api.WireError) as e:
        kms_api.dispatch(kms, ADMIN, "Nope", {})
    assert e.value.code == "UnknownOperationException"
    with pytest.raises(KMSError) as e:
        kms_api.dispatch(kms, ADMIN, "DescribeKey", {})
    assert (e.value.code, e.value.status) == ("ValidationException", 400)
    with pytest.raises(KMSError) as e:
        kms_api.dispatch(kms, ADMIN, "Decrypt", {"CiphertextBlob": b64(b"junk" * 30)})
    assert (e.value.code, e.value.message) == ("InvalidCiphertextException", "")
    with pytest.raises(KMSError) as e:
        kms_api.dispatch(kms, ADMIN, "Encrypt", {"KeyId": 5, "Plaintext": "!!"})
    assert e.value.code == "ValidationException"


def test_lookup_events_conforms(kms):
    kid = call(kms, "CreateKey")["KeyMetadata"]["KeyId"]
    call(kms, "DescribeKey", KeyId=kid)
    out = cloudtrail_api.dispatch(
        kms,
        ADMIN,
        "LookupEvents",
        {
            "LookupAttributes": [
                {"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}
            ],
            "MaxResults": 1,
        },
    )
    conforms(out, CT_MODEL.operation_model("LookupEvents").output_shape)
    assert out["Events"][0]["EventName"] == "DescribeKey" and out["NextToken"]
    assert json.loads(out["Events"][0]["CloudTrailEvent"])["eventName"] == "DescribeKey"
    for bad in (
        {"MaxResults": 0},
        {"LookupAttributes": [{"AttributeKey": "X", "AttributeValue": "y"}]},
        {"NextToken": "zzz"},
        {"StartTime": 10, "EndTime": 5},
    ):
        with pytest.raises(cloudtrail_api.WireError):
            cloudtrail_api.dispatch(kms, ADMIN, "LookupEvents", bad)
