"""AWS Signature Version 4, pure (no aiohttp): server-side verification and a client signer.

Server side: `find_signature` parses the Authorization header or the presigned query,
`verify` recomputes the signature from the request as received (raw path and query).
Streaming bodies: `chunk_signature` and `trailer_signature` chain from the seed
signature. Client side: `sign_headers` and `presign_url` (used by tests and tools).
Signing keys (derivation, cache, HMAC): sigv4_keys.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Protocol
from urllib.parse import quote, unquote

from kmscore.frozen import frozen
from s3sim.http.sigv4_keys import sign

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
UNRESERVED = "-_.~"


class MultiHeaders(Protocol):
    """A case-insensitive multidict (aiohttp's request headers)."""

    def getall(self, key: str, default: Sequence[str]) -> Sequence[str]: ...


# a request's headers: (name, value) pairs, or a case-insensitive multidict
ReceivedHeaders = Iterable[tuple[str, str]] | MultiHeaders


class SigV4Error(Exception):
    """A request whose signature cannot be accepted; `problem` keys s3sim.http.errors."""

    problem = "malformed"

    def __init__(self, message: str = "", **details: str) -> None:
        super().__init__(message)
        self.message = message
        self.details = details  # extra fields S3 puts in its error body


class MalformedAuth(SigV4Error):
    problem = "malformed"


class MalformedQueryAuth(SigV4Error):
    problem = "malformed_query"


class MissingDate(SigV4Error):
    problem = "missing_date"


class SignatureMismatch(SigV4Error):
    problem = "bad_signature"


@frozen
class Scope:
    """The credential scope: <key>/<yyyymmdd>/<region>/<service>/aws4_request."""

    access_key: str
    date: str
    region: str
    service: str

    @property
    def text(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @staticmethod
    @lru_cache(maxsize=256)  # one credential per client and day: parsed once
    def parse(credential: str, error: type[SigV4Error] = MalformedAuth) -> Scope:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
            raise error(f"Error parsing the X-Amz-Credential parameter: {credential!r}")
        if len(parts[1]) != 8 or not parts[1].isdigit():
            raise error(f"Invalid credential date {parts[1]!r}")
        return Scope(parts[0], parts[1], parts[2], parts[3])


@frozen
class SignedInfo:
    """What a request claims: from the Authorization header or a presigned query."""

    presigned: bool
    scope: Scope
    amz_date: str
    signed_headers: tuple[str, ...]
    signature: str
    expires: int | None = None

    @property
    def time(self) -> datetime:
        return parse_amz_date(self.amz_date)


# -- parsing -----------------------------------------------------------------------------


def parse_amz_date(text: str) -> datetime:
    """`YYYYMMDDTHHMMSSZ` as an aware UTC datetime; MissingDate when invalid.

    The canonical 16-character form is sliced directly (strptime cost ~5% of a small
    request); anything else goes through strptime, so what is accepted is unchanged.
    """
    fast = _parse_canonical(text)
    if fast is not None:
        return fast
    try:
        return datetime.strptime(text, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise MissingDate(f"Invalid date {text!r}") from None


@lru_cache(maxsize=1024)  # requests signed in the same second share their date
def _parse_canonical(text: str) -> datetime | None:
    if len(text) != 16 or text[8] not in "Tt" or text[15] not in "Zz":
        return None
    digits = text[:8] + text[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None  # out of range: strptime gives the same verdict and error


def format_amz_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime(AMZ_DATE_FORMAT)


def parse_authorization(value: str, amz_date: str | None) -> SignedInfo:
    """Parse `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    head, sep, signature = value.rpartition(", Signature=")
    if sep and signature.isalnum():  # the usual layout: what precedes is parsed once
        fields = _claim(head)
    else:
        fields = _fields(value)
        signature = fields["Signature"]
    if not amz_date:
        raise MissingDate("AWS authentication requires a valid Date or x-amz-date header")
    parse_amz_date(amz_date)
    scope = Scope.parse(fields["Credential"])
    _check_scope_date(scope, amz_date, MalformedAuth)
    return SignedInfo(False, scope, amz_date, _signed_headers(fields["SignedHeaders"]), signature)


_REQUIRED = ("Credential", "SignedHeaders", "Signature")


@lru_cache(maxsize=256)  # one client signs request after request with the same claim
def _claim(head: str) -> dict[str, str]:
    """The fields of an Authorization value without its trailing `, Signature=...`."""
    return _fields(head, _REQUIRED[:2])


def _fields(value: str, required: tuple[str, ...] = _REQUIRED) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise MalformedAuth(f"Unsupported authorization type {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, val = part.strip().partition("=")
        if eq:
            fields[name] = val.strip()
    missing = [n for n in required if n not in fields]
    if missing:
        raise MalformedAuth(f"Authorization header requires '{missing[0]}' parameter")
    return fields


def parse_presigned(query: Mapping[str, str]) -> SignedInfo:
    """Parse X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature."""
    names = ("Algorithm", "Credential", "Date", "SignedHeaders", "Signature")
    for n in names:
        if f"X-Amz-{n}" not in query:
            raise MalformedQueryAuth(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                "and X-Amz-Expires parameters."
            )
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise MalformedQueryAuth('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    expires = _parse_expires(query.get("X-Amz-Expires"))
    amz_date = query["X-Amz-Date"]
    try:
        parse_amz_date(amz_date)
    except MissingDate:
        raise MalformedQueryAuth(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        ) from None
    scope = Scope.parse(query["X-Amz-Credential"], MalformedQueryAuth)
    _check_scope_date(scope, amz_date, MalformedQueryAuth)
    signed = _signed_headers(query["X-Amz-SignedHeaders"])
    return SignedInfo(True, scope, amz_date, signed, query["X-Amz-Signature"], expires)


def _parse_expires(raw: str | None) -> int:
    if raw is None:
        raise MalformedQueryAuth("X-Amz-Expires is required")
    try:
        expires = int(raw)
    except ValueError:
        raise MalformedQueryAuth("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise MalformedQueryAuth("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise MalformedQueryAuth(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    return expires


def _check_scope_date(scope: Scope, amz_date: str, error: type[SigV4Error]) -> None:
    if scope.date != amz_date[:8]:
        raise error(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: {scope.date!r} != {amz_date[:8]!r}"
        )


@lru_cache(maxsize=256)  # a client signs the same header list request after request
@lru_cache(maxsize=256)
def _signed_headers(text: str) -> tuple[str, ...]:
    names = tuple(h.strip().lower() for h in text.split(";") if h.strip())
    if not names:
        raise MalformedAuth("SignedHeaders is empty")
    return names


def _http_date(headers: Mapping[str, str]) -> str | None:
    """The Date header (RFC 7231) as an amz date, when there is no X-Amz-Date."""
    raw = headers.get("date")
    if not raw:
        return None
    try:
        return format_amz_date(parsedate_to_datetime(raw))
    except (TypeError, ValueError):
        return None


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs, in order ('+' is a literal plus, as AWS signs it)."""
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def find_signature(raw_query: str, headers: Mapping[str, str]) -> SignedInfo | None:
    """The request's SigV4 claim (header or presigned query); None when it has neither."""
    auth = headers.get("authorization")
    if auth is not None:
        return parse_authorization(auth, headers.get("x-amz-date") or _http_date(headers))
    if "X-Amz-" not in raw_query and "x-amz-" not in raw_query:
        return None
    query = dict(parse_query(raw_query))
    if "X-Amz-Signature" not in query and "X-Amz-Credential" not in query:
        return None
    return parse_presigned(query)


# -- canonical request -------------------------------------------------------------------


_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")


def uri_encode(text: str, safe: str = UNRESERVED) -> str:
    return quote(text, safe=safe)


def normalize_path(path: str) -> str:
    """RFC 3986 dot-segment removal with empty segments dropped (non-S3 services)."""
    if not path:
        return "/"
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    tail = "/" if path.endswith("/") and out else ""
    return "/" + "/".join(out) + tail


def canonical_uris(raw_path: str, service: str) -> list[str]:
    """Candidate canonical URIs for a received raw path, the client's likeliest first.

    S3 signs the path as sent (encoded once); other services normalize it and encode it
    again. A second candidate re-encodes the decoded path strictly (other SDKs' choice).
    """
    path = raw_path or "/"
    if service == "s3":
        if _PLAIN_PATH.fullmatch(path):  # nothing to decode or encode: one candidate
            return [path]
        candidates = [path, uri_encode(unquote(path), "/" + UNRESERVED)]
    else:
        normalized = normalize_path(path)
        candidates = [
            uri_encode(normalized, "/~"),
            uri_encode(uri_encode(unquote(normalized), "/" + UNRESERVED), "/" + UNRESERVED),
        ]
    return list(dict.fromkeys(candidates))


def canonical_queries(raw_query: str, drop_signature: bool) -> list[str]:
    """Candidate canonical query strings: strictly re-encoded, then as the client sent it."""
    if not raw_query:
        return [""]
    strict = []
    raw = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if drop_signature and unquote(name) == "X-Amz-Signature":
            continue
        raw.append((name, value))
        strict.append((uri_encode(unquote(name)), uri_encode(unquote(value))))
    forms = ["&".join(f"{k}={v}" for k, v in sorted(pairs)) for pairs in (strict, raw)]
    return list(dict.fromkeys(forms))


def canonical_headers(names: Iterable[str], headers: Iterable[tuple[str, str]]) -> str:
    """`name:value\\n` for each signed header (values trimmed, repeats joined with ',')."""
    return _header_block(_signed_values(names, headers))


def _signed_values(names: Iterable[str], headers: ReceivedHeaders) -> dict:
    """{signed name: its canonical value (trimmed, repeats joined with ','), or None when
    the request lacks it}: from a case-insensitive multidict, a lookup per signed name;
    from (name, value) pairs, one pass over them."""
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return {
            n: " ".join(v[0].split()) if len(v := getall(n, ())) == 1 else _joined(v) for n in names
        }
    wanted: dict[str, str | None] = dict.fromkeys(names)
    for name, value in headers:
        name = name.lower()
        if name in wanted:
            value = " ".join(value.split())
            seen = wanted[name]
            wanted[name] = value if seen is None else f"{seen},{value}"
    return wanted


def _joined(values: Sequence[str]) -> str | None:
    """Repeated headers' canonical value; None for none."""
    return ",".join([" ".join(v.split()) for v in values]) if values else None


def _header_block(wanted: dict[str, str | None]) -> str:
    return "".join([f"{n}:{wanted[n]}\n" for n in sorted(wanted)])


def canonical_request(
    method: str, uri: str, query: str, headers_block: str, signed: Iterable[str], payload: str
) -> str:
    return "\n".join([method.upper(), uri, query, headers_block, ";".join(sorted(signed)), payload])


def string_to_sign(amz_date: str, scope: Scope, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope.text}\n{digest}"


# -- verification ------------------------------------------------------------------------


@frozen
class ReceivedRequest:
    """A request as received, in the terms SigV4 needs."""

    method: str
    raw_path: str
    raw_query: str
    headers: ReceivedHeaders


def verify(info: SignedInfo, key: bytes, req: ReceivedRequest, payload_hash: str) -> str:
    """Check the signature; return it (the seed for streaming chunks) or raise."""
    wanted = _signed_values(info.signed_headers, req.headers)
    missing = [h for h, value in wanted.items() if value is None]
    if "host" not in wanted or missing:
        raise SignatureMismatch(
            "There were headers present in the request which were not signed"
            if not missing
            else f"Signed header {missing[0]!r} is missing from the request"
        )
    block = _header_block(wanted)
    first: tuple[str, str] | None = None
    for uri in canonical_uris(req.raw_path, info.scope.service):
        for query in canonical_queries(req.raw_query, info.presigned):
            canonical = canonical_request(
                req.method, uri, query, block, info.signed_headers, payload_hash
            )
            text = string_to_sign(info.amz_date, info.scope, canonical)
            expected = sign(key, text)
            if hmac.compare_digest(expected, info.signature):
                return expected
            first = first or (canonical, text)
    assert first is not None
    raise SignatureMismatch(
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        AWSAccessKeyId=info.scope.access_key,
        StringToSign=first[1],
        SignatureProvided=info.signature,
        CanonicalRequest=first[0],
    )


def chunk_signature(
    key: bytes, amz_date: str, scope: Scope, previous: str, data_sha256: str
) -> str:
    """Signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), given the
    hex SHA-256 of the chunk's data."""
    text = "\n".join(
        ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope.text, previous, EMPTY_SHA256, data_sha256]
    )
    return sign(key, text)


@frozen
class StreamSigning:
    """What a streaming body's chunk signatures chain from (the seed is the request's)."""

    key: bytes
    amz_date: str
    scope: Scope
    seed: str

    def chunk(self, previous: str, data_sha256: str) -> str:
        return chunk_signature(self.key, self.amz_date, self.scope, previous, data_sha256)

    def trailer(self, previous: str, trailers: Iterable[tuple[str, str]]) -> str:
        return trailer_signature(self.key, self.amz_date, self.scope, previous, trailers)


def trailer_signature(
    key: bytes, amz_date: str, scope: Scope, previous: str, trailers: Iterable[tuple[str, str]]
) -> str:
    """Signature of the trailing headers (x-amz-trailer-signature)."""
    block = "".join(f"{n.lower()}:{v.strip()}\n" for n, v in trailers)
    digest = hashlib.sha256(block.encode()).hexdigest()
    return sign(key, f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope.text}\n{previous}\n{digest}")


# The client side (sign_headers, presign_url) lives in sigv4_client, to keep this module
# small; it is reachable from here as well.
_CLIENT = ("sign_headers", "presign_url")


def __getattr__(name: str) -> object:
    if name in _CLIENT:
        from s3sim.http import sigv4_client

        return getattr(sigv4_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
