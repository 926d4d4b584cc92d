"""The Connect adapter behind a throwaway aiohttp app, driven by boto3's `connect` client.

Authentication is the middleware's job (another module); a stand-in sets request["auth"]
and request["body"], so only the wire adapter and the service are exercised.
"""

import asyncio
import json
import threading
import urllib.request
from dataclasses import dataclass

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from kmscore import Caller
from s3sim.http import connect_api
from tests.unit.connect_env import OTHER, ROOT, make_env

pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.RequestKey")
OTHER_ROOT = Caller(arn=f"arn:aws:iam::{OTHER}:root", account=OTHER)


@dataclass(frozen=True)
class FakeAuth:
    caller: Caller
    request_id: str


@dataclass(frozen=True)
class Components:
    connect: object


def build_app(connect):
    handle = connect_api.handler(Components(connect))

    async def route(request):
        caller = OTHER_ROOT if request.headers.get("X-Test-Other") else ROOT
        request["auth"] = FakeAuth(caller, "req-1")
        request["body"] = await request.read()
        return await handle(request)

    app = web.Application()
    app.router.add_routes(connect_api.admin_routes(Components(connect)))
    app.router.add_route("*", "/{tail:.*}", route)
    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("connecthttp"))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    async def start():
        runner = web.AppRunner(build_app(env.connect))
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
    env.endpoint = f"http://127.0.0.1:{holder['port']}"
    env.run = lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(30)
    yield env
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    env.connect.close()


def client(server, other=False):
    c = boto3.client(
        "connect",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}),
    )
    if other:
        c.meta.events.register(
            "before-sign.connect.*",
            lambda request, **kw: request.headers.add_header("X-Test-Other", "1"),
        )
    return c


def err(exc):
    e = exc.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def s3config(bucket, key, prefix="rec"):
    return {
        "StorageType": "S3",
        "S3Config": {
            "BucketName": bucket,
            "BucketPrefix": prefix,
            "EncryptionConfig": {"EncryptionType": "KMS", "KeyId": key},
        },
    }


def test_instances_round_trip(server):
    c = client(server)
    out = c.create_instance(
        IdentityManagementType="CONNECT_MANAGED",
        InstanceAlias="wire",
        InboundCallsEnabled=True,
        OutboundCallsEnabled=False,
    )
    inst = c.describe_instance(InstanceId=out["Id"])["Instance"]
    assert inst["Arn"] == out["Arn"] and inst["InstanceStatus"] == "ACTIVE"
    assert inst["OutboundCallsEnabled"] is False and inst["InstanceAlias"] == "wire"
    assert "AWSServiceRoleForAmazonConnect_" in inst["ServiceRole"]
    assert inst["CreatedTime"].year >= 2026
    ids = [i["Id"] for i in c.list_instances()["InstanceSummaryList"]]
    assert out["Id"] in ids
    with pytest.raises(ClientError) as exc:
        client(server, other=True).describe_instance(InstanceId=out["Id"])
    assert err(exc) == ("ResourceNotFoundException", 404)
    c.delete_instance(InstanceId=out["Id"])
    with pytest.raises(ClientError) as exc:
        c.delete_instance(InstanceId=out["Id"])
    assert err(exc) == ("ResourceNotFoundException", 404)


def test_create_instance_errors(server):
    c = client(server)
    with pytest.raises(ClientError) as exc:
        c.create_instance(
            IdentityManagementType="CONNECT_MANAGED",
            InboundCallsEnabled=True,
            OutboundCallsEnabled=True,
        )
    assert err(exc) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as exc:
        c.list_instances(MaxResults=11)
    assert err(exc) == ("InvalidParameterException", 400)


def test_storage_configs_and_contact(server):
    c = client(server)
    iid = c.create_instance(
        IdentityManagementType="CONNECT_MANAGED",
        InstanceAlias="wire2",
        InboundCallsEnabled=True,
        OutboundCallsEnabled=True,
    )["Id"]
    key = server.key()
    server.bucket("wire-rec")
    assoc = c.associate_instance_storage_config(
        InstanceId=iid, ResourceType="CALL_RECORDINGS", StorageConfig=s3config("wire-rec", key)
    )["AssociationId"]
    with pytest.raises(ClientError) as exc:
        c.associate_instance_storage_config(
            InstanceId=iid, ResourceType="CALL_RECORDINGS", StorageConfig=s3config("wire-rec", key)
        )
    assert err(exc) == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as exc:
        c.associate_instance_storage_config(
            InstanceId=iid, ResourceType="CHAT_TRANSCRIPTS", StorageConfig=s3config("nope", key)
        )
    assert err(exc) == ("InvalidParameterException", 400)
    got = c.describe_instance_storage_config(
        InstanceId=iid, AssociationId=assoc, ResourceType="CALL_RECORDINGS"
    )["StorageConfig"]
    assert got["S3Config"]["EncryptionConfig"]["KeyId"] == key and got["AssociationId"] == assoc
    listed = c.list_instance_storage_configs(InstanceId=iid, ResourceType="CALL_RECORDINGS")
    assert [s["AssociationId"] for s in listed["StorageConfigs"]] == [assoc]
    c.update_instance_storage_config(
        InstanceId=iid,
        AssociationId=assoc,
        ResourceType="CALL_RECORDINGS",
        StorageConfig=s3config("wire-rec", key, "new/prefix"),
    )
    inst = server.connect.store.get_instance(iid)
    server.run(server.ingest(inst, "contact-1", b"RIFF....WAVE"))
    view = json.load(
        urllib.request.urlopen(f"{server.endpoint}/_s3sim/connect/instances/{iid}/items")
    )
    assert view["Items"][0]["Status"] == "STAGED" and view["Counts"] == {"STAGED": 1}
    server.run(server.connect.worker.run_once())
    contact = c.describe_contact(InstanceId=iid, ContactId="contact-1")["Contact"]
    (rec,) = contact["Recordings"]
    assert rec["Status"] == "AVAILABLE" and rec["StorageType"] == "S3"
    assert rec["Location"].startswith("wire-rec/new/prefix/") and rec["Location"].endswith(
        "_UTC.wav"
    )
    one = json.load(
        urllib.request.urlopen(f"{server.endpoint}/_s3sim/connect/instances/{iid}/items/contact-1")
    )
    assert (
        one["Items"][0]["Status"] == "DELIVERED" and one["Items"][0]["Location"] == rec["Location"]
    )
    with pytest.raises(ClientError) as exc:
        c.describe_contact(InstanceId=iid, ContactId="nobody")
    assert err(exc) == ("ResourceNotFoundException", 404)
    c.disassociate_instance_storage_config(
        InstanceId=iid, AssociationId=assoc, ResourceType="CALL_RECORDINGS"
    )
    with pytest.raises(ClientError) as exc:
        c.describe_instance_storage_config(
            InstanceId=iid, AssociationId=assoc, ResourceType="CALL_RECORDINGS"
        )
    assert err(exc) == ("ResourceNotFoundException", 404)


def test_admin_unknown_instance_is_404(server):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(
            f"{server.endpoint}/_s3sim/connect/instances/00000000-0000-4000-8000-000000000000/items"
        )
    assert exc.value.code == 404
