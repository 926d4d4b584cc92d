"""The two-phase flow through the real server with boto3's connect, s3 and kms clients."""

from __future__ import annotations

import os
import uuid

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.awserr import err
from tests.e2e.connect_helpers import (
    configured_instance,
    items,
    new_instance,
    s3_config,
    staging_key,
    statuses,
    wait_until,
)


@pytest.fixture
def clients(server):
    return (
        server.boto("connect", identity="admin"),
        server.boto("s3", identity="admin"),
        server.boto("kms", identity="admin"),
    )


def delivered(server, connect, instance_id, contact_id):
    def check():
        c = connect.describe_contact(InstanceId=instance_id, ContactId=contact_id)["Contact"]
        return c["Recordings"] or None

    return wait_until(check)[0]


def test_two_instances_two_keys_own_prefixes(server, clients, tmp_path):
    connect, s3, kms = clients
    bucket = "rec-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=bucket)
    setup = []
    for name in ("a", "b"):
        inst = new_instance(connect)
        key = kms.create_key()["KeyMetadata"]["Arn"]
        connect.associate_instance_storage_config(
            InstanceId=inst["Id"],
            ResourceType="CALL_RECORDINGS",
            StorageConfig=s3_config(bucket, f"connect/{name}/CallRecordings", key),
        )
        grants = kms.list_grants(KeyId=key)["Grants"]
        assert [g["GranteePrincipal"] for g in grants] == [inst["ServiceRole"]]
        assert {"GenerateDataKey", "Decrypt"} <= set(grants[0]["Operations"])
        setup.append((name, inst, key))
    payloads = {}
    for name, inst, _key in setup:
        contact = str(uuid.uuid4())
        data = os.urandom(70_000) + name.encode()
        payloads[name] = (contact, data)
        s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], contact), Body=data)
    for name, inst, key in setup:
        contact, data = payloads[name]
        rec = delivered(server, connect, inst["Id"], contact)
        assert rec["Status"] == "AVAILABLE" and rec["StorageType"] == "S3"
        got_bucket, got_key = rec["Location"].split("/", 1)
        assert got_bucket == bucket
        assert got_key.startswith(f"connect/{name}/CallRecordings/")
        assert got_key.endswith("_UTC.wav") and f"/{contact}_" in got_key
        obj = s3.get_object(Bucket=bucket, Key=got_key)
        assert obj["Body"].read() == data
        assert obj["ServerSideEncryption"] == "aws:kms" and obj["SSEKMSKeyId"] == key
    # multipart ingest (upload_file) for a chat transcript of instance a
    _, inst_a, key_a = setup[0]
    connect.associate_instance_storage_config(
        InstanceId=inst_a["Id"],
        ResourceType="CHAT_TRANSCRIPTS",
        StorageConfig=s3_config(bucket, "connect/a/ChatTranscripts", key_a),
    )
    big = tmp_path / "t.json"
    big.write_bytes(b'{"Transcript": "' + b"x" * (12 * 1024 * 1024) + b'"}')
    chat = str(uuid.uuid4())
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(
        str(big), "connect-staging", staging_key(inst_a["Id"], chat, "CHAT_TRANSCRIPTS"), Config=cfg
    )
    rec = delivered(server, connect, inst_a["Id"], chat)
    body = s3.get_object(Bucket=bucket, Key=rec["Location"].split("/", 1)[1])["Body"].read()
    assert body == big.read_bytes()
    contact = connect.describe_contact(InstanceId=inst_a["Id"], ContactId=chat)["Contact"]
    assert contact["Channel"] == "CHAT"


def test_audit_shows_connect_and_service_role(server, clients):
    connect, s3, kms = clients
    ct = server.boto("cloudtrail", identity="admin")
    inst, bucket, key, _ = configured_instance(connect, s3, kms, "p", "aud")
    contact = str(uuid.uuid4())
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], contact), Body=b"abc")
    delivered(server, connect, inst["Id"], contact)
    events = ct.lookup_events(MaxResults=50)["Events"]
    import json

    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    by_connect = [
        r
        for r in records
        if r["eventName"] == "GenerateDataKey"
        and r["userIdentity"].get("invokedBy") == "connect.amazonaws.com"
    ]
    assert any(
        (r.get("requestParameters") or {})
        .get("encryptionContext", {})
        .get("aws:connect:instanceArn")
        == inst["Arn"]
        for r in by_connect
    )
    by_role = [
        r
        for r in records
        if r["eventName"] == "GenerateDataKey"
        and r["userIdentity"].get("arn") == inst["ServiceRole"]
    ]
    assert by_role, "delivery's GenerateDataKey is made by the instance's service role"
    assert any(r["eventName"] == "CreateGrant" for r in records)


def test_staging_bucket_is_internal(server, clients):
    connect, s3, _kms = clients
    inst = new_instance(connect)
    key = staging_key(inst["Id"], "c1")
    s3.put_object(Bucket="connect-staging", Key=key, Body=b"secret")
    for call in (
        lambda: s3.get_object(Bucket="connect-staging", Key=key),
        lambda: s3.list_objects_v2(Bucket="connect-staging"),
        lambda: s3.copy_object(
            Bucket="connect-staging",
            Key=key + "2",
            CopySource={"Bucket": "connect-staging", "Key": key},
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert err(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket="connect-staging", Key=f"{inst['Id']}/CALL_RECORDINGS/c.mp3", Body=b"x"
        )
    assert err(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="connect-staging", Key="not/a/key.wav", Body=b"x")
    assert err(exc) == ("InvalidArgument", 400)
    other = server.boto("s3", identity="other")
    with pytest.raises(ClientError) as exc:
        other.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], "c2"), Body=b"x")
    assert err(exc) == ("AccessDenied", 403)
    assert set(statuses(server, inst["Id"])) == {"c1"}


def test_waiting_for_config_then_delivered(server, clients):
    connect, s3, kms = clients
    inst = new_instance(connect)
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], "w1"), Body=b"wait")
    wait_until(lambda: statuses(server, inst["Id"]).get("w1") == "WAITING_FOR_CONFIG")
    bucket = "wait-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=bucket)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    connect.associate_instance_storage_config(
        InstanceId=inst["Id"],
        ResourceType="CALL_RECORDINGS",
        StorageConfig=s3_config(bucket, "p", key),
    )
    rec = delivered(server, connect, inst["Id"], "w1")
    assert (
        s3.get_object(Bucket=bucket, Key=rec["Location"].split("/", 1)[1])["Body"].read() == b"wait"
    )


def test_revoked_grant_stops_delivery_without_loss_and_regrant_resumes(server, clients):
    connect, s3, kms = clients
    inst, bucket, key, assoc = configured_instance(connect, s3, kms, "p", "rev")
    (grant,) = kms.list_grants(KeyId=key)["Grants"]
    kms.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    contacts = [f"r{n}" for n in range(5)]
    for c in contacts:
        s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], c), Body=c.encode())

    def all_failed():
        its = items(server, inst["Id"])
        return len(its) == 5 and all(i["Status"] == "FAILED" for i in its) and its

    its = wait_until(all_failed)
    assert {i["LastError"]["Code"] for i in its} == {"AccessDeniedException"}
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    connect.update_instance_storage_config(
        InstanceId=inst["Id"],
        AssociationId=assoc,
        ResourceType="CALL_RECORDINGS",
        StorageConfig=s3_config(bucket, "p", key),
    )
    assert len(kms.list_grants(KeyId=key)["Grants"]) == 1
    server.advance_clock(600)  # past any backoff
    wait_until(lambda: set(statuses(server, inst["Id"]).values()) == {"DELIVERED"})
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert len(listed) == 5
    for obj in listed:
        contact = obj["Key"].rsplit("/", 1)[1].split("_", 1)[0]
        assert s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read() == contact.encode()


def test_disabled_key_failed_then_enabled(server, clients):
    connect, s3, kms = clients
    inst, bucket, key, _ = configured_instance(connect, s3, kms, "p", "dis")
    kms.disable_key(KeyId=key)
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], "d1"), Body=b"d")
    it = wait_until(lambda: [i for i in items(server, inst["Id"]) if i["Status"] == "FAILED"])[0]
    assert it["LastError"]["Code"] == "DisabledException" and it["Attempts"] >= 1
    kms.enable_key(KeyId=key)
    server.advance_clock(600)
    wait_until(lambda: statuses(server, inst["Id"])["d1"] == "DELIVERED")


def test_association_errors(server, clients):
    connect, s3, kms = clients
    inst = new_instance(connect)
    bucket = "err-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=bucket)
    key = kms.create_key()["KeyMetadata"]
    cases = [
        (s3_config(bucket, "p", key["KeyId"]), ("InvalidParameterException", 400)),
        (
            s3_config("no-such-bucket-" + os.urandom(3).hex(), "p", key["Arn"]),
            ("InvalidParameterException", 400),
        ),
    ]
    for config, expected in cases:
        with pytest.raises(ClientError) as exc:
            connect.associate_instance_storage_config(
                InstanceId=inst["Id"], ResourceType="CALL_RECORDINGS", StorageConfig=config
            )
        assert err(exc) == expected
    with pytest.raises(ClientError) as exc:
        connect.describe_instance(InstanceId=str(uuid.uuid4()))
    assert err(exc) == ("ResourceNotFoundException", 404)
    connect.associate_instance_storage_config(
        InstanceId=inst["Id"],
        ResourceType="CALL_RECORDINGS",
        StorageConfig=s3_config(bucket, "p", key["Arn"]),
    )
    with pytest.raises(ClientError) as exc:
        connect.associate_instance_storage_config(
            InstanceId=inst["Id"],
            ResourceType="CALL_RECORDINGS",
            StorageConfig=s3_config(bucket, "p", key["Arn"]),
        )
    assert err(exc) == ("ResourceConflictException", 409)
    (assoc,) = connect.list_instance_storage_configs(
        InstanceId=inst["Id"], ResourceType="CALL_RECORDINGS"
    )["StorageConfigs"]
    connect.disassociate_instance_storage_config(
        InstanceId=inst["Id"], AssociationId=assoc["AssociationId"], ResourceType="CALL_RECORDINGS"
    )
    assert kms.list_grants(KeyId=key["Arn"])["Grants"] == []


def test_retention_expiry(server, clients):
    connect, s3, _kms = clients
    inst = new_instance(connect)
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], "old"), Body=b"o")
    wait_until(lambda: statuses(server, inst["Id"]).get("old") == "WAITING_FOR_CONFIG")
    server.advance_clock(2 * 86400)
    wait_until(lambda: statuses(server, inst["Id"]).get("old") == "EXPIRED")


def test_key_policy_deny_then_restored(server, clients):
    import json

    connect, s3, kms = clients
    inst, bucket, key, _ = configured_instance(connect, s3, kms, "p", "pol")
    original = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    doc = json.loads(original)
    doc["Statement"].append(
        {
            "Sid": "DenyConnectRole",
            "Effect": "Deny",
            "Principal": {"AWS": inst["ServiceRole"]},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
        }
    )
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(doc))
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], "p1"), Body=b"pp")
    it = wait_until(lambda: [i for i in items(server, inst["Id"]) if i["Status"] == "FAILED"])[0]
    assert it["LastError"]["Code"] == "AccessDeniedException"
    assert "explicit deny" in it["LastError"]["Message"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=original)
    server.advance_clock(600)
    wait_until(lambda: statuses(server, inst["Id"])["p1"] == "DELIVERED")


def test_connect_api_access(server, clients):
    connect, _s3, _kms = clients
    inst = new_instance(connect)
    alice = server.boto("connect", identity="alice")  # s3:* only
    with pytest.raises(ClientError) as exc:
        alice.describe_instance(InstanceId=inst["Id"])
    assert err(exc) == ("AccessDeniedException", 403)
    other = server.boto("connect", identity="other")
    with pytest.raises(ClientError) as exc:
        other.describe_instance(InstanceId=inst["Id"])
    assert err(exc) == ("ResourceNotFoundException", 404)
    assert inst["Id"] not in [i["Id"] for i in other.list_instances()["InstanceSummaryList"]]


def test_an_empty_recording_is_delivered_empty(server, clients):
    connect, s3, kms = clients
    inst, bucket, _, _ = configured_instance(connect, s3, kms, prefix="empty")
    contact = str(uuid.uuid4())
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], contact), Body=b"")
    rec = delivered(server, connect, inst["Id"], contact)
    key = rec["Location"].split("/", 1)[1]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b""


def test_recordings_written_into_spare_files_come_out_byte_for_byte(server, clients):
    """Without fsync a delivered recording's staged file is reused by the next blob
    (s3sim/storage/spares.py): shrinking and growing sizes, each delivered before the
    next, must each read back exactly, and the spare files stay few."""
    connect, s3, kms = clients
    inst, bucket, _, _ = configured_instance(connect, s3, kms, prefix="spares")
    spare_dir = server.data_dir / "spare"
    inodes = set()
    for size in (600_000, 70_000, 20_000, 300_000, 17_000, 1_000_000):
        contact, data = str(uuid.uuid4()), os.urandom(size)
        s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], contact), Body=data)
        rec = delivered(server, connect, inst["Id"], contact)
        key = rec["Location"].split("/", 1)[1]
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
        inodes |= {p.stat().st_ino for p in spare_dir.iterdir()}
    assert 1 <= len(list(spare_dir.iterdir())) <= 2  # one per delivery, reused by the next
    assert len(inodes) < 6  # reused files, not one new spare per recording
