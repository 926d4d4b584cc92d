"""Audit records: CloudTrail shape, one per call (allowed or denied), no plaintext; lookup."""

import base64
import json

import pytest

from kmscore import KMS, Caller
from kmscore import errors as E
from kmscore.audit import InvalidLookupAttributesException, InvalidNextTokenException
from kmscore.clock import FixedClock

ACCT, OTHER = "111122223333", "444455556666"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT, access_key_id="AKIAADMIN")
ALICE = Caller(
    arn=f"arn:aws:iam::{ACCT}:user/alice",
    account=ACCT,
    iam_actions=("s3:*",),
    access_key_id="AKIAALICE",
)
STRANGER = Caller(arn=f"arn:aws:iam::{OTHER}:root", account=OTHER)


@pytest.fixture
def clock():
    return FixedClock()


@pytest.fixture
def kms(tmp_path, clock):
    k = KMS(tmp_path, "us-east-1", clock, root_key=b"\x04" * 32)
    yield k
    k.close()


def records(kms):
    return [json.loads(line) for line in kms.audit.path.read_text().splitlines()]


def test_one_record_per_call_with_cloudtrail_shape(kms):
    key = kms.create_key(ADMIN)
    dk = kms.generate_data_key(ADMIN, key.key_id, {"purpose": "audit"})
    with pytest.raises(E.AccessDeniedException):
        kms.decrypt(ALICE, dk.ciphertext_blob, {"purpose": "audit"})
    recs = records(kms)
    assert [r["eventName"] for r in recs] == ["CreateKey", "GenerateDataKey", "Decrypt"]
    gdk = recs[1]
    for field in (
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "resources",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
    ):
        assert field in gdk, field
    assert gdk["eventVersion"] == "1.11" and gdk["eventSource"] == "kms.amazonaws.com"
    assert gdk["requestParameters"]["encryptionContext"] == {"purpose": "audit"}
    assert gdk["requestParameters"]["keyId"] == key.key_id
    assert gdk["resources"] == [{"accountId": ACCT, "type": "AWS::KMS::Key", "ARN": key.arn}]
    assert gdk["userIdentity"]["type"] == "Root" and gdk["readOnly"] is True
    assert (gdk["eventType"], gdk["eventCategory"], gdk["managementEvent"]) == (
        "AwsApiCall",
        "Management",
        True,
    )
    denied = recs[2]
    assert denied["errorCode"] == "AccessDeniedException"
    assert denied["userIdentity"]["type"] == "IAMUser"
    assert denied["userIdentity"]["userName"] == "alice"
    assert denied["resources"][0]["ARN"] == key.arn


def test_no_plaintext_or_data_key_in_trail(kms):
    key = kms.create_key(ADMIN)
    secret = b"TOP-SECRET-PLAINTEXT-1234"
    e = kms.encrypt(ADMIN, key.key_id, secret)
    d = kms.decrypt(ADMIN, e.ciphertext_blob)
    dk = kms.generate_data_key(ADMIN, key.key_id)
    text = kms.audit.path.read_bytes()
    for s in (secret, dk.plaintext):
        assert s not in text
        assert base64.b64encode(s) not in text
        assert s.hex().encode() not in text
    assert d.plaintext == secret


def test_via_service_shows_invoked_by(kms):
    arn = kms.aws_managed_key(ACCT)
    kms.generate_data_key(
        ALICE.via("s3.us-east-1.amazonaws.com", "s3.amazonaws.com"),
        arn,
        {"aws:s3:arn": "arn:aws:s3:::b/k"},
    )
    rec = records(kms)[-1]
    assert rec["userIdentity"]["invokedBy"] == "s3.amazonaws.com"
    assert rec["sourceIPAddress"] == "s3.amazonaws.com"


def test_lookup_newest_first_with_paging_and_filters(kms, clock):
    key = kms.create_key(ADMIN)
    for _ in range(5):
        clock.advance(60)
        kms.describe_key(ADMIN, key.key_id)
    events, token = kms.lookup_events(ACCT, [("EventName", "DescribeKey")], max_results=3)
    assert len(events) == 3 and token
    times = [e["eventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    more, token2 = kms.lookup_events(
        ACCT, [("EventName", "DescribeKey")], max_results=3, next_token=token
    )
    assert len(more) == 2 and token2 is None
    assert {e["eventID"] for e in events}.isdisjoint(e["eventID"] for e in more)
    assert len(kms.lookup_events(ACCT, [("ResourceName", key.arn)])[0]) == 6
    assert len(kms.lookup_events(ACCT, [("ReadOnly", "false")])[0]) == 1
    assert len(kms.lookup_events(ACCT, [("Username", "root")])[0]) == 6
    assert kms.lookup_events(OTHER)[0] == []


def test_lookup_time_window(kms, clock):
    key = kms.create_key(ADMIN)
    t0 = clock.now()
    clock.advance(3600)
    kms.describe_key(ADMIN, key.key_id)
    got, _ = kms.lookup_events(ACCT, start=t0, end=t0)
    assert [e["eventName"] for e in got] == ["CreateKey"]
    got, _ = kms.lookup_events(ACCT, start=clock.now())
    assert [e["eventName"] for e in got] == ["DescribeKey"]


def test_lookup_errors(kms):
    with pytest.raises(InvalidLookupAttributesException):
        kms.lookup_events(ACCT, [("Bogus", "x")])
    with pytest.raises(InvalidLookupAttributesException):
        kms.lookup_events(ACCT, [("EventName", "a"), ("EventName", "b")])
    with pytest.raises(InvalidNextTokenException):
        kms.lookup_events(ACCT, next_token="nonsense")


def test_lookup_reads_across_blocks(kms, tmp_path):
    from kmscore.audit import _reverse_records

    key = kms.create_key(ADMIN)
    for _ in range(40):
        kms.describe_key(ADMIN, key.key_id)
    size = kms.audit.path.stat().st_size
    small = [r["eventID"] for _, r in _reverse_records(kms.audit.path, size, block=97)]
    big = [r["eventID"] for _, r in _reverse_records(kms.audit.path, size)]
    assert small == big and len(big) == 41


def test_validation_errors_are_audited_too(kms):
    key = kms.create_key(ADMIN)
    with pytest.raises(E.ValidationException):
        kms.encrypt(ADMIN, key.key_id, b"x", {"a": 1})
    rec = records(kms)[-1]
    assert (rec["eventName"], rec["errorCode"]) == ("Encrypt", "ValidationException")


def test_lookup_skips_a_record_another_process_is_still_appending(kms):
    kms.create_key(ADMIN)
    with open(kms.audit.path, "ab") as f:
        f.write(b'{"eventVersion":"1.08","eventTi')
    events, token = kms.lookup_events(ACCT)
    assert [e["eventName"] for e in events] == ["CreateKey"] and token is None
