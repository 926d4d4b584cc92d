"""Deletion windows, rotation and persistence across a restart, on simulated time."""

from __future__ import annotations

import stat

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

DAY = 86400


def code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def kms(server):
    return server.boto("kms", identity="admin")


def test_schedule_cancel_and_destroy(server, kms):
    key = kms.create_key()["KeyMetadata"]
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"doomed")
    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=6)
    assert code(e) == ("ValidationException", 400)
    r = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert (r["KeyState"], r["PendingWindowInDays"]) == ("PendingDeletion", 7)
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert code(e) == ("KMSInvalidStateException", 400)
    assert e.value.response["Error"]["Message"] == f"{key['Arn']} is pending deletion."
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    server.advance_clock(7 * DAY + 60)
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key["KeyId"])
    assert code(e) == ("NotFoundException", 400)
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert code(e) == ("NotFoundException", 400)


def test_rotation(server, kms):
    key = kms.create_key()["KeyMetadata"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"old")
    raw = server.boto("kms", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as e:  # the server checks bounds, not only botocore
        raw.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=30)
    assert code(e) == ("ValidationException", 400)
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    st = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert st["KeyRotationEnabled"] and st["RotationPeriodInDays"] == 90
    server.advance_clock(90 * DAY + 60)
    rotations = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["AUTOMATIC"]
    for _ in range(10):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as e:
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert code(e) == ("LimitExceededException", 400)
    assert kms.decrypt(CiphertextBlob=old["CiphertextBlob"])["Plaintext"] == b"old"
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"n")["CiphertextBlob"]
    newest = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"][-1]
    assert newest["RotationType"] == "ON_DEMAND"
    assert kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == newest["KeyMaterialId"]


def test_state_survives_restart(server):
    kms = server.boto("kms", identity="admin")
    key = kms.create_key(Description="durable", Tags=[{"TagKey": "k", "TagValue": "v"}])[
        "KeyMetadata"
    ]
    kms.create_alias(AliasName="alias/durable-" + key["KeyId"][:8], TargetKeyId=key["KeyId"])
    g = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal="arn:aws:iam::111122223333:user/alice",
        Operations=["Decrypt"],
    )
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept", EncryptionContext={"a": "b"})
    kms.disable_key(KeyId=key["KeyId"])
    server.restart()
    kms = server.boto("kms", identity="admin")
    md = kms.describe_key(KeyId="alias/durable-" + key["KeyId"][:8])["KeyMetadata"]
    assert (md["KeyId"], md["Description"], md["KeyState"]) == (key["KeyId"], "durable", "Disabled")
    kms.enable_key(KeyId=key["KeyId"])
    out = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert out["Plaintext"] == b"kept"
    assert [x["GrantId"] for x in kms.list_grants(KeyId=key["KeyId"])["Grants"]] == [g["GrantId"]]
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "k", "TagValue": "v"}]
    trail = server.boto("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    )["Events"]
    names = [e["EventName"] for e in trail]
    assert names[-1] == "CreateKey" and "DisableKey" in names and names[0] == "ListResourceTags"


def test_root_key_and_no_plaintext_on_disk(server):
    kms = server.boto("kms", identity="admin")
    key = kms.create_key()["KeyMetadata"]
    secret = b"PLAINTEXT-THAT-MUST-NOT-LEAK-0451"
    kms.encrypt(KeyId=key["KeyId"], Plaintext=secret)
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    root = server.data_dir / "kms" / "root.key"
    if root.exists():
        assert stat.S_IMODE(root.stat().st_mode) == 0o600
    for path in (server.data_dir / "kms").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret not in data and dk["Plaintext"] not in data, path
