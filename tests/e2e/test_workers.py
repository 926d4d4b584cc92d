"""`s3sim serve --workers 2`: two processes on one port over one data dir.

Each new boto3 client opens new connections, which the main process deals out to the
processes in turn; every check below is repeated over many fresh clients, so it passes
only if every process sees what another one changed (KMS state, buckets, clock, audit,
Connect).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.awserr import err
from tests.e2e.conftest import ROOT, ServerHandle
from tests.e2e.connect_helpers import (
    configured_instance,
    items,
    staging_key,
    statuses,
    wait_until,
)

FRESH = 24  # fresh connections per check: both processes are hit (p of a miss: 2**-23)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    args = ("--no-fsync", "--workers", "2", "--log-level", "info")  # info: who delivered
    handle = ServerHandle(tmp_path_factory.mktemp("workers"), args)
    handle.start()
    yield handle
    handle.stop()


def pids(server: ServerHandle, n: int = FRESH) -> set[int]:
    return {server.health()["pid"] for _ in range(n)}


def fresh(server: ServerHandle, service: str, n: int = FRESH):
    """n clients, each with its own connection pool."""
    return [server.boto(service) for _ in range(n)]


def test_two_processes_serve_the_port(pair):
    seen = pids(pair)
    assert len(seen) == 2
    assert pair.proc is not None and pair.proc.pid in seen
    assert "2 server processes share the port" in pair.log


def test_new_connections_are_dealt_in_turn(pair):
    """The main process hands connections out in turn: even two use both processes."""
    seq = [pair.health()["pid"] for _ in range(10)]  # a fresh connection each
    assert len(set(seq)) == 2
    assert all(a != b for a, b in zip(seq, seq[1:], strict=False))


def test_kms_changes_reach_every_process(pair):
    key = pair.boto("kms").create_key()["KeyMetadata"]["KeyId"]
    for kms in fresh(pair, "kms"):
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["Enabled"] is True
    s3 = pair.boto("s3")
    s3.create_bucket(Bucket="kms-shared")
    for i, c in enumerate(fresh(pair, "s3", 8)):
        c.put_object(
            Bucket="kms-shared",
            Key=f"o{i}",
            Body=b"x" * 100,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key,
            BucketKeyEnabled=True,
        )
    for c in fresh(pair, "s3", 8):  # warm every process's bucket-key cache
        assert c.get_object(Bucket="kms-shared", Key="o0")["Body"].read() == b"x" * 100
    pair.boto("kms").disable_key(KeyId=key)
    for i, c in enumerate(fresh(pair, "s3")):
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket="kms-shared", Key=f"o{i % 8}")
        assert err(e) == ("KMS.DisabledException", 400)
    for kms in fresh(pair, "kms"):
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key, Plaintext=b"x")
        assert err(e) == ("DisabledException", 400)


def test_aliases_created_anywhere_resolve_everywhere(pair):
    names = [f"alias/w-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    for name, kms in zip(names, fresh(pair, "kms", len(names)), strict=True):
        kms.create_alias(AliasName=name, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    for kms in fresh(pair, "kms", 8):
        listed = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
        assert set(names) <= listed


def test_bucket_changes_reach_every_process(pair):
    pair.boto("s3").create_bucket(Bucket="shared-bucket")
    for c in fresh(pair, "s3"):
        c.head_bucket(Bucket="shared-bucket")
    pair.boto("s3").put_bucket_encryption(
        Bucket="shared-bucket",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    for i, c in enumerate(fresh(pair, "s3")):
        out = c.put_object(Bucket="shared-bucket", Key=f"k{i}", Body=b"v")
        assert out["ServerSideEncryption"] == "aws:kms"
    s3 = pair.boto("s3")
    for i in range(FRESH):
        s3.delete_object(Bucket="shared-bucket", Key=f"k{i}")
    s3.delete_bucket(Bucket="shared-bucket")
    for c in fresh(pair, "s3"):
        with pytest.raises(ClientError) as e:
            c.head_bucket(Bucket="shared-bucket")
        assert err(e) == ("404", 404)


def test_object_writes_reach_every_process(pair):
    """Each process caches object rows it read; an overwrite or a delete made through
    the other process must be seen at once (a shared change counter drops the cache).
    Every write goes through one client, so through one process."""
    s3 = pair.boto("s3")
    s3.create_bucket(Bucket="rows-bucket")
    readers = fresh(pair, "s3")
    for version in (b"first", b"second", b"third"):
        s3.put_object(Bucket="rows-bucket", Key="k", Body=version)
        for c in readers:  # the same clients each round: their processes cached the row
            assert c.get_object(Bucket="rows-bucket", Key="k")["Body"].read() == version
    s3.delete_object(Bucket="rows-bucket", Key="k")
    for c in readers:
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket="rows-bucket", Key="k")
        assert err(e) == ("NoSuchKey", 404)
    s3.delete_bucket(Bucket="rows-bucket")


def test_clock_and_key_deletion_are_shared(pair):
    kms = pair.boto("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    before = pair.clock()["offsetSeconds"]
    pair.advance_clock(8 * 86400)
    offsets = {pair.clock()["offsetSeconds"] for _ in range(FRESH)}
    assert offsets == {before + 8 * 86400}
    for c in fresh(pair, "kms"):
        with pytest.raises(ClientError) as e:
            c.describe_key(KeyId=key)
        assert err(e) == ("NotFoundException", 400)


def test_audit_holds_every_process_records(pair):
    key = pair.boto("kms").create_key()["KeyMetadata"]["KeyId"]
    for kms in fresh(pair, "kms", 30):
        kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    trail = pair.boto("cloudtrail")
    events = []
    for page in trail.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}]
    ):
        events += page["Events"]
    names = [e["EventName"] for e in events]
    assert names.count("GenerateDataKey") == 30
    assert all(json.loads(e["CloudTrailEvent"])["eventName"] for e in events)


def test_ingest_through_any_process_is_delivered(pair):
    """Every process runs the delivery loop and an ingest wakes the loop of the process
    that took it: both processes deliver, and the claim lets only one deliver an item."""
    inst, bucket, _, _ = configured_instance(
        pair.boto("connect"), pair.boto("s3"), pair.boto("kms")
    )
    contacts = [str(uuid.uuid4()) for _ in range(16)]
    for cid, c in zip(contacts, fresh(pair, "s3", len(contacts)), strict=True):
        c.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], cid), Body=cid.encode())
    wait_until(
        lambda: statuses(pair, inst["Id"]) == dict.fromkeys(contacts, "DELIVERED"), timeout=30
    )
    s3 = pair.boto("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == len(contacts)
    bodies = {s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys}
    assert bodies == set(contacts)
    assert {i["Attempts"] for i in items(pair, inst["Id"])} == {1}
    by = deliverers(pair, bucket)  # location -> the pids that logged its delivery
    assert sorted(by) == sorted(f"{bucket}/{k}" for k in keys)
    assert all(len(p) == 1 for p in by.values()), "an item was delivered twice"
    assert {p for ps in by.values() for p in ps} == pids(pair)


def deliverers(server: ServerHandle, bucket: str) -> dict[str, list[int]]:
    """From the server log (INFO, both processes): who delivered what into `bucket`."""
    found: dict[str, list[int]] = {}
    for m in re.finditer(rf"delivered \S+ to ({re.escape(bucket)}/\S+) \(pid (\d+)\)", server.log):
        found.setdefault(m[1], []).append(int(m[2]))
    return found


def test_workers_exit_when_the_main_process_dies(tmp_path):
    handle = ServerHandle(tmp_path, ("--no-fsync", "--workers", "2"))
    handle.start()
    assert handle.proc is not None
    others = pids(handle) - {handle.proc.pid}
    assert len(others) == 1
    handle.proc.kill()
    handle.proc.wait()
    worker = others.pop()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
    handle.start()  # the port and the data dir are usable again at once
    assert len(pids(handle)) == 2
    handle.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split()[2] != "Z"


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_number(tmp_path, value):
    out = subprocess.run(
        [sys.executable, "-m", "s3sim", "serve", "--data-dir", str(tmp_path), "--workers", value],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert out.returncode == 2
    assert "--workers" in out.stderr and "expected a whole number >= 1" in out.stderr


def test_health_names_the_answering_process(pair):
    with urllib.request.urlopen(f"{pair.endpoint}/_s3sim/health", timeout=5) as r:
        assert isinstance(json.load(r)["pid"], int)


def test_a_stream_survives_an_overwrite_in_the_other_process(pair):
    """A multipart object is read part file by part file; whichever process overwrites
    the key meanwhile, the reader still gets every byte of the version it started."""
    from boto3.s3.transfer import TransferConfig

    s3 = pair.boto("s3")
    s3.create_bucket(Bucket="streams")
    mib = 1 << 20
    cfg = TransferConfig(multipart_threshold=8 * mib, multipart_chunksize=8 * mib)
    for round_ in range(4):
        original = os.urandom(3 * 8 * mib)
        s3.upload_fileobj(_Reader(original), "streams", "big", Config=cfg)
        reader = pair.boto("s3").get_object(Bucket="streams", Key="big")["Body"]
        head = reader.read(64 * 1024)
        for i, c in enumerate(fresh(pair, "s3", 4)):
            c.put_object(Bucket="streams", Key="big", Body=f"new {round_}.{i}".encode())
        assert head + reader.read() == original


def test_a_single_blob_stream_survives_an_overwrite_in_the_other_process(pair):
    """A single-blob object's replaced file is unlinked at once; the reader holds the file
    it verified open, so it still gets every byte of the version it started."""
    s3 = pair.boto("s3")
    s3.create_bucket(Bucket="streams1")
    trash = pair.data_dir / "s3" / "blobs" / "trash"
    trashed = set(trash.iterdir())  # other tests' multipart blobs
    for round_ in range(4):
        original = os.urandom(5 << 20)  # streamed in batches, not read whole at open
        s3.put_object(Bucket="streams1", Key="big", Body=original)
        reader = pair.boto("s3").get_object(Bucket="streams1", Key="big")["Body"]
        head = reader.read(64 * 1024)
        for i, c in enumerate(fresh(pair, "s3", 4)):
            c.put_object(Bucket="streams1", Key="big", Body=f"new {round_}.{i}".encode() * 70000)
        assert head + reader.read() == original
    assert set(trash.iterdir()) == trashed  # replaced single-blob files skip the grace period


def test_gets_racing_overwrites_across_processes_get_a_whole_version(pair):
    """Readers in one process, writers in both: every GET answers 200 with exactly one of
    the versions written (a GET that finds its file gone reads the key again)."""
    from concurrent.futures import ThreadPoolExecutor

    s3 = pair.boto("s3")
    s3.create_bucket(Bucket="race")
    versions = [bytes([i]) * (1 << 20) for i in range(8)]
    s3.put_object(Bucket="race", Key="k", Body=versions[0])
    writers, readers = fresh(pair, "s3", 4), fresh(pair, "s3", 4)

    def write(i: int) -> None:
        writers[i % 4].put_object(Bucket="race", Key="k", Body=versions[i % 8])

    def read(i: int) -> bytes:
        return readers[i % 4].get_object(Bucket="race", Key="k")["Body"].read()

    with ThreadPoolExecutor(8) as pool:
        puts = [pool.submit(write, i) for i in range(40)]
        gets = [pool.submit(read, i) for i in range(60)]
        got = [g.result() for g in gets]
        for p in puts:
            p.result()
    assert all(g in versions for g in got)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out


def test_acknowledged_writes_of_both_processes_survive_kill9(server_factory):
    """--no-fsync commits are handed to the OS at once (synchronous=OFF) and small objects
    live in the index: whatever either process acknowledged is there after kill -9."""
    srv = server_factory(["--no-fsync", "--workers", "2"])
    s3 = srv.boto("s3")
    s3.create_bucket(Bucket="kept")
    written = {}
    for i, c in enumerate(fresh(srv, "s3", 8)):
        for size in (0, 100, 4096, 16384, 70_000):  # inline and file-backed
            key = f"{i}/{size}"
            written[key] = os.urandom(size)
            c.put_object(Bucket="kept", Key=key, Body=written[key])
    srv.kill9()
    s3 = srv.boto("s3")
    for key, data in written.items():
        assert s3.get_object(Bucket="kept", Key=key)["Body"].read() == data


def test_tls_connections_are_served_by_every_process(server_factory):
    """With --tls the main process hands over the raw connection; each process does the
    TLS handshake itself."""
    srv = server_factory(["--tls", "--no-fsync", "--workers", "2"])
    assert len(pids(srv, 8)) == 2  # health over HTTPS with the generated CA
    s3 = srv.boto("s3")
    s3.create_bucket(Bucket="tls-two")
    for i, c in enumerate(fresh(srv, "s3", 6)):
        c.put_object(Bucket="tls-two", Key=f"k{i}", Body=b"x" * i)
    for i, c in enumerate(fresh(srv, "s3", 6)):
        assert c.get_object(Bucket="tls-two", Key=f"k{i}")["Body"].read() == b"x" * i
