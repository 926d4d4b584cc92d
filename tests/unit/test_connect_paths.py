from datetime import UTC, datetime

import pytest

from s3sim.connect.errors import ERROR_TABLE
from s3sim.connect.paths import (
    BadStagingKey,
    backoff_seconds,
    contact_arn,
    instance_arn,
    parse_staging_key,
    service_role_arn,
    target_key,
)

IID = "0f6a1d6e-3a8b-4c1e-9a6e-5d4c3b2a1f00"


def test_parse_staging_key():
    sk = parse_staging_key(f"{IID}/CALL_RECORDINGS/abc-123.wav")
    assert (sk.instance_id, sk.resource_type, sk.contact_id, sk.ext) == (
        IID,
        "CALL_RECORDINGS",
        "abc-123",
        "wav",
    )
    assert parse_staging_key(f"{IID}/SCREEN_RECORDINGS/c.mp4").ext == "mp4"
    assert parse_staging_key(f"{IID}/CHAT_TRANSCRIPTS/c.json").ext == "json"


@pytest.mark.parametrize(
    "key,why",
    [
        ("nope.wav", "must be"),
        (f"{IID}/CALL_RECORDINGS/a/b.wav", "must be"),
        ("not-a-uuid/CALL_RECORDINGS/c.wav", "not an instance id"),
        (f"{IID}/AGENT_EVENTS/c.wav", "Resource type"),
        (f"{IID}/CALL_RECORDINGS/c.mp3", "Extension"),
        (f"{IID}/CHAT_TRANSCRIPTS/c.wav", "Extension"),
        (f"{IID}/CALL_RECORDINGS/wav", "must be <ContactId>.<ext>"),
        (f"{IID}/CALL_RECORDINGS/..wav", "must be <ContactId>.<ext>"),
    ],
)
def test_parse_staging_key_rejects(key, why):
    with pytest.raises(BadStagingKey, match=why):
        parse_staging_key(key)


def test_target_key_format():
    t = datetime(2026, 4, 8, 15, 0, 59, tzinfo=UTC)
    assert (
        target_key("connect/kights/CallRecordings", "c1", "wav", t)
        == "connect/kights/CallRecordings/2026/04/08/c1_20260408T15:00_UTC.wav"
    )
    assert target_key("/p/", "c1", "json", t) == "p/2026/04/08/c1_20260408T15:00_UTC.json"
    assert target_key("", "c1", "wav", t) == "2026/04/08/c1_20260408T15:00_UTC.wav"


def test_target_key_uses_utc():
    from datetime import timedelta, timezone

    t = datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert target_key("p", "c", "wav", t) == "p/2025/12/31/c_20251231T22:30_UTC.wav"


def test_backoff_is_exponential_and_capped():
    assert [backoff_seconds(n, 0.5, 3.0) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_seconds(1000, 1.0, 300.0) == 300.0


def test_arns():
    arn = instance_arn("us-east-1", "111122223333", IID)
    assert arn == f"arn:aws:connect:us-east-1:111122223333:instance/{IID}"
    assert contact_arn(arn, "c") == f"{arn}/contact/c"
    assert service_role_arn("111122223333", "X1").endswith(
        ":role/aws-service-role/connect.amazonaws.com/AWSServiceRoleForAmazonConnect_X1"
    )


def test_error_table():
    assert ERROR_TABLE["ResourceNotFoundException"] == ("ResourceNotFoundException", 404)
    assert ERROR_TABLE["ResourceConflictException"] == ("ResourceConflictException", 409)
    assert ERROR_TABLE["InvalidParameterException"] == ("InvalidParameterException", 400)
    assert ERROR_TABLE["InvalidRequestException"] == ("InvalidRequestException", 400)
