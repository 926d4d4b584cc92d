"""SigV4 against botocore's own signer (an independent implementation) and AWS's vectors."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict, CIMultiDictProxy

from s3sim.http import sigv2, sigv4, sigv4_keys

AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = datetime(2026, 1, 2, 3, 4, 5)
AMZ_DATE = "20260102T030405Z"
HOST = "127.0.0.1:4566"


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: WHEN)


def boto_sign(signer_cls, service, method, url, headers=None, body=b"", **kw) -> AWSRequest:
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    signer_cls(Credentials(AK, SK), service, "us-east-1", **kw).add_auth(req)
    return req


def received(req: AWSRequest, extra_headers=()) -> tuple[sigv4.ReceivedRequest, CIMultiDict]:
    parts = urlsplit(req.url)
    headers = CIMultiDict([("Host", parts.netloc), *req.headers.items(), *extra_headers])
    r = sigv4.ReceivedRequest(req.method, parts.path, parts.query, tuple(headers.items()))
    return r, headers


def check(req: AWSRequest, payload_hash: str, secret: str = SK, **changes) -> str:
    r, headers = received(req)
    info = sigv4.find_signature(r.raw_query, headers)
    assert info is not None
    if changes:
        r = sigv4.ReceivedRequest(**{**r.__dict__, **changes})
    key = sigv4_keys.signing_key(secret, info.scope.date, info.scope.region, info.scope.service)
    return sigv4.verify(info, key, r, payload_hash)


S3_URLS = [
    "http://127.0.0.1:4566/bucket/key",
    "http://127.0.0.1:4566/",
    "http://127.0.0.1:4566/bucket/a%20b/%C3%BC~%21%2A%28%29%27.txt",
    "http://127.0.0.1:4566/bucket?list-type=2&prefix=a%20b&delimiter=%2F",
    "http://127.0.0.1:4566/bucket/k?uploads",
    "http://127.0.0.1:4566/bucket/k?partNumber=2&uploadId=abc%2Bdef",
]


@pytest.mark.parametrize("url", S3_URLS)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_s3_header_signature_from_botocore_verifies(url, method):
    body = b"hello world" if method == "PUT" else b""
    req = boto_sign(
        botocore.auth.S3SigV4Auth, "s3", method, url, {"X-Amz-Meta-A": "  x   y "}, body
    )
    payload = req.headers["X-Amz-Content-SHA256"]
    assert payload == hashlib.sha256(body).hexdigest()
    assert check(req, payload) == req.headers["Authorization"].rsplit("Signature=", 1)[1]


def test_tampering_is_detected():
    req = boto_sign(botocore.auth.S3SigV4Auth, "s3", "PUT", S3_URLS[2], {"X-Amz-Meta-A": "1"}, b"x")
    payload = req.headers["X-Amz-Content-SHA256"]
    check(req, payload)
    for change in (
        {"method": "POST"},
        {"raw_path": "/bucket/other"},
        {"raw_query": "acl"},
        {
            "headers": tuple(
                (k, "2" if k == "X-Amz-Meta-A" else v) for k, v in received(req)[1].items()
            )
        },
    ):
        with pytest.raises(sigv4.SignatureMismatch):
            check(req, payload, **change)
    with pytest.raises(sigv4.SignatureMismatch):
        check(req, hashlib.sha256(b"y").hexdigest())
    with pytest.raises(sigv4.SignatureMismatch):
        check(req, payload, secret="wrong")


def test_missing_signed_header_is_a_mismatch():
    req = boto_sign(botocore.auth.S3SigV4Auth, "s3", "GET", S3_URLS[0], {"X-Amz-Meta-A": "1"})
    r, headers = received(req)
    info = sigv4.find_signature("", headers)
    stripped = tuple((k, v) for k, v in r.headers if k != "X-Amz-Meta-A")
    key = sigv4_keys.signing_key(SK, info.scope.date, "us-east-1", "s3")
    with pytest.raises(sigv4.SignatureMismatch, match="x-amz-meta-a"):
        sigv4.verify(info, key, sigv4.ReceivedRequest("GET", r.raw_path, "", stripped), "x")


def test_date_header_instead_of_x_amz_date():
    req = boto_sign(botocore.auth.SigV4Auth, "kms", "POST", "http://h:1/", {"Date": "x"}, b"{}")
    assert "X-Amz-Date" not in req.headers and req.headers["Date"].startswith("Fri, 02 Jan 2026")
    check(req, hashlib.sha256(b"{}").hexdigest())


def test_json_service_signature_from_botocore_verifies():
    body = b'{"KeyId": "alias/x"}'
    headers = {
        "X-Amz-Target": "TrentService.DescribeKey",
        "Content-Type": "application/x-amz-json-1.1",
    }
    req = boto_sign(botocore.auth.SigV4Auth, "kms", "POST", "http://127.0.0.1:4566/", headers, body)
    assert "X-Amz-Content-SHA256" not in req.headers
    check(req, hashlib.sha256(body).hexdigest())


def test_rest_json_path_is_normalized_and_double_encoded():
    url = "http://127.0.0.1:4566/tags/arn%3Aaws%3Aconnect%3Aus-east-1%3A1%3Ainstance%2Fabc"
    req = boto_sign(botocore.auth.SigV4Auth, "connect", "GET", url)
    assert sigv4.canonical_uris(urlsplit(url).path, "connect")[0].startswith("/tags/arn%253A")
    check(req, sigv4.EMPTY_SHA256)
    dotted = boto_sign(botocore.auth.SigV4Auth, "connect", "GET", "http://h:1/a/./b/../c//d")
    r, _ = received(dotted)
    assert sigv4.canonical_uris(r.raw_path, "connect")[0] == "/a/c/d"
    check(dotted, sigv4.EMPTY_SHA256)


def test_presigned_url_from_botocore_verifies_and_carries_expiry():
    req = boto_sign(botocore.auth.S3SigV4QueryAuth, "s3", "GET", S3_URLS[2], expires=60)
    r, headers = received(req)
    info = sigv4.find_signature(r.raw_query, headers)
    assert info.presigned and info.expires == 60 and info.amz_date == AMZ_DATE
    assert info.scope == sigv4.Scope(AK, "20260102", "us-east-1", "s3")
    check(req, sigv4.UNSIGNED_PAYLOAD)
    with pytest.raises(sigv4.SignatureMismatch):
        check(
            req, sigv4.UNSIGNED_PAYLOAD, raw_query=r.raw_query.replace("Expires=60", "Expires=61")
        )


def test_client_signer_matches_botocore():
    body = b"payload"
    digest = hashlib.sha256(body).hexdigest()
    url = S3_URLS[3]
    ours = sigv4.sign_headers(
        "PUT", url, {"Content-Type": "text/plain"}, digest, AK, SK, "us-east-1", "s3", AMZ_DATE
    )
    theirs = boto_sign(
        botocore.auth.S3SigV4Auth, "s3", "PUT", url, {"Content-Type": "text/plain"}, body
    )
    assert ours["Authorization"] == theirs.headers["Authorization"]
    kms_body = b"{}"
    h = {"X-Amz-Target": "TrentService.ListKeys"}
    ours = sigv4.sign_headers(
        "POST",
        "http://127.0.0.1:4566/",
        h,
        hashlib.sha256(kms_body).hexdigest(),
        AK,
        SK,
        "us-east-1",
        "kms",
        AMZ_DATE,
    )
    theirs = boto_sign(
        botocore.auth.SigV4Auth, "kms", "POST", "http://127.0.0.1:4566/", h, kms_body
    )
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert "x-amz-content-sha256" not in {k.lower() for k in ours}


def test_client_presign_matches_botocore():
    url = "http://127.0.0.1:4566/bucket/a%20b"
    ours = sigv4.presign_url("GET", url, AK, SK, "us-east-1", "s3", AMZ_DATE, expires=300)
    theirs = boto_sign(botocore.auth.S3SigV4QueryAuth, "s3", "GET", url, expires=300)
    assert ours == theirs.url


CLAIM = f"Credential={AK}/20260102/us-east-1/s3/aws4_request"


@pytest.mark.parametrize(
    "value",
    [
        f"AWS4-HMAC-SHA256 {CLAIM}, SignedHeaders=host;x-amz-date, Signature=ab12",  # usual
        f"AWS4-HMAC-SHA256 {CLAIM},SignedHeaders=host;x-amz-date,Signature=ab12",
        f"AWS4-HMAC-SHA256 Signature=ab12, {CLAIM}, SignedHeaders=host;x-amz-date",
        f"  AWS4-HMAC-SHA256 {CLAIM}, SignedHeaders=x-amz-date;Host, Signature=ab12 ",
    ],
)
def test_every_layout_parses_alike(value):
    """The usual layout (signature last) takes the cached path; the others the parser."""
    for _ in range(2):  # the second time from the cache
        info = sigv4.parse_authorization(value, AMZ_DATE)
        assert info.signature == "ab12" and info.amz_date == AMZ_DATE
        assert info.scope == sigv4.Scope(AK, "20260102", "us-east-1", "s3")
        assert sorted(info.signed_headers) == ["host", "x-amz-date"]


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (
            "AWS4-HMAC-SHA384 Credential=x, SignedHeaders=host, Signature=ab",
            sigv4.MalformedAuth,
            "Unsupported",
        ),
        ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab", sigv4.MalformedAuth, "'Credential'"),
        (f"AWS4-HMAC-SHA256 {CLAIM}, Signature=ab", sigv4.MalformedAuth, "'SignedHeaders'"),
        (f"AWS4-HMAC-SHA256 {CLAIM}, SignedHeaders=host", sigv4.MalformedAuth, "'Signature'"),
        (
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=ab",
            sigv4.MalformedAuth,
            "X-Amz-Credential",
        ),
        (f"AWS4-HMAC-SHA256 {CLAIM}, SignedHeaders= , Signature=ab", sigv4.MalformedAuth, "empty"),
    ],
)
def test_a_malformed_claim_fails_alike_every_time(value, error, match):
    for _ in range(2):  # failures are not cached
        with pytest.raises(error, match=match):
            sigv4.parse_authorization(value, AMZ_DATE)


def test_parse_errors():
    with pytest.raises(sigv4.MalformedAuth):
        sigv4.parse_authorization("AWS4-HMAC-SHA256 Credential=a/b", AMZ_DATE)
    with pytest.raises(sigv4.MalformedAuth):
        sigv4.parse_authorization("AWS AKIA:sig", AMZ_DATE)
    good = (
        f"AWS4-HMAC-SHA256 Credential={AK}/20260102/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=ab"
    )
    assert sigv4.parse_authorization(good, AMZ_DATE).signed_headers == ("host",)
    with pytest.raises(sigv4.MissingDate):
        sigv4.parse_authorization(good, None)
    with pytest.raises(sigv4.MalformedAuth, match="Date in Credential scope"):
        sigv4.parse_authorization(good, "20260103T000000Z")
    q = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{AK}/20260102/us-east-1/s3/aws4_request",
        "X-Amz-Date": AMZ_DATE,
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": "ab",
        "X-Amz-Expires": "604801",
    }
    with pytest.raises(sigv4.MalformedQueryAuth, match="604800"):
        sigv4.parse_presigned(q)
    with pytest.raises(sigv4.MalformedQueryAuth):
        sigv4.parse_presigned({**q, "X-Amz-Expires": "soon"})
    with pytest.raises(sigv4.MalformedQueryAuth):
        sigv4.parse_presigned({k: v for k, v in q.items() if k != "X-Amz-Signature"})
    assert sigv4.find_signature("prefix=a", CIMultiDict()) is None


def test_signing_keys_are_cached_per_scope():
    keys = sigv4_keys.SigningKeys(max_entries=2)
    a = sigv4.Scope(AK, "20260102", "us-east-1", "s3")
    assert keys.get(SK, a) is keys.get(SK, a)
    assert keys.get(SK, a) == sigv4_keys.signing_key(SK, "20260102", "us-east-1", "s3")
    assert keys.get(SK, sigv4.Scope(AK, "20260102", "us-east-1", "kms")) != keys.get(SK, a)


def test_streaming_signatures_match_aws_published_example():
    """The chunked-upload example of the S3 API reference (sigv4-streaming)."""
    headers = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", sigv4.STREAMING_SIGNED),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ]
    names = tuple(sorted(k.lower() for k, _ in headers))
    scope = sigv4.Scope(AK, "20130524", "us-east-1", "s3")
    canonical = sigv4.canonical_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        sigv4.canonical_headers(names, headers),
        names,
        sigv4.STREAMING_SIGNED,
    )
    key = sigv4_keys.signing_key(SK, "20130524", "us-east-1", "s3")
    seed = sigv4_keys.sign(key, sigv4.string_to_sign("20130524T000000Z", scope, canonical))
    assert seed == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    s = sigv4.StreamSigning(key, "20130524T000000Z", scope, seed)
    c1 = s.chunk(seed, hashlib.sha256(b"a" * 65536).hexdigest())
    assert c1 == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    c2 = s.chunk(c1, hashlib.sha256(b"a" * 1024).hexdigest())
    assert c2 == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    assert s.chunk(c2, sigv4.EMPTY_SHA256) == (
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    )


def test_sigv2_presigned_url_from_botocore_verifies(monkeypatch):
    monkeypatch.setattr(botocore.auth.time, "time", lambda: 1_800_000_000)
    url = "http://127.0.0.1:4566/bucket/a%20b?response-content-type=text%2Fplain&versionId=null"
    req = AWSRequest(method="GET", url=url, headers={})
    botocore.auth.HmacV1QueryAuth(Credentials(AK, SK), expires=60).add_auth(req)
    parts = urlsplit(req.url)
    assert sigv2.is_presigned_v2(parts.query)
    info = sigv2.parse(parts.query)
    assert info.expires == 1_800_000_060 and info.access_key == AK
    sigv2.verify(info, SK, "GET", parts.path, parts.query, [("Host", HOST)], None)
    with pytest.raises(sigv4.SignatureMismatch):
        sigv2.verify(info, SK, "PUT", parts.path, parts.query, [("Host", HOST)], None)
    with pytest.raises(sigv4.SignatureMismatch):
        sigv2.verify(info, "wrong", "GET", parts.path, parts.query, [], None)
    # virtual-host style: the signed resource still names the bucket
    vpath = parts.path.removeprefix("/bucket")
    sigv2.verify(info, SK, "GET", vpath, parts.query, [], "bucket")


@pytest.mark.parametrize(
    "text",
    [
        "20260102T030405Z",
        "20261231T235959Z",
        "20240229T000000Z",
        "20260102t030405z",
        "20250229T000000Z",
        "20261301T000000Z",
        "20260132T000000Z",
        "20260102T240000Z",
        "20260102T036000Z",
        "20260102T030460Z",
        "20260102T030405",
        "20260102 030405Z",
        "2026010T030405ZZ",
        "202612T030405Z",
        "2026-01-02T03:04:05Z",
        "２０２６0102T030405Z",
        "",
    ],
)
def test_parse_amz_date_agrees_with_strptime(text: str) -> None:
    try:
        expected = datetime.strptime(text, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        with pytest.raises(sigv4.MissingDate, match="Invalid date"):
            sigv4.parse_amz_date(text)
        return
    assert sigv4.parse_amz_date(text) == expected


def test_s3_paths_have_one_candidate_only_when_nothing_needs_encoding():
    assert sigv4.canonical_uris("/b/dir/obj-0001_v1.2~x", "s3") == ["/b/dir/obj-0001_v1.2~x"]
    assert sigv4.canonical_uris("/b/a%20b", "s3") == ["/b/a%20b"]  # already strict
    assert sigv4.canonical_uris("/b/a+b", "s3") == ["/b/a+b", "/b/a%2Bb"]
    assert sigv4.canonical_uris("/b/%7Ex", "s3") == ["/b/%7Ex", "/b/~x"]
    assert sigv4.canonical_queries("", False) == [""]
    assert sigv4.canonical_queries("b=2&a=1", False) == ["a=1&b=2"]


@pytest.mark.parametrize("key_len", [0, 1, 32, 63, 64, 65, 200])
def test_hmac_key_is_hmac_sha256_under_the_same_bytes(key_len):
    import hmac
    import os

    key = os.urandom(key_len)
    fast = sigv4_keys.HmacKey(key)
    assert fast == key and isinstance(fast, bytes)
    for msg in (b"", b"x", os.urandom(1000)):
        assert fast.digest(msg) == hmac.digest(key, msg, "sha256")
    assert sigv4_keys.sign(fast, "text") == sigv4_keys.sign(key, "text")
    scope = sigv4.Scope.parse("AK/20260102/us-east-1/s3/aws4_request")
    assert type(sigv4_keys.SigningKeys().get(SK, scope)) is sigv4_keys.HmacKey  # signs fast


def test_signed_values_from_a_multidict_equal_those_from_pairs():
    """The server hands verify aiohttp's headers (a lookup per signed name); clients and
    tests hand it pairs (one pass): same values, same missing names."""
    rng = random.Random(5)
    pool = ["Host", "host", "X-Amz-Date", "x-amz-meta-a", "Content-Type", "Range", "other"]
    values = ["a", "  a  b ", "", "x\ty", "1,2"]
    for _ in range(3000):
        pairs = [(rng.choice(pool), rng.choice(values)) for _ in range(rng.randint(0, 8))]
        names = sorted({n.lower() for n in rng.sample(pool, rng.randint(1, 4))})
        multi = CIMultiDictProxy(CIMultiDict(pairs))
        assert sigv4._signed_values(names, multi) == sigv4._signed_values(names, pairs)
