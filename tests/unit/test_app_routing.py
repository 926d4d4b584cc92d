"""s3sim.http.app: every path outside /_s3sim/ resolves to the AWS handler (the catch-all
resource), every simulator path to its own route or the simulator's 404."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from kmscore.clock import SimClock
from s3sim.http import admin
from s3sim.http.admin import AdminState
from s3sim.http.app import EveryPath, aws, make_app
from s3sim.http.auth import Authenticator
from s3sim.identities import BUILTIN, Identities


@pytest.fixture
def app():
    clock = SimClock()
    return make_app(
        Authenticator(Identities(BUILTIN), clock), {}, AdminState(clock, "us-east-1", "t")
    )


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/bucket",
        "/bucket/",
        "/bucket/a/b/c.txt",
        "/bucket/k%2Fey%20with%20spaces",
        "/bucket//double//slashes",
        "/bucket/_s3sim/health",  # a key that merely contains the simulator's name
        "/_s3simx/health",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE", "HEAD"])
async def test_aws_paths_reach_the_aws_handler(app, path, method):
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    assert match.handler is aws and isinstance(match.route.resource, EveryPath)
    assert dict(match) == {}


@pytest.mark.parametrize("path", ["/_s3sim/health", "/_s3sim/nope", "/_s3sim"])
async def test_simulator_paths_never_reach_it(app, path):
    match = await app.router.resolve(make_mocked_request("GET", path, app=app))
    assert match.handler is not aws
    if path != "/_s3sim/health":
        assert match.handler is admin.not_found


def test_the_catch_all_builds_no_urls():
    with pytest.raises(NotImplementedError):
        EveryPath().url_for()
    with pytest.raises(NotImplementedError):
        EveryPath().add_prefix("/x")
