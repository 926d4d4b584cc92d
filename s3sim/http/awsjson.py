"""The awsJson1_1 protocol that the KMS and CloudTrail adapters share.

Requests name their operation in `X-Amz-Target: <prefix><Operation>` and carry a JSON
object; errors are `{"__type": code, "message": text}` with `x-amzn-RequestId`.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kmscore import Caller

CONTENT_TYPE = "application/x-amz-json-1.1"
BODY_LIMIT = 1024 * 1024

Json = dict[str, Any]
Dispatch = Callable[[Caller, str, Json], Json]


class WireError(Exception):
    """A protocol-level error of a JSON service (unknown operation, bad JSON, ...)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def response(status: int, body: Json, request_id: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPE},
    )


def error_body(code: str, message: str) -> Json:
    return {"__type": code, "message": message}


async def read_params(request: web.Request) -> Json:
    """The request's JSON object (already hash-checked by the auth middleware)."""
    raw = request.get("body")
    if raw is None:
        raw = await request.content.read(BODY_LIMIT + 1)
    if len(raw) > BODY_LIMIT:
        raise WireError("ValidationException", "Request body is too large", 413)
    try:
        params = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise WireError("SerializationException", "Malformed JSON") from None
    if not isinstance(params, dict):
        raise WireError("SerializationException", "Request body must be a JSON object")
    return params


def json_handler(
    target_prefix: str,
    dispatch: Dispatch,
    errors: tuple[type[Exception], ...],
    request_id_var: contextvars.ContextVar[str] | None = None,
    inline: Callable[[str], bool] = lambda op: False,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that runs `dispatch(caller, operation, params)` off the loop,
    or on it for the operations `inline` names (quick ones: a thread hand-off costs ~95
    us of CPU on this project's VM, docs/PERFORMANCE.md, session 6).

    `errors` are the exception types with `.code`, `.message` and `.status` that become
    JSON error responses; `request_id_var` is set to the request id inside the call.
    """
    handled = (WireError, *errors)

    async def handle(request: web.Request) -> web.StreamResponse:
        auth = request["auth"]
        request_id = auth.request_id
        try:
            target = request.headers.get("X-Amz-Target", "")
            if not target.startswith(target_prefix):
                raise WireError("UnknownOperationException", "")
            params = await read_params(request)
            ctx = contextvars.copy_context()
            if request_id_var is not None:
                ctx.run(request_id_var.set, request_id)
            op = target[len(target_prefix) :]
            if inline(op):
                out = ctx.run(dispatch, auth.caller, op, params)
            else:
                out = await asyncio.get_running_loop().run_in_executor(
                    None, ctx.run, dispatch, auth.caller, op, params
                )
            return response(200, out, request_id)
        except handled as e:
            return response(e.status, error_body(e.code, e.message), request_id)  # type: ignore[attr-defined]

    return handle
