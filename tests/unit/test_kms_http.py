"""The adapters behind a throwaway aiohttp app, driven by real boto3 clients.

Authentication is the auth middleware's job (another module); here a stand-in sets
request["auth"] and request["body"] so that only the wire adapters are exercised.
"""

import asyncio
import base64
import threading
from dataclasses import dataclass

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from kmscore import KMS, Caller
from kmscore.clock import FixedClock
from s3sim.http import cloudtrail_api, kms_api

pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.RequestKey")
ACCT = "111122223333"
ADMIN = Caller(arn=f"arn:aws:iam::{ACCT}:root", account=ACCT, access_key_id="AKIAADMIN")


@dataclass(frozen=True)
class FakeAuth:
    caller: Caller
    request_id: str


@dataclass(frozen=True)
class Components:
    kms: KMS


def build_app(kms):
    services = {
        "kms": kms_api.handler(Components(kms)),
        "cloudtrail": cloudtrail_api.handler(Components(kms)),
    }

    async def route(request):
        request["auth"] = FakeAuth(ADMIN, "req-" + str(id(request)))
        request["body"] = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        svc = "cloudtrail" if target.startswith("com.amazonaws.cloudtrail") else "kms"
        return await services[svc](request)

    app = web.Application()
    app.router.add_post("/", route)
    return app


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    kms = KMS(tmp_path_factory.mktemp("kmshttp"), "us-east-1", FixedClock(), root_key=b"\x06" * 32)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    async def start():
        runner = web.AppRunner(build_app(kms))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        ready.set()

    t = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    t.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}"
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    kms.close()


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAADMIN",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


def test_boto3_round_trip(endpoint):
    kms = client(endpoint, "kms")
    key = kms.create_key(Description="http")["KeyMetadata"]
    assert key["KeyState"] == "Enabled" and key["CreationDate"].year >= 2026
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello", EncryptionContext={"a": "b"})
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert dec["Plaintext"] == b"hello" and dec["KeyId"] == key["Arn"]
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1}))
    assert key["KeyId"] in [k["KeyId"] for p in pages for k in p["Keys"]]


def test_boto3_sees_aws_errors(endpoint):
    kms = client(endpoint, "kms")
    key = kms.create_key()["KeyMetadata"]
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"ab": "c"})
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "bc"})
    err = e.value.response
    assert err["Error"]["Code"] == "InvalidCiphertextException"
    assert err["Error"]["Message"] == ""
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["ResponseMetadata"]["RequestId"].startswith("req-")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId="alias/none")


def test_cloudtrail_lookup(endpoint):
    kms = client(endpoint, "kms")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=kid)
    ct = client(endpoint, "cloudtrail")
    out = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": kid}]
    )
    assert [e["EventName"] for e in out["Events"]] == ["DescribeKey", "CreateKey"]
    assert out["Events"][0]["Username"] == "root"
    with pytest.raises(ClientError) as e:
        ct.lookup_events(NextToken="bogus")
    assert e.value.response["Error"]["Code"] == "InvalidNextTokenException"


@pytest.mark.parametrize(
    "target, body, want",
    [
        ("TrentService.NoSuchThing", b"{}", "UnknownOperationException"),
        ("Bogus.DescribeKey", b"{}", "UnknownOperationException"),
        ("TrentService.DescribeKey", b"{not json", "SerializationException"),
        ("TrentService.DescribeKey", b"[1, 2]", "SerializationException"),
        ("TrentService.DescribeKey", b'{"KeyId": 7}', "ValidationException"),
    ],
)
def test_protocol_errors(endpoint, target, body, want):
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(endpoint + "/", data=body, method="POST")
    req.add_header("X-Amz-Target", target)
    req.add_header("Content-Type", "application/x-amz-json-1.1")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 400
    assert e.value.headers["x-amzn-RequestId"]
    assert json.loads(e.value.read())["__type"] == want


def test_every_quick_operation_exists():
    assert kms_api.QUICK <= set(kms_api.OPERATIONS)
    assert not kms_api.QUICK & {"CreateKey", "ScheduleKeyDeletion", "CreateGrant", "PutKeyPolicy"}


@pytest.mark.parametrize("fsync", [False, True])
async def test_quick_operations_run_on_the_loop_unless_kms_fsyncs(tmp_path, fsync):
    import json

    from aiohttp.test_utils import TestClient, TestServer

    kms = KMS(tmp_path, "us-east-1", FixedClock(), root_key=b"\x06" * 32, fsync=fsync)
    threads: dict[str, int] = {}
    for name in ("create_key", "generate_data_key"):
        real = getattr(kms, name)

        def spy(*a, _real=real, _name=name, **kw):
            threads[_name] = threading.get_ident()
            return _real(*a, **kw)

        setattr(kms, name, spy)
    async with TestClient(TestServer(build_app(kms))) as http:

        async def call(op: str, body: dict) -> dict:
            headers = {"X-Amz-Target": f"TrentService.{op}"}
            resp = await http.post("/", data=json.dumps(body), headers=headers)
            assert resp.status == 200
            return await resp.json(content_type=None)

        key = (await call("CreateKey", {}))["KeyMetadata"]["KeyId"]
        out = await call("GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})
    assert len(base64.b64decode(out["Plaintext"])) == 32
    here = threading.get_ident()
    assert threads["create_key"] != here  # a state change: always off the loop
    assert (threads["generate_data_key"] == here) is not fsync
    (event,) = kms.lookup_events(ACCT, [("EventName", "GenerateDataKey")])[0]
    assert event["requestID"].startswith("req-")  # the request's id, on the loop too
    kms.close()
