"""The simulator's own endpoints under /_s3sim/ (no auth): health and the simulated clock."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import field
from typing import Any

from aiohttp import web

from kmscore.clock import SimClock
from kmscore.frozen import frozen


@frozen
class AdminState:
    clock: SimClock
    region: str
    version: str
    services: Callable[[], list[str]] = field(default=lambda: [])
    # Run after time moves (e.g. destroy KMS keys whose deletion window has passed).
    on_clock_advance: Callable[[], object] = field(default=lambda: None)


ADMIN_STATE = web.AppKey("admin_state", AdminState)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


def _clock_body(clock: SimClock) -> dict[str, Any]:
    return {"now": clock.now().isoformat(), "offsetSeconds": clock.offset_seconds}


async def health(request: web.Request) -> web.Response:
    st = request.app[ADMIN_STATE]
    return _json(
        {
            "status": "ok",
            "version": st.version,
            "region": st.region,
            "services": st.services(),
            "pid": os.getpid(),  # which server process answered (`serve --workers N`)
        }
    )


async def clock_get(request: web.Request) -> web.Response:
    return _json(_clock_body(request.app[ADMIN_STATE].clock))


async def clock_advance(request: web.Request) -> web.Response:
    state = request.app[ADMIN_STATE]
    clock = state.clock
    try:
        doc = json.loads(await request.read() or b"{}")
        seconds = float(doc["seconds"])
    except (ValueError, KeyError, TypeError):
        return _json({"error": 'expected JSON {"seconds": <number >= 0>}'}, 400)
    if not seconds >= 0 or seconds == float("inf"):
        return _json({"error": "simulated time only moves forward"}, 400)
    clock.advance(seconds)
    await asyncio.to_thread(state.on_clock_advance)
    return _json(_clock_body(clock))


async def not_found(request: web.Request) -> web.Response:
    return _json({"error": f"no simulator endpoint {request.path}"}, 404)


def register(app: web.Application, state: AdminState) -> None:
    """Routes under /_s3sim/; others may add more (e.g. Connect's pipeline state) before
    the catch-all by calling app.router.add_get("/_s3sim/...") in build_app."""
    app[ADMIN_STATE] = state
    app.router.add_get("/_s3sim/health", health)
    app.router.add_get("/_s3sim/clock", clock_get)
    app.router.add_post("/_s3sim/clock/advance", clock_advance)


def register_fallback(app: web.Application) -> None:
    """Unknown paths of the simulator's namespace: 404 in JSON, never authenticated."""
    app.router.add_route("*", "/_s3sim", not_found)
    app.router.add_route("*", "/_s3sim/{tail:.*}", not_found)
