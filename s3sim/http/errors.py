"""Auth and protocol errors of the HTTP layer, and their one table per wire protocol.

A problem (e.g. "bad_signature") maps, for each protocol, to (AWS code, HTTP status,
default message). Protocols: "s3" (XML error body), "json" (awsJson1_1: kms,
cloudtrail) and "rest-json" (restJson1: connect, with x-amzn-ErrorType).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from xml.sax.saxutils import escape

from aiohttp import web

S3, JSON, REST_JSON = "s3", "json", "rest-json"

PROTOCOLS: dict[str, str] = {
    "s3": S3,
    "kms": JSON,
    "cloudtrail": JSON,
    "connect": REST_JSON,
}

_SIG_MSG = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)
_TOKEN_MSG = "The security token included in the request is invalid."

# problem -> protocol -> (code, status, default message)
ERROR_TABLE: dict[str, dict[str, tuple[str, int, str]]] = {
    "missing_auth": {
        S3: ("AccessDenied", 403, "Access Denied"),
        JSON: ("MissingAuthenticationTokenException", 400, "Missing Authentication Token"),
        REST_JSON: ("MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
    },
    "unknown_key": {
        S3: (
            "InvalidAccessKeyId",
            403,
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        JSON: ("UnrecognizedClientException", 400, _TOKEN_MSG),
        REST_JSON: ("UnrecognizedClientException", 403, _TOKEN_MSG),
    },
    "bad_signature": {
        S3: ("SignatureDoesNotMatch", 403, _SIG_MSG),
        JSON: ("InvalidSignatureException", 400, _SIG_MSG),
        REST_JSON: ("InvalidSignatureException", 403, _SIG_MSG),
    },
    "skew": {
        S3: (
            "RequestTimeTooSkewed",
            403,
            "The difference between the request time and the current time is too large.",
        ),
        JSON: ("InvalidSignatureException", 400, "Signature expired"),
        REST_JSON: ("InvalidSignatureException", 403, "Signature expired"),
    },
    "expired": {
        S3: ("AccessDenied", 403, "Request has expired"),
        JSON: ("InvalidSignatureException", 400, "Signature expired"),
        REST_JSON: ("InvalidSignatureException", 403, "Signature expired"),
    },
    "malformed": {
        S3: ("AuthorizationHeaderMalformed", 400, "The authorization header is malformed"),
        JSON: ("IncompleteSignatureException", 400, "The authorization header is malformed"),
        REST_JSON: ("IncompleteSignatureException", 403, "The authorization header is malformed"),
    },
    "malformed_query": {
        S3: ("AuthorizationQueryParametersError", 400, "Invalid query authentication"),
        JSON: ("IncompleteSignatureException", 400, "Invalid query authentication"),
        REST_JSON: ("IncompleteSignatureException", 403, "Invalid query authentication"),
    },
    "missing_date": {
        S3: (
            "AccessDenied",
            403,
            "AWS authentication requires a valid Date or x-amz-date header",
        ),
        JSON: ("IncompleteSignatureException", 400, "Date must be in ISO-8601 format"),
        REST_JSON: ("IncompleteSignatureException", 403, "Date must be in ISO-8601 format"),
    },
    "content_sha256_mismatch": {
        S3: (
            "XAmzContentSHA256Mismatch",
            400,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        JSON: ("InvalidSignatureException", 400, _SIG_MSG),
        REST_JSON: ("InvalidSignatureException", 403, _SIG_MSG),
    },
    "missing_content_sha256": {
        S3: (
            "InvalidRequest",
            400,
            "Missing required header for this request: x-amz-content-sha256",
        ),
        JSON: ("IncompleteSignatureException", 400, "Missing x-amz-content-sha256"),
        REST_JSON: ("IncompleteSignatureException", 403, "Missing x-amz-content-sha256"),
    },
    "bad_content_sha256": {
        S3: (
            "InvalidArgument",
            400,
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
        ),
        JSON: ("InvalidSignatureException", 400, "Invalid x-amz-content-sha256"),
        REST_JSON: ("InvalidSignatureException", 403, "Invalid x-amz-content-sha256"),
    },
    "incomplete_body": {
        S3: (
            "IncompleteBody",
            400,
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
        ),
        JSON: ("SerializationException", 400, "Incomplete request body"),
        REST_JSON: ("SerializationException", 400, "Incomplete request body"),
    },
    "bad_chunk": {
        S3: ("InvalidRequest", 400, "Invalid aws-chunked encoding"),
        JSON: ("SerializationException", 400, "Invalid aws-chunked encoding"),
        REST_JSON: ("SerializationException", 400, "Invalid aws-chunked encoding"),
    },
    "too_large": {
        S3: ("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size"),
        JSON: ("ValidationException", 413, "Request body is too large"),
        REST_JSON: ("ValidationException", 413, "Request body is too large"),
    },
    "not_implemented": {
        S3: ("NotImplemented", 501, "This service is not implemented by s3sim yet"),
        JSON: ("NotImplemented", 501, "This service is not implemented by s3sim yet"),
        REST_JSON: ("NotImplemented", 501, "This service is not implemented by s3sim yet"),
    },
    "internal": {
        S3: ("InternalError", 500, "We encountered an internal error. Please try again."),
        JSON: ("InternalFailure", 500, "An internal error occurred."),
        REST_JSON: ("InternalServiceException", 500, "An internal error occurred."),
    },
}


class HttpError(Exception):
    """An auth/protocol error. Raised by the middleware or by Payload while a handler
    consumes the body; the middleware renders it in the request's service shape."""

    def __init__(
        self,
        problem: str,
        message: str | None = None,
        service: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        if problem not in ERROR_TABLE:
            raise KeyError(problem)
        super().__init__(f"{problem}: {message or ''}")
        self.problem = problem
        self.message = message
        self.service = service
        self.details = dict(details or {})  # extra elements of S3's XML error body


def protocol_of(service: str) -> str:
    return PROTOCOLS.get(service, S3)


def describe(problem: str, service: str) -> tuple[str, int, str]:
    """(code, status, default message) of a problem for a service."""
    return ERROR_TABLE[problem][protocol_of(service)]


def render(
    err: HttpError, service: str, request_id: str, resource: str, method: str = "GET"
) -> web.Response:
    """The error in the wire shape of `service`."""
    code, status, default = describe(err.problem, service)
    message = err.message or default
    proto = protocol_of(service)
    if proto == S3:
        headers = {"x-amz-request-id": request_id}
        if method == "HEAD":
            return web.Response(status=status, headers=headers)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in err.details.items())
            + f"<RequestId>{escape(request_id)}</RequestId>"
            f"<Resource>{escape(resource)}</Resource></Error>"
        )
        return web.Response(
            status=status, body=body.encode(), headers=headers, content_type="application/xml"
        )
    headers = {"x-amzn-RequestId": request_id}
    if proto == JSON:
        payload = {"__type": code, "message": message}
        ctype = "application/x-amz-json-1.1"
    else:
        headers["x-amzn-ErrorType"] = code
        payload = {"message": message}
        ctype = "application/json"
    return web.Response(
        status=status, body=json.dumps(payload).encode(), headers=headers, content_type=ctype
    )
