"""The load generator over HTTPS, verifying the server against a given CA file."""

import datetime as dt
import ipaddress
import ssl

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from s3sim.loadtest.runner import RunConfig, make_workload, run_load
from s3sim.loadtest.workloads import SetupError, WorkloadConfig


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_endpoint(tmp_path):
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def ok(req: web.Request) -> web.Response:
        await req.read()
        return web.Response(body=b"x" * 100 if req.method == "GET" else b"")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}", cert
    await runner.cleanup()


async def test_https_with_ca_bundle(tls_endpoint):
    endpoint, ca = tls_endpoint
    ctx = ssl.create_default_context(cafile=str(ca))
    cfg = WorkloadConfig(name="mixed", keys=5)
    run = RunConfig(endpoint=endpoint, count=30, concurrency=4, ssl_context=ctx)
    s = await run_load(make_workload(cfg), run, None)
    assert s.total.ops == 30 and s.errors == {}


async def test_https_untrusted_certificate_fails_setup(tls_endpoint):
    endpoint, _ = tls_endpoint
    with pytest.raises(SetupError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        await run_load(make_workload(WorkloadConfig()), RunConfig(endpoint=endpoint), None)
