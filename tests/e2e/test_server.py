"""The server process and its HTTP foundation, through boto3 and raw HTTP: CLI output,
signals, /_s3sim/ endpoints, SigV4 errors in each service's shape, presigned URLs,
aws-chunked bodies, virtual-host addressing, identities.json and TLS."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.auth
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from s3sim.http import sigv4, sigv4_keys
from tests.awserr import err

IDENTITIES = {
    "admin": ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    "alice": ("AKIAALICE00EXAMPLE01", "alice/Secret/Key/EXAMPLE/0000000000000001"),
    "other": ("AKIAOTHER00EXAMPLE01", "other/Secret/Key/EXAMPLE/000000000000001"),
}
AK, SK = IDENTITIES["admin"]
ROOT = Path(__file__).resolve().parents[2]


def signed(server, method, path, body=b"", headers=None, service="s3", amz_date=None, secret=SK):
    url = server.endpoint + path
    amz_date = amz_date or sigv4.format_amz_date(datetime.now(UTC))
    digest = hashlib.sha256(body).hexdigest()
    h = sigv4.sign_headers(
        method, url, headers or {}, digest, AK, secret, "us-east-1", service, amz_date
    )
    return requests.request(method, url, data=body, headers=h, timeout=10)


def xml_code(resp) -> str:
    return resp.text.split("<Code>")[1].split("</Code>")[0]


@pytest.fixture
def bucket(module_server):
    s3 = module_server.boto("s3")
    name = "srv-" + hashlib.sha1(str(datetime.now()).encode()).hexdigest()[:10]
    s3.create_bucket(Bucket=name)
    return name


# -- process, CLI, /_s3sim/ ----------------------------------------------------------------


def test_health_and_ready_message(module_server):
    h = module_server.health()
    assert h["status"] == "ok" and h["region"] == "us-east-1"
    assert {"kms", "cloudtrail"} <= set(h["services"])
    log = module_server.log
    assert f"s3sim ready: http://127.0.0.1:{module_server.port}" in log
    for key, secret in IDENTITIES.values():
        assert key in log and secret in log


def test_clock_show_and_advance(server):
    before = server.clock()
    assert before["offsetSeconds"] == 0
    after = server.advance_clock(3600)
    assert after["offsetSeconds"] == 3600
    now = datetime.fromisoformat(after["now"])
    assert abs(now - datetime.now(UTC) - timedelta(hours=1)) < timedelta(seconds=30)
    url = server.endpoint + "/_s3sim/clock/advance"
    assert requests.post(url, json={"seconds": -1}, timeout=5).status_code == 400
    assert requests.post(url, data=b"nope", timeout=5).status_code == 400
    assert requests.post(url, json={}, timeout=5).status_code == 400
    for path in ("/_s3sim/nothing", "/_s3sim"):  # the namespace is never authenticated
        r = requests.get(server.endpoint + path, timeout=5)
        assert r.status_code == 404 and "no simulator endpoint" in r.json()["error"]
    # SDK requests still work: the skew check compares with real time
    server.boto("kms").list_keys()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(server_factory, sig):
    srv = server_factory()
    srv.proc.send_signal(sig)
    assert srv.proc.wait(15) == 0
    assert "s3sim stopped" in srv.log


def test_kill9_restart_keeps_state(server):
    key = server.boto("kms").create_key()["KeyMetadata"]["KeyId"]
    server.kill9()
    assert server.boto("kms").describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
    server.restart()
    assert server.boto("kms").describe_key(KeyId=key)["KeyMetadata"]["Enabled"]


def test_identities_json_overrides_builtins(server_factory):
    handle = server_factory(start=False)
    doc = [
        {
            "accessKeyId": "AKIACUSTOM0000000001",
            "secretAccessKey": "custom-secret",
            "arn": "arn:aws:iam::123456789012:user/carol",
            "actions": ["kms:*"],
        }
    ]
    (handle.data_dir / "identities.json").write_text(json.dumps(doc))
    handle.start()
    try:
        kms = handle.boto(
            "kms", aws_access_key_id="AKIACUSTOM0000000001", aws_secret_access_key="custom-secret"
        )
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        assert ":123456789012:" in arn
        with pytest.raises(ClientError) as e:
            handle.boto("kms").list_keys()  # the built-in admin is gone
        assert err(e) == ("UnrecognizedClientException", 400)
        assert "AKIACUSTOM0000000001" in handle.log
    finally:
        assert handle.stop() == 0


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "{}",
        '[{"accessKeyId": "AKIAX000000000000001"}]',
        '[{"accessKeyId": "x", "secretAccessKey": "s", "arn": "arn:aws:iam::1:root"}]',
    ],
)
def test_bad_identities_json_is_a_clear_startup_error(server_factory, content):
    handle = server_factory(start=False)
    (handle.data_dir / "identities.json").write_text(content)
    r = subprocess.run(handle.command(), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "identities.json" in r.stderr and "Traceback" not in r.stderr


# -- auth errors, per service ------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, call, unknown, bad_secret",
    [
        (
            "kms",
            "list_keys",
            ("UnrecognizedClientException", 400),
            ("InvalidSignatureException", 400),
        ),
        (
            "cloudtrail",
            "lookup_events",
            ("UnrecognizedClientException", 400),
            ("InvalidSignatureException", 400),
        ),
        ("s3", "list_buckets", ("InvalidAccessKeyId", 403), ("SignatureDoesNotMatch", 403)),
        (
            "connect",
            "list_instances",
            ("UnrecognizedClientException", 403),
            ("InvalidSignatureException", 403),
        ),
    ],
)
def test_unknown_key_and_bad_signature(module_server, service, call, unknown, bad_secret):
    if service not in module_server.health()["services"]:
        pytest.skip(f"{service} adapter not wired yet")
    client = module_server.boto(service, aws_access_key_id="AKIANOBODY0000000000")
    with pytest.raises(ClientError) as e:
        getattr(client, call)()
    assert err(e) == unknown
    client = module_server.boto(service, aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as e:
        getattr(client, call)()
    assert err(e) == bad_secret
    assert e.value.response["ResponseMetadata"]["RequestId"]
    if service == "s3":  # S3 shows what it signed, to help debug a client
        error = e.value.response["Error"]
        assert error["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
        assert error["CanonicalRequest"].startswith("GET\n/\n")
        assert error["AWSAccessKeyId"] == AK


def freeze(monkeypatch, when: datetime) -> None:
    """botocore's signers (its own and, when installed, awscrt's) sign at `when`."""

    def now(remove_tzinfo: bool = True) -> datetime:
        return when.replace(tzinfo=None) if remove_tzinfo else when

    monkeypatch.setattr(botocore.auth, "get_current_datetime", now)
    if importlib.util.find_spec("awscrt") is not None:
        crt_auth = importlib.import_module("botocore.crt.auth")
        monkeypatch.setattr(crt_auth, "get_current_datetime", now)


@pytest.mark.parametrize(
    "service, call, expected",
    [
        ("kms", "list_keys", ("InvalidSignatureException", 400)),
        ("s3", "list_buckets", ("RequestTimeTooSkewed", 403)),
        ("connect", "list_instances", ("InvalidSignatureException", 403)),
    ],
)
@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew(module_server, monkeypatch, service, call, expected, minutes):
    if service not in module_server.health()["services"]:
        pytest.skip(f"{service} adapter not wired yet")
    client = module_server.boto(service)
    freeze(monkeypatch, datetime.now(UTC) + timedelta(minutes=minutes))
    with pytest.raises(ClientError) as e:
        getattr(client, call)()
    assert err(e) == expected
    if service == "s3":
        assert e.value.response["Error"]["MaxAllowedSkewMilliseconds"] == "900000"
    if service == "kms":
        word = "expired" if minutes < 0 else "not yet current"
        assert f"Signature {word}" in e.value.response["Error"]["Message"]
    freeze(monkeypatch, datetime.now(UTC) + timedelta(minutes=minutes // 2))
    getattr(client, call)()  # within 15 minutes


def test_missing_and_malformed_auth(module_server):
    r = requests.get(module_server.endpoint + "/no-such-bucket/key", timeout=5)
    assert (r.status_code, xml_code(r)) == (404, "NoSuchBucket")  # as S3 answers anonymous
    module_server.boto("s3").create_bucket(Bucket="some-bucket")
    r = requests.get(module_server.endpoint + "/some-bucket/key", timeout=5)
    assert (r.status_code, xml_code(r)) == (403, "AccessDenied")
    assert "<RequestId>" in r.text and "<Resource>/some-bucket/key</Resource>" in r.text
    r = requests.post(
        module_server.endpoint + "/",
        data=b"{}",
        headers={"X-Amz-Target": "TrentService.ListKeys"},
        timeout=5,
    )
    assert r.status_code == 400 and r.headers["x-amzn-RequestId"]
    assert r.json()["__type"] == "MissingAuthenticationTokenException"
    r = requests.get(
        module_server.endpoint + "/b/k",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=x",
            "x-amz-date": "20260101T000000Z",
        },
        timeout=5,
    )
    assert (r.status_code, xml_code(r)) == (400, "AuthorizationHeaderMalformed")
    r = requests.get(
        module_server.endpoint + "/b/k?X-Amz-Credential=x&X-Amz-Signature=y", timeout=5
    )
    assert (r.status_code, xml_code(r)) == (400, "AuthorizationQueryParametersError")


def test_unknown_expectation_is_ignored_and_100_continue_honoured(module_server, bucket):
    for expect in ("200", "100-continue"):
        r = signed(module_server, "PUT", f"/{bucket}/e", b"body", {"Expect": expect})
        assert r.status_code == 200, r.text
    assert module_server.boto("s3").get_object(Bucket=bucket, Key="e")["Body"].read() == b"body"


def test_s3_requires_content_sha256(module_server):
    url = module_server.endpoint + "/"
    amz_date = sigv4.format_amz_date(datetime.now(UTC))
    h = sigv4.sign_headers("GET", url, {}, sigv4.EMPTY_SHA256, AK, SK, "us-east-1", "s3", amz_date)
    del h["x-amz-content-sha256"]
    r = requests.get(url, headers=h, timeout=5)
    assert (r.status_code, xml_code(r)) == (400, "InvalidRequest")


def test_kms_body_limit_and_hash_mismatch(module_server):
    headers = {
        "X-Amz-Target": "TrentService.ListKeys",
        "Content-Type": "application/x-amz-json-1.1",
    }
    r = signed(module_server, "POST", "/", b"{}", headers, service="kms")
    assert r.status_code == 200
    big = b'{"x": "' + b"a" * (1024 * 1024) + b'"}'
    r = signed(module_server, "POST", "/", big, headers, service="kms")
    assert r.status_code == 413 and r.json()["__type"] == "ValidationException"
    wrong = {**headers, "x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()}
    r = signed(module_server, "POST", "/", b"{}", wrong, service="kms")
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException"


def test_unknown_service_in_scope_is_not_implemented(module_server):
    r = signed(module_server, "GET", "/", service="sqs")
    assert r.status_code == 501 and xml_code(r) == "NotImplemented"


# -- presigned URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["s3v4", None])
def test_presigned_url_expiry(server, version):
    cfg = Config(signature_version=version) if version else Config()
    s3 = server.boto("s3", config=cfg)
    path_only = "s3" not in server.health()["services"]
    if not path_only:
        s3.create_bucket(Bucket="presign-bucket")
        s3.put_object(Bucket="presign-bucket", Key="k", Body=b"data")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "presign-bucket", "Key": "k"}, ExpiresIn=60
    )
    assert ("X-Amz-Expires=60" in url) == (version == "s3v4")
    r = requests.get(url, timeout=5)
    if not path_only:
        assert r.status_code == 200 and r.content == b"data"
    server.advance_clock(120)
    r = requests.get(url, timeout=5)
    assert (r.status_code, xml_code(r)) == (403, "AccessDenied")
    assert "<Message>Request has expired</Message>" in r.text
    tampered = url.replace("presign-bucket/k", "presign-bucket/j")
    server.restart()  # a fresh clock (offset 0) again
    r = requests.get(tampered, timeout=5)
    assert (r.status_code, xml_code(r)) == (403, "SignatureDoesNotMatch")


def test_presigned_expires_limit(module_server):
    s3 = module_server.boto("s3", config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=604801
    )
    r = requests.get(url, timeout=5)
    assert (r.status_code, xml_code(r)) == (400, "AuthorizationQueryParametersError")


# -- bodies (needs the S3 adapter) ---------------------------------------------------------------


def needs_s3(server) -> None:
    if "s3" not in server.health()["services"]:
        pytest.skip("S3 adapter not wired yet")


def test_content_sha256_mismatch(module_server, bucket):
    needs_s3(module_server)
    url = f"{module_server.endpoint}/{bucket}/obj"
    amz_date = sigv4.format_amz_date(datetime.now(UTC))
    claimed = hashlib.sha256(b"something else").hexdigest()
    h = sigv4.sign_headers("PUT", url, {}, claimed, AK, SK, "us-east-1", "s3", amz_date)
    r = requests.put(url, data=b"actual body", headers=h, timeout=10)
    assert (r.status_code, xml_code(r)) == (400, "XAmzContentSHA256Mismatch")
    assert module_server.boto("s3").list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _signed_chunked_put(server, path, chunks, tamper=False, declared=None):
    url = server.endpoint + path
    amz_date = sigv4.format_amz_date(datetime.now(UTC))
    total = sum(len(c) for c in chunks)
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(declared if declared is not None else total),
    }
    h = sigv4.sign_headers(
        "PUT", url, headers, sigv4.STREAMING_SIGNED, AK, SK, "us-east-1", "s3", amz_date
    )
    seed = h["Authorization"].rsplit("Signature=", 1)[1]
    scope = sigv4.Scope(AK, amz_date[:8], "us-east-1", "s3")
    signing = sigv4.StreamSigning(
        sigv4_keys.signing_key(SK, amz_date[:8], "us-east-1", "s3"), amz_date, scope, seed
    )
    body, prev = [], seed
    for data in [*chunks, b""]:
        prev = signing.chunk(prev, hashlib.sha256(data).hexdigest())
        sent = data[:-1] + b"!" if tamper and data else data
        body.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(data), prev.encode(), sent))
    wire = b"".join(body)
    return requests.put(url, data=wire, headers=h, timeout=10)


def test_signed_aws_chunked_put(module_server, bucket):
    needs_s3(module_server)
    chunks = [b"a" * 65536, b"b" * 1000]
    r = _signed_chunked_put(module_server, f"/{bucket}/chunked", chunks)
    assert r.status_code == 200, r.text
    s3 = module_server.boto("s3")
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == b"".join(chunks)
    r = _signed_chunked_put(module_server, f"/{bucket}/tampered", chunks, tamper=True)
    assert (r.status_code, xml_code(r)) == (403, "SignatureDoesNotMatch")
    r = _signed_chunked_put(module_server, f"/{bucket}/short", chunks, declared=70000)
    assert (r.status_code, xml_code(r)) == (400, "IncompleteBody")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["chunked"]


def test_virtual_host_style(module_server, bucket):
    needs_s3(module_server)
    module_server.boto("s3").put_object(Bucket=bucket, Key="vh/key", Body=b"vhost")
    url = module_server.endpoint + "/vh/key"
    host = f"{bucket}.localhost:{module_server.port}"
    amz_date = sigv4.format_amz_date(datetime.now(UTC))
    h = sigv4.sign_headers(
        "GET", url, {"Host": host}, sigv4.EMPTY_SHA256, AK, SK, "us-east-1", "s3", amz_date
    )
    r = requests.get(url, headers=h, timeout=5)
    assert r.status_code == 200 and r.content == b"vhost"


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_with_generated_ca(server_factory):
    srv = server_factory(["--tls", "--no-fsync"])
    assert srv.endpoint.startswith("https://") and srv.ca_cert.exists()
    assert f"TLS CA certificate: {srv.ca_cert}" in srv.log
    assert srv.boto("kms").list_keys()["Keys"] == []
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.endpoint + "/_s3sim/health", timeout=5)
    assert requests.get(srv.endpoint + "/_s3sim/health", verify=srv.ca_cert, timeout=5).ok
    if "s3" in srv.health()["services"]:
        s3 = srv.boto("s3")
        s3.create_bucket(Bucket="tls-bucket")
        body = bytes(range(256)) * 4000  # boto3 sends aws-chunked + trailing CRC over HTTPS
        s3.put_object(Bucket="tls-bucket", Key="k", Body=body)
        assert s3.get_object(Bucket="tls-bucket", Key="k")["Body"].read() == body
    first = srv.ca_cert.read_bytes()
    srv.restart()
    assert srv.ca_cert.read_bytes() == first  # the CA is made once
    srv.boto("kms").list_keys()


# -- in process: a service whose adapter is missing ------------------------------------------


async def test_missing_adapter_answers_not_implemented_in_the_service_shape():
    from aiohttp.test_utils import TestClient, TestServer

    from kmscore.clock import SimClock
    from s3sim.http.admin import AdminState
    from s3sim.http.app import make_app
    from s3sim.http.auth import Authenticator
    from s3sim.identities import BUILTIN, Identities

    clock = SimClock()
    app = make_app(
        Authenticator(Identities(BUILTIN), clock), {}, AdminState(clock, "us-east-1", "t")
    )
    async with TestClient(TestServer(app)) as client:
        base = str(client.make_url(""))
        for service, headers in (("kms", {"X-Amz-Target": "TrentService.ListKeys"}), ("s3", {})):
            amz_date = sigv4.format_amz_date(datetime.now(UTC))
            body = b"{}" if service == "kms" else b""
            h = sigv4.sign_headers(
                "POST" if body else "GET",
                base + "/",
                headers,
                hashlib.sha256(body).hexdigest(),
                AK,
                SK,
                "us-east-1",
                service,
                amz_date,
            )
            r = await client.request("POST" if body else "GET", "/", data=body, headers=h)
            assert r.status == 501
            text = await r.text()
            if service == "kms":
                assert json.loads(text)["__type"] == "NotImplemented"
            else:
                assert "<Code>NotImplemented</Code>" in text
        health = await (await client.get("/_s3sim/health")).json()
        assert health["status"] == "ok" and health["services"] == []
