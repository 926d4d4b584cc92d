"""Our signer must produce exactly botocore's SigV4 signature for the same request."""

import datetime as dt
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from s3sim.loadtest.client import error_code, error_message, sse_headers
from s3sim.loadtest.rawhttp import Response
from s3sim.loadtest.signing import UNSIGNED_PAYLOAD, Signer, canonical_query, uri_encode_path

AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20260105T101112Z"


def botocore_auth(method, url, headers, payload_hash, service, body=b""):
    req = botocore.awsrequest.AWSRequest(method=method, url=url, headers=headers, data=body)
    req.headers["X-Amz-Content-SHA256"] = payload_hash
    s3_config = {"payload_signing_enabled": payload_hash != UNSIGNED_PAYLOAD}
    req.context["client_config"] = mock.Mock(s3=s3_config)
    creds = botocore.credentials.Credentials(AK, SK)
    cls = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    when = dt.datetime(2026, 1, 5, 10, 11, 12)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        cls(creds, service, "us-east-1").add_auth(req)
    return req.headers["Authorization"]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-server-side-encryption": "aws:kms"},
        {"x-amz-meta-note": "  two  spaces\tand a tab ", "content-type": "text/plain"},
    ],
)
def test_s3_put_matches_botocore(headers):
    path = "/bucket/dir/k ey+1.txt"
    ours = Signer(AK, SK, "us-east-1", "s3").authorization(
        "PUT",
        uri_encode_path(path),
        "",
        {
            "host": "127.0.0.1:4566",
            "x-amz-date": AMZ_DATE,
            "x-amz-content-sha256": UNSIGNED_PAYLOAD,
            **headers,
        },
        UNSIGNED_PAYLOAD,
        AMZ_DATE,
    )
    # https: over http botocore would hash the (empty) body instead of UNSIGNED-PAYLOAD
    url = "https://127.0.0.1:4566" + uri_encode_path(path)
    theirs = botocore_auth("PUT", url, headers, UNSIGNED_PAYLOAD, "s3")
    assert ours == theirs


def test_query_is_canonical_and_matches_botocore():
    query = {"uploadId": "a/b+c", "partNumber": "2"}
    cq = canonical_query(query)
    assert cq == "partNumber=2&uploadId=a%2Fb%2Bc"
    ours = Signer(AK, SK, "us-east-1", "s3").authorization(
        "PUT",
        "/b/k",
        cq,
        {
            "host": "localhost:9000",
            "x-amz-date": AMZ_DATE,
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
        UNSIGNED_PAYLOAD,
        AMZ_DATE,
    )
    theirs = botocore_auth("PUT", f"https://localhost:9000/b/k?{cq}", {}, UNSIGNED_PAYLOAD, "s3")
    assert ours == theirs


def test_error_code_from_xml_json_and_status():
    xml = Response(503, {}, b"<Error><Code>SlowDown</Code><Message>x</Message></Error>", 10)
    assert error_code(xml) == "SlowDown"
    js = Response(400, {}, b'{"__type":"com.amazonaws.kms#NotFoundException","message":"m"}', 9)
    assert error_code(js) == "NotFoundException"
    assert error_code(Response(404, {}, b"", 0)) == "HTTP404"


def test_error_message_from_xml_json_else_the_body_on_one_line():
    xml = b"<Error><Code>SlowDown</Code><Message>Reduce your rate.</Message></Error>"
    assert error_message(Response(503, {}, xml, len(xml))) == "Reduce your rate."
    js = b'{"__type":"NotFoundException","message":"Alias alias/x is not found."}'
    assert error_message(Response(400, {}, js, len(js))) == "Alias alias/x is not found."
    js2 = b'{"__type":"ResourceNotFoundException","Message":"No instance"}'
    assert error_message(Response(404, {}, js2, len(js2))) == "No instance"
    html = b"<html>\n  <body>Bad\r\n Gateway</body>\n</html>" + b"x" * 300
    assert error_message(Response(502, {}, html, len(html))).startswith(
        "<html> <body>Bad Gateway</body> </html>xxx"
    )
    assert len(error_message(Response(502, {}, html, len(html)))) <= 200
    assert error_message(Response(500, {}, b"", 0)) == ""


def test_sse_headers():
    assert sse_headers("none", None) == {}
    assert sse_headers("AES256", None) == {"x-amz-server-side-encryption": "AES256"}
    h = sse_headers("aws:kms+bucket-key", "alias/k")
    assert h["x-amz-server-side-encryption"] == "aws:kms"
    assert h["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/k"
    assert h["x-amz-server-side-encryption-bucket-key-enabled"] == "true"


def test_client_kms_request_signature_matches_botocore():
    from s3sim.loadtest.client import AwsClient, Credentials
    from s3sim.loadtest.rawhttp import Endpoint, HttpConnection

    when = dt.datetime(2026, 1, 5, 10, 11, 12, tzinfo=dt.UTC).timestamp()
    conn = HttpConnection(Endpoint.parse("https://127.0.0.1:4566"))
    client = AwsClient(conn, Credentials(AK, SK), wall_clock=lambda: when)
    body = b'{"KeyId": "alias/x", "KeySpec": "AES_256"}'
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "TrentService.GenerateDataKey",
    }
    ours = dict(headers)
    client._sign("POST", "/", "", ours, [body], None, "kms")
    assert ours["x-amz-date"] == AMZ_DATE
    req = botocore.awsrequest.AWSRequest(
        method="POST", url="https://127.0.0.1:4566/", headers=dict(headers), data=body
    )
    with mock.patch(
        "botocore.auth.get_current_datetime", return_value=dt.datetime(2026, 1, 5, 10, 11, 12)
    ):
        botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(AK, SK), "kms", "us-east-1"
        ).add_auth(req)
    assert ours["authorization"] == req.headers["Authorization"]


def test_matches_the_shared_client_signer():
    from s3sim.http.sigv4 import sign_headers

    headers = {"x-amz-server-side-encryption": "AES256"}
    shared = sign_headers(
        "PUT", "http://127.0.0.1:4566/b/k%20x", headers, UNSIGNED_PAYLOAD, AK, SK,
        "eu-west-1", "s3", AMZ_DATE,
    )  # fmt: skip
    to_sign = {
        "host": "127.0.0.1:4566",
        "x-amz-date": AMZ_DATE,
        "x-amz-content-sha256": UNSIGNED_PAYLOAD,
        **headers,
    }
    ours = Signer(AK, SK, "eu-west-1", "s3").authorization(
        "PUT", uri_encode_path("/b/k x"), "", to_sign, UNSIGNED_PAYLOAD, AMZ_DATE
    )
    assert ours == shared["Authorization"]
