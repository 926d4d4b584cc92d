"""boto3's kms client against the real server: keys, crypto, aliases, errors, pagination."""

from __future__ import annotations

import json
import os

import pytest
from botocore.exceptions import ClientError

ACCT = "111122223333"


def err(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


@pytest.fixture
def kms(server):
    return server.boto("kms", identity="admin")


@pytest.fixture
def key(kms):
    return kms.create_key(Description="e2e")["KeyMetadata"]


def test_create_describe_update(kms, key):
    assert key["Arn"].startswith(f"arn:aws:kms:us-east-1:{ACCT}:key/")
    assert (key["KeyState"], key["KeyManager"], key["KeySpec"]) == (
        "Enabled",
        "CUSTOMER",
        "SYMMETRIC_DEFAULT",
    )
    kms.update_key_description(KeyId=key["KeyId"], Description="changed")
    md = kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]
    assert md["Description"] == "changed" and md["KeyId"] == key["KeyId"]


def test_encrypt_decrypt_context(kms, key):
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext={"ab": "c"})
    assert (
        enc["CiphertextBlob"]
        != kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext={"ab": "c"})[
            "CiphertextBlob"
        ]
    )
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"ab": "c"})
    assert dec["Plaintext"] == b"secret" and dec["KeyId"] == key["Arn"]
    assert dec["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    for ctx in ({"a": "bc"}, {}, {"ab": "C"}):
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
        assert err(e) == ("InvalidCiphertextException", 400, "")


def test_garbage_and_oversize(kms, key):
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=os.urandom(200))
    assert err(e) == ("InvalidCiphertextException", 400, "")
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    assert err(e)[:2] == ("ValidationException", 400)


def test_incorrect_key(kms, key):
    other = kms.create_key()["KeyMetadata"]
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=other["KeyId"])
    assert err(e)[:2] == ("IncorrectKeyException", 400)


def test_data_keys_and_random(kms, key):
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"k": "v"})
    assert len(dk["Plaintext"]) == 32 and dk["KeyId"] == key["Arn"]
    back = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert back["Plaintext"] == dk["Plaintext"]
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)["Plaintext"]) == 64
    wp = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_128")
    assert "Plaintext" not in wp
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 16
    assert len(kms.generate_random(NumberOfBytes=32)["Plaintext"]) == 32
    with pytest.raises(ClientError) as e:
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", NumberOfBytes=32)
    assert err(e)[:2] == ("ValidationException", 400)


def test_re_encrypt(kms, key):
    dst = kms.create_key()["KeyMetadata"]
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"move me", EncryptionContext={"a": "1"})
    r = kms.re_encrypt(
        CiphertextBlob=enc["CiphertextBlob"],
        SourceEncryptionContext={"a": "1"},
        DestinationKeyId=dst["KeyId"],
        DestinationEncryptionContext={"b": "2"},
    )
    assert (r["SourceKeyId"], r["KeyId"]) == (key["Arn"], dst["Arn"])
    dec = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"b": "2"})
    assert dec["Plaintext"] == b"move me"


def test_not_found_errors(kms):
    for key_id in ("nope", "11111111-2222-4333-8444-555555555555", "alias/does-not-exist"):
        with pytest.raises(ClientError) as e:
            kms.describe_key(KeyId=key_id)
        assert err(e)[:2] == ("NotFoundException", 400)


def test_disable_enable(kms, key):
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    kms.disable_key(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert err(e) == ("DisabledException", 400, f"{key['Arn']} is disabled.")
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == b"x"


def test_aliases(kms, key):
    name = "alias/e2e-" + os.urandom(4).hex()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert err(e)[:2] == ("AlreadyExistsException", 400)
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=key["KeyId"])
    assert err(e)[:2] == ("InvalidAliasNameException", 400)
    alias_arn = f"arn:aws:kms:us-east-1:{ACCT}:{name}"
    enc = kms.encrypt(KeyId=alias_arn, Plaintext=b"via alias")
    assert (
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=name)["Plaintext"] == b"via alias"
    )
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in listed] == [name]
    other = kms.create_key()["KeyMetadata"]
    kms.update_alias(AliasName=name, TargetKeyId=other["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other["KeyId"]
    kms.delete_alias(AliasName=name)
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=name)
    assert err(e)[:2] == ("NotFoundException", 400)


def test_pagination(kms):
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)}
    first = kms.list_keys(Limit=2)
    assert first["Truncated"] is True and len(first["Keys"]) == 2
    pages = kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2})
    seen = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert made <= set(seen) and len(seen) == len(set(seen))
    with pytest.raises(ClientError) as e:
        kms.list_keys(Marker="not-a-marker")
    assert err(e)[:2] == ("InvalidMarkerException", 400)


def test_tags_and_policies(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "team", "TagValue": "x"}])
    tags = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
    assert tags == [{"TagKey": "team", "TagValue": "x"}]
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == []
    with pytest.raises(ClientError) as e:
        kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "aws:x", "TagValue": "y"}])
    assert err(e)[:2] == ("TagException", 400)
    assert kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    assert json.loads(policy)["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCT}:root"}
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="{not json")
    assert err(e)[:2] == ("MalformedPolicyDocumentException", 400)
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == policy


def test_request_id_matches_audit_record(server, kms, key):
    rid = kms.describe_key(KeyId=key["KeyId"])["ResponseMetadata"]["RequestId"]
    trail = server.boto("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["KeyId"]}]
    )["Events"]
    assert rid and json.loads(events[0]["CloudTrailEvent"])["requestID"] == rid
