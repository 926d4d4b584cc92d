"""The aiohttp application: authentication and dispatch by SigV4 service.

Everything under /_s3sim/ is the simulator's own namespace (admin.py), unauthenticated.
Every other request reaches the catch-all route (`aws`): it is authenticated
(request["auth"]) and handed to app["services"][auth.service]. No middleware: aiohttp
wraps every request in each one (measured: ~2 us of a ~5 us minimal request).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import HttpVersion11, web

from s3sim.http import admin
from s3sim.http.auth import Authenticator, bucket_from_host, guess_service, new_request_id
from s3sim.http.errors import HttpError, render

if TYPE_CHECKING:
    from yarl import URL

ServiceHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN_PREFIX = "/_s3sim/"
log = logging.getLogger("s3sim.http")

AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


def _resource(request: web.Request) -> str:
    return unquote(request.raw_path.split("?", 1)[0])


def _error(request: web.Request, err: HttpError, service: str, request_id: str) -> web.Response:
    return render(err, service, request_id, _resource(request), request.method)


async def aws(request: web.Request) -> web.StreamResponse:
    """Every request outside /_s3sim/: authenticate, then the service's handler."""
    authenticator = request.app[AUTHENTICATOR]
    try:
        auth = await authenticator.authenticate(request)
    except HttpError as e:
        service = e.service or guess_service(request.headers)
        return _error(request, e, service, new_request_id(service, authenticator.rng))
    request["auth"] = auth
    if auth.service == "s3":
        bucket = bucket_from_host(request.headers.get("Host", ""))
        if bucket:
            request["s3_bucket_from_host"] = bucket
    try:
        return await dispatch(request)
    except HttpError as e:
        return _error(request, e, auth.service, auth.request_id)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.raw_path)
        return _error(request, HttpError("internal"), auth.service, auth.request_id)


async def dispatch(request: web.Request) -> web.StreamResponse:
    auth = request["auth"]
    handler = request.app["services"].get(auth.service)
    if handler is None:
        raise HttpError("not_implemented", f"Service {auth.service!r} is not available")
    return await handler(request)


AdminRoute = web.RouteDef


class EveryPath(web.Resource):
    """The catch-all resource every AWS request resolves to: any path matches, with no
    regex run and no match dict unquoted per request (`/{tail:.*}` did both)."""

    @property
    def canonical(self) -> str:
        return "/"

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("the catch-all resource takes no prefix")

    def _match(self, path: str) -> dict[str, str]:
        return {}

    def raw_match(self, path: str) -> bool:
        return path == "/"

    def get_info(self) -> dict[str, str]:
        return {"path": "/"}

    def url_for(self, **parts: str) -> URL:
        raise NotImplementedError("the catch-all resource has no URL of its own")


async def expect_handler(request: web.Request) -> None:
    """Answer `Expect: 100-continue` with 100 Continue; ignore any other expectation, as
    S3 does (aiohttp's default refuses it with 417)."""
    if request.version == HttpVersion11 and (
        request.headers.get("Expect", "").lower() == "100-continue"
    ):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started yet


def make_app(
    authenticator: Authenticator,
    services: dict[str, ServiceHandler],
    admin_state: admin.AdminState,
    admin_routes: Iterable[AdminRoute] = (),
) -> web.Application:
    """The app. `admin_routes`: extra web.RouteDef under /_s3sim/ (no auth)."""
    # client_max_size only caps request.read()/post(); S3 bodies stream through Payload.
    app = web.Application(client_max_size=1024 * 1024)
    app[AUTHENTICATOR] = authenticator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["services"] = services
    admin.register(app, admin_state)
    routes = list(admin_routes)
    for route in routes:
        if not route.path.startswith(ADMIN_PREFIX):
            raise ValueError(f"simulator routes live under {ADMIN_PREFIX}: {route.path}")
    app.router.add_routes(routes)
    admin.register_fallback(app)
    every = EveryPath()
    app.router.register_resource(every)
    every.add_route("*", aws, expect_handler=expect_handler)
    return app
