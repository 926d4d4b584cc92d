"""boto3's cloudtrail client: LookupEvents over the KMS audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def kms(server):
    return server.boto("kms", identity="admin")


@pytest.fixture
def trail(server):
    return server.boto("cloudtrail", identity="admin")


def test_every_call_is_an_event_newest_first(server, kms, trail):
    key = kms.create_key()["KeyMetadata"]
    dk = kms.generate_data_key(
        KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"purpose": "trail"}
    )
    alice = server.boto("kms", identity="alice")
    with pytest.raises(ClientError):
        alice.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"purpose": "trail"})
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    )["Events"]
    assert [e["EventName"] for e in events] == ["Decrypt", "GenerateDataKey", "CreateKey"]
    denied = json.loads(events[0]["CloudTrailEvent"])
    assert denied["errorCode"] == "AccessDeniedException"
    assert denied["userIdentity"]["arn"].endswith(":user/alice")
    assert events[0]["Username"] == "alice"
    gdk = json.loads(events[1]["CloudTrailEvent"])
    assert gdk["requestParameters"]["encryptionContext"] == {"purpose": "trail"}
    assert gdk["eventSource"] == "kms.amazonaws.com" and gdk["eventVersion"] == "1.11"
    assert gdk["resources"][0] == {
        "accountId": "111122223333",
        "type": "AWS::KMS::Key",
        "ARN": key["Arn"],
    }
    assert gdk["requestID"]
    assert events[1]["ReadOnly"] == "true" and events[2]["ReadOnly"] == "false"
    trail_text = (server.data_dir / "kms" / "audit.jsonl").read_bytes()
    assert dk["Plaintext"] not in trail_text


def test_filters_paging_and_time(kms, trail):
    key = kms.create_key()["KeyMetadata"]
    for _ in range(4):
        kms.describe_key(KeyId=key["KeyId"])
    attrs = [{"AttributeKey": "ResourceName", "AttributeValue": key["KeyId"]}]
    page = trail.lookup_events(LookupAttributes=attrs, MaxResults=3)
    assert len(page["Events"]) == 3 and page["NextToken"]
    rest = trail.lookup_events(LookupAttributes=attrs, MaxResults=3, NextToken=page["NextToken"])
    assert [e["EventName"] for e in rest["Events"]] == ["DescribeKey", "CreateKey"]
    by_name = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}]
    )["Events"]
    assert by_name and {e["EventName"] for e in by_name} == {"CreateKey"}
    future = datetime.now(UTC) + timedelta(days=3650)
    assert trail.lookup_events(StartTime=future, LookupAttributes=attrs)["Events"] == []
    pages = trail.get_paginator("lookup_events").paginate(
        LookupAttributes=attrs, PaginationConfig={"PageSize": 2}
    )
    assert sum(len(p["Events"]) for p in pages) == 5


def test_lookup_errors(trail):
    with pytest.raises(ClientError) as e:
        trail.lookup_events(NextToken="garbage")
    assert e.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as e:
        trail.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "a"},
                {"AttributeKey": "EventName", "AttributeValue": "b"},
            ]
        )
    assert e.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_other_account_sees_none_of_ours(server, kms):
    key = kms.create_key()["KeyMetadata"]
    other = server.boto("cloudtrail", identity="other")
    got = other.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    )["Events"]
    assert got == []


def test_s3_calls_show_invoked_by(server, kms, trail):
    key = kms.create_key()["KeyMetadata"]
    s3 = server.boto("s3", identity="admin")
    bucket = "trail-" + key["KeyId"][:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket, Key="obj", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"]
    )
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    )["Events"]
    gdk = [json.loads(e["CloudTrailEvent"]) for e in events if e["EventName"] == "GenerateDataKey"]
    assert gdk, [e["EventName"] for e in events]
    rec = gdk[0]
    assert rec["userIdentity"]["invokedBy"] == "s3.amazonaws.com"
    assert rec["requestParameters"]["encryptionContext"] == {
        "aws:s3:arn": f"arn:aws:s3:::{bucket}/obj"
    }


def test_lookup_needs_cloudtrail_permission(server):
    alice = server.boto("cloudtrail", identity="alice")
    with pytest.raises(ClientError) as e:
        alice.lookup_events()
    r = e.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException",
        400,
    )
