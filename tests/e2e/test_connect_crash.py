"""kill -9 in the middle of a burst of ingests: nothing acknowledged is lost, nothing is
delivered twice, and delivery resumes after the restart; with and without fsync (with
it, staged files are written over in place once delivered: storage/blobstore.py)."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.e2e.connect_helpers import (
    configured_instance,
    items,
    staging_key,
    wait_until,
)

BURST = 200


@pytest.mark.parametrize("mode", ["--no-fsync", "--fsync"])
def test_kill9_during_burst_loses_and_duplicates_nothing(server_factory, mode):
    server = server_factory((mode,))
    connect = server.boto("connect", identity="admin")
    s3 = server.boto("s3", identity="admin")
    kms = server.boto("kms", identity="admin")
    inst, bucket, key, _ = configured_instance(connect, s3, kms, "crash", "crash")
    contacts = [str(uuid.uuid4()) for _ in range(BURST)]
    acked: set[str] = set()
    lock = threading.Lock()
    half = threading.Event()

    def worker(part: list[str]) -> None:
        client = server.boto("s3", identity="admin")
        for c in part:
            try:
                client.put_object(
                    Bucket="connect-staging", Key=staging_key(inst["Id"], c), Body=c.encode() * 50
                )
            except (BotoCoreError, ClientError):
                continue  # the server died under this request: not acknowledged
            with lock:
                acked.add(c)
                if len(acked) >= BURST // 2:
                    half.set()

    threads = [threading.Thread(target=worker, args=(contacts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    assert half.wait(60)
    server.kill9()  # SIGKILL, then the same server starts again on the same data dir
    for t in threads:
        t.join(120)
    connect = server.boto("connect", identity="admin")
    s3 = server.boto("s3", identity="admin")
    assert len(acked) >= BURST // 2

    def settled():
        its = items(server, inst["Id"])
        return all(i["Status"] == "DELIVERED" for i in its) and its

    its = wait_until(settled, timeout=120, every=0.2)
    staged = {i["ContactId"] for i in its}
    assert acked <= staged, f"lost after kill -9: {sorted(acked - staged)[:5]}"
    assert staged <= set(contacts)
    keys = []
    token = None
    while True:
        kw = {"Bucket": bucket, "Prefix": "crash/"}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        keys += [o["Key"] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            break
    per_contact = Counter(k.rsplit("/", 1)[1].split("_", 1)[0] for k in keys)
    assert set(per_contact) == staged
    assert max(per_contact.values()) == 1, "a contact was delivered twice"
    for c in sorted(acked)[:10]:
        rec = connect.describe_contact(InstanceId=inst["Id"], ContactId=c)["Contact"]["Recordings"]
        (only,) = rec
        body = s3.get_object(Bucket=bucket, Key=only["Location"].split("/", 1)[1])["Body"].read()
        assert body == c.encode() * 50


def test_with_fsync_recordings_written_over_reused_staged_files_arrive_intact(server_factory):
    """Each recording staged after the one before was delivered: from the second on, each is
    written into the staged file the previous one left (longer, then shorter, bodies)."""
    server = server_factory(("--fsync",))
    connect = server.boto("connect", identity="admin")
    s3 = server.boto("s3", identity="admin")
    kms = server.boto("kms", identity="admin")
    inst, bucket, _, _ = configured_instance(connect, s3, kms, "reuse", "reuse")
    staged_dir = server.data_dir / "connect" / "blobs"
    bodies = {}
    for size in (200_000, 70_000, 300_000, 5, 1 << 20, 1000):
        contact = str(uuid.uuid4())
        bodies[contact] = os.urandom(size)
        s3.put_object(
            Bucket="connect-staging", Key=staging_key(inst["Id"], contact), Body=bodies[contact]
        )
        wait_until(
            lambda c=contact: (
                items(server, inst["Id"])
                and all(i["Status"] == "DELIVERED" for i in items(server, inst["Id"]))
            )
        )
    staged_files = [f for d in staged_dir.iterdir() if d.is_dir() for f in d.iterdir()]
    assert len(staged_files) == 1  # one file, written over by every recording
    for contact, body in bodies.items():
        rec = connect.describe_contact(InstanceId=inst["Id"], ContactId=contact)
        (only,) = rec["Contact"]["Recordings"]
        got = s3.get_object(Bucket=bucket, Key=only["Location"].split("/", 1)[1])["Body"].read()
        assert got == body
