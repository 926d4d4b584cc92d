"""Client-side SigV4: sign a request's headers or presign a URL (tests, tools, load
generator). Re-exported by s3sim.http.sigv4."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from s3sim.http.sigv4 import (
    ALGORITHM,
    UNSIGNED_PAYLOAD,
    Scope,
    canonical_headers,
    canonical_queries,
    canonical_request,
    canonical_uris,
    string_to_sign,
    uri_encode,
)
from s3sim.http.sigv4_keys import sign, signing_key


def _host(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host, parts.path or "/", parts.query


def _client_canonical(
    method: str, url: str, headers: Mapping[str, str], payload: str, service: str, presign: bool
) -> tuple[str, tuple[str, ...]]:
    host, path, query = _host(url)
    all_headers = {k.lower(): v for k, v in headers.items()}
    all_headers.setdefault("host", host)
    signed = tuple(sorted(all_headers))
    uri = canonical_uris(path, service)[0]
    q = canonical_queries(query, presign)[0]
    block = canonical_headers(signed, all_headers.items())
    return canonical_request(method, uri, q, block, signed, payload), signed


def sign_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_hash: str,
    access_key: str,
    secret: str,
    region: str,
    service: str,
    amz_date: str,
) -> dict[str, str]:
    """Headers to send: `headers` plus Host, X-Amz-Date, (for s3) x-amz-content-sha256,
    and Authorization. `url` must already be percent-encoded as it will be sent."""
    out = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-amz-date")}
    if not any(k.lower() == "host" for k in out):
        out["Host"] = _host(url)[0]
    out["X-Amz-Date"] = amz_date
    if service == "s3" and not any(k.lower() == "x-amz-content-sha256" for k in out):
        out["x-amz-content-sha256"] = payload_hash
    scope = Scope(access_key, amz_date[:8], region, service)
    canonical, signed = _client_canonical(method, url, out, payload_hash, service, False)
    key = signing_key(secret, scope.date, region, service)
    signature = sign(key, string_to_sign(amz_date, scope, canonical))
    out["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope.text}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return out


def presign_url(
    method: str,
    url: str,
    access_key: str,
    secret: str,
    region: str,
    service: str,
    amz_date: str,
    expires: int = 3600,
    headers: Mapping[str, str] | None = None,
) -> str:
    """A presigned URL (query authentication); the payload is UNSIGNED-PAYLOAD."""
    scope = Scope(access_key, amz_date[:8], region, service)
    hdrs = dict(headers or {})
    signed_names = sorted({"host", *(k.lower() for k in hdrs)})
    auth = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope.text}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", ";".join(signed_names)),
    ]
    sep = "&" if urlsplit(url).query else "?"
    url = url + sep + "&".join(f"{k}={uri_encode(v)}" for k, v in auth)
    canonical, _ = _client_canonical(method, url, hdrs, UNSIGNED_PAYLOAD, service, True)
    key = signing_key(secret, scope.date, region, service)
    return url + "&X-Amz-Signature=" + sign(key, string_to_sign(amz_date, scope, canonical))
