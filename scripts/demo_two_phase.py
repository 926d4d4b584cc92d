#!/usr/bin/env python3
"""A guided tour of Amazon Connect's two-phase storage in s3sim (well under a minute).

    python scripts/demo_two_phase.py                 # starts a throwaway server
    python scripts/demo_two_phase.py --endpoint http://127.0.0.1:4566

Steps: a customer key and a bucket; a Connect instance; a storage config (and the KMS
grant it creates); a call recording uploaded into the intermediate store; its delivery
to the bucket under SSE-KMS; what happens when the grant is revoked and restored; and
the CloudTrail events of every KMS call on the way.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import wave
from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


def step(n: int, text: str) -> None:
    print(f"\n[{n}] {text}")


def say(text: str) -> None:
    print(f"    {text}")


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A stereo 440 Hz tone (agent right, customer left, as Connect records)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<hh", int(8000 * math.sin(2 * math.pi * 440 * i / rate)), 0)
            for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(endpoint: str | None):
    if endpoint:
        yield endpoint
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="s3sim-demo-") as data_dir:
        cmd = [sys.executable, "-m", "s3sim", "serve", "--data-dir", data_dir, "--port", str(port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc)
            say(f"started s3sim on {url} (data dir {data_dir})")
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            sys.exit(f"s3sim did not start:\n{err}")
        try:
            urllib.request.urlopen(url + "/_s3sim/connect/instances", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("s3sim did not answer within 20 s")


def client(name: str, endpoint: str):
    return boto3.client(
        name,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 2}),
    )


def pipeline(endpoint: str, instance_id: str, contact_id: str) -> dict:
    url = f"{endpoint}/_s3sim/connect/instances/{instance_id}/items/{contact_id}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["Items"][0]


def wait_status(endpoint: str, instance_id: str, contact_id: str, wanted: set[str]) -> dict:
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline:
        item = pipeline(endpoint, instance_id, contact_id)
        if item["Status"] != seen:
            seen = item["Status"]
            err = item.get("LastError")
            extra = f" ({err['Code']}: {err['Message'][:90]})" if err else ""
            say(f"pipeline: {seen}, attempts {item['Attempts']}{extra}")
        if item["Status"] in wanted:
            return item
        time.sleep(0.1)
    sys.exit(f"item did not reach {wanted} within 20 s")


def advance_clock(endpoint: str, seconds: float) -> None:
    req = urllib.request.Request(
        f"{endpoint}/_s3sim/clock/advance",
        data=json.dumps({"seconds": seconds}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=5).close()


def show_audit(endpoint: str, since: float) -> None:
    ct = client("cloudtrail", endpoint)
    events = []
    token = None
    for _ in range(10):
        kw = {"MaxResults": 50}
        if token:
            kw["NextToken"] = token
        page = ct.lookup_events(**kw)
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            break
    for e in reversed(events):
        r = json.loads(e["CloudTrailEvent"])
        ident = r["userIdentity"]
        who = ident.get("invokedBy") if ident.get("type") == "AWSService" else ident.get("arn")
        via = (
            f" via {ident['invokedBy']}"
            if ident.get("invokedBy") and who != ident["invokedBy"]
            else ""
        )
        who = (who or "").replace("aws-service-role/connect.amazonaws.com/", "")
        ctx = (r.get("requestParameters") or {}).get("encryptionContext")
        err = f"  -> {r['errorCode']}" if r.get("errorCode") else ""
        say(f"{r['eventTime']} {r['eventName']:<16} by {who}{via}{err}")
        if ctx:
            say(f"{'':21}context {ctx}")


def run(endpoint: str) -> None:
    t0 = time.monotonic()
    kms, s3, connect = (client(n, endpoint) for n in ("kms", "s3", "connect"))

    step(1, "The customer: a KMS key (customer managed) and a bucket for recordings")
    key = kms.create_key(Description="Connect recordings")["KeyMetadata"]["Arn"]
    bucket = "amazon-connect-" + os.urandom(6).hex()
    s3.create_bucket(Bucket=bucket)
    say(f"key    {key}")
    say(f"bucket {bucket}")

    step(2, "A Connect instance (with its service role)")
    out = connect.create_instance(
        IdentityManagementType="CONNECT_MANAGED",
        InstanceAlias="demo-" + os.urandom(3).hex(),
        InboundCallsEnabled=True,
        OutboundCallsEnabled=True,
    )
    inst = connect.describe_instance(InstanceId=out["Id"])["Instance"]
    say(f"instance     {inst['Arn']}")
    say(f"service role {inst['ServiceRole']}")

    step(3, "Storage config: call recordings go to the bucket, encrypted under the key")
    prefix = f"connect/{inst['InstanceAlias']}/CallRecordings"
    config = {
        "StorageType": "S3",
        "S3Config": {
            "BucketName": bucket,
            "BucketPrefix": prefix,
            "EncryptionConfig": {"EncryptionType": "KMS", "KeyId": key},
        },
    }
    assoc = connect.associate_instance_storage_config(
        InstanceId=inst["Id"], ResourceType="CALL_RECORDINGS", StorageConfig=config
    )["AssociationId"]
    (grant,) = kms.list_grants(KeyId=key)["Grants"]
    say(f"association {assoc}")
    say(f"KMS grant {grant['GrantId'][:16]}... for {grant['GranteePrincipal'].rsplit('/', 1)[1]}")
    say(f"  operations {', '.join(grant['Operations'])}")
    say("  (the service role has no KMS permission of its own: this grant is all it has)")

    step(4, "Phase 1: a call ends; its recording enters the intermediate store")
    contact = str(uuid.uuid4())
    audio = wav_bytes()
    staging_key = f"{inst['Id']}/CALL_RECORDINGS/{contact}.wav"
    s3.put_object(Bucket="connect-staging", Key=staging_key, Body=audio)
    say(f"s3://connect-staging/{staging_key} ({len(audio)} bytes)")
    say("encrypted under a data key of this instance only (Connect's AWS-owned key,")
    say("context aws:connect:instanceArn = the instance ARN)")
    try:
        s3.get_object(Bucket="connect-staging", Key=staging_key)
    except ClientError as e:
        say(f"reading it back through S3: {e.response['Error']['Code']} (the store is internal)")

    step(5, "Phase 2: delivery to the customer's bucket, SSE-KMS under the customer's key")
    wait_status(endpoint, inst["Id"], contact, {"DELIVERED"})
    rec = connect.describe_contact(InstanceId=inst["Id"], ContactId=contact)["Contact"]
    (recording,) = rec["Recordings"]
    say(f"describe_contact: {recording['Status']} at {recording['Location']}")
    obj = s3.get_object(Bucket=bucket, Key=recording["Location"].split("/", 1)[1])
    body = obj["Body"].read()
    say(f"downloaded {len(body)} bytes, identical to the upload: {body == audio}")
    say(f"ServerSideEncryption {obj['ServerSideEncryption']}, key {obj['SSEKMSKeyId']}")

    step(6, "The customer revokes the grant: delivery fails, nothing is lost")
    kms.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    contact2 = str(uuid.uuid4())
    s3.put_object(
        Bucket="connect-staging", Key=f"{inst['Id']}/CALL_RECORDINGS/{contact2}.wav", Body=audio
    )
    wait_status(endpoint, inst["Id"], contact2, {"FAILED"})

    step(7, "UpdateInstanceStorageConfig (same key) restores the grant; delivery resumes")
    connect.update_instance_storage_config(
        InstanceId=inst["Id"],
        AssociationId=assoc,
        ResourceType="CALL_RECORDINGS",
        StorageConfig=config,
    )
    say(f"grants on the key now: {len(kms.list_grants(KeyId=key)['Grants'])}")
    advance_clock(endpoint, 60)
    say("(simulated clock advanced 60 s, past the retry backoff)")
    wait_status(endpoint, inst["Id"], contact2, {"DELIVERED"})

    step(8, "The audit trail (CloudTrail LookupEvents): every KMS call on the way")
    show_audit(endpoint, t0)
    print(f"\nDone in {time.monotonic() - t0:.1f} s.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--endpoint", help="a running s3sim (default: start a throwaway one)")
    args = ap.parse_args()
    with server(args.endpoint) as endpoint:
        run(endpoint)


if __name__ == "__main__":
    main()
