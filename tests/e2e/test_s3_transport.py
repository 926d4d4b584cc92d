"""S3 transport details through the real server: TLS with aws-chunked trailing checksums,
SSE-C, virtual-host addressing, and a PUT cut short by kill -9."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.awserr import err

MiB = 1024 * 1024


def test_tls_trailing_checksums_sse_c_and_multipart(server_factory, tmp_path):
    srv = server_factory(["--tls", "--no-fsync"])
    s3 = srv.boto("s3")
    s3.create_bucket(Bucket="tls")
    data = os.urandom(300_000)
    r = s3.put_object(Bucket="tls", Key="k", Body=data)  # aws-chunked + CRC32 trailer
    assert r["ChecksumCRC32"]
    g = s3.get_object(Bucket="tls", Key="k", ChecksumMode="ENABLED")
    assert g["Body"].read() == data and g["ChecksumCRC32"] == r["ChecksumCRC32"]
    assert "ContentEncoding" not in g  # aws-chunked is transport framing, never stored
    s3.put_object(Bucket="tls", Key="gz", Body=b"x", ContentEncoding="gzip")
    assert s3.head_object(Bucket="tls", Key="gz")["ContentEncoding"] == "gzip"
    src = tmp_path / "f"
    src.write_bytes(os.urandom(11 * MiB))
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(str(src), "tls", "big", Config=cfg)
    assert s3.head_object(Bucket="tls", Key="big")["ETag"].endswith('-3"')
    key = os.urandom(32)
    ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    s3.put_object(Bucket="tls", Key="c", Body=b"customer", **ssec)
    assert s3.get_object(Bucket="tls", Key="c", **ssec)["Body"].read() == b"customer"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="tls", Key="c")
    assert err(e) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.get_object(
            Bucket="tls", Key="c", SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32)
        )
    assert err(e) == ("AccessDenied", 403)
    for path in Path(srv.data_dir).rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes()


def test_virtual_host_style(server):
    s3 = server.boto("s3")
    s3.create_bucket(Bucket="vhost")
    s3.put_object(Bucket="vhost", Key="a/b", Body=b"v")
    host = f"vhost.localhost:{server.port}"

    def to_virtual_host(request, **_):
        request.url = request.url.replace("/vhost/", "/", 1).replace("/vhost?", "/?", 1)
        if request.url.endswith("/vhost"):
            request.url = request.url[: -len("vhost")]
        request.headers["Host"] = host

    s3.meta.events.register_first("before-sign.s3", to_virtual_host)
    assert s3.get_object(Bucket="vhost", Key="a/b")["Body"].read() == b"v"
    assert [c["Key"] for c in s3.list_objects_v2(Bucket="vhost")["Contents"]] == ["a/b"]


def test_put_cut_short_by_kill9_leaves_nothing(server):
    s3 = server.boto("s3")
    s3.create_bucket(Bucket="crash")
    s3.put_object(Bucket="crash", Key="kept", Body=b"kept")
    blobs = Path(server.data_dir) / "s3" / "blobs"
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "crash", "Key": "partial"}, ExpiresIn=60
    )
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("PUT", f"{u.path}?{u.query}")
    conn.putheader("Content-Length", str(8 * MiB))
    conn.endheaders()
    conn.send(os.urandom(3 * MiB))
    server.kill9()
    conn.close()
    server.restart()
    s3 = server.boto("s3")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="crash", Key="partial")
    assert err(e) == ("404", 404)
    assert s3.get_object(Bucket="crash", Key="kept")["Body"].read() == b"kept"
    after = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    assert after == before
