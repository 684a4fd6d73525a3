"""Back-channel logout through the emulated AWS HTTP API, as `make demo` runs it (sandbox/logout_demo.py): the real
provider signs alice in and, on RP-initiated logout, POSTs the logout token to the HTTP API's POST /backchannel-logout
route, answered by lambdas/backchannel_logout/http_api.py from the synthesized template's function; the revocation
table is moto's DynamoDB, created from the synthesized Revocation template. Then the session's access token is refused
on the `freshness: denylist` route and still accepted on the `freshness: none` route."""
from __future__ import annotations

import shutil

import pytest

from lambdas.backchannel_logout.http_api import LOGOUT_PATH
from sandbox.gateway_calls import call_through
from sandbox.idp.config import resource_indicator
from sandbox.logout_demo import CLIENT, DENYLIST_ROUTE, PLAIN_ROUTE, USER, LogoutSandbox
from sandbox.oidc_client import BrowserSession, login_with_pkce, rp_initiated_logout

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js")


@pytest.fixture(scope="module")
def world():
    with LogoutSandbox() as running:
        yield running


def sign_in(world: LogoutSandbox) -> tuple[BrowserSession, str]:
    spa, user = world.idp_setup.clients[CLIENT], world.idp_setup.users[USER]
    browser = BrowserSession()
    tokens, _ = login_with_pkce(world.idp.discovery(), client_id=CLIENT, redirect_uri=spa.redirect_uris[0],
                                username=user.username, password=user.password, scope="openid orders:read",
                                resource=resource_indicator(spa.audience), browser=browser)
    return browser, tokens.access_token


def table_keys(world: LogoutSandbox) -> list[str]:
    client = world._moto.client("dynamodb")
    return sorted(item["pk"]["S"] for item in client.scan(TableName=world.table_name)["Items"])


def test_the_logout_route_is_served_by_the_logout_handler_without_authorizer(world):
    [route] = [r for r in world.gateway.server.emulator.routes if r.path == LOGOUT_PATH]
    assert route.method == "POST" and route.authorization == "NONE"
    assert route.endpoint.handler_name == "lambdas.backchannel_logout.http_api.handler"
    # A request that is not a logout token is answered by the handler itself (400), not by the backend.
    before = world.backend.total_arrivals
    result = call_through(world, world.gateway, "POST", LOGOUT_PATH, None)
    assert result.status == 400 and result.body["error"] == "invalid_request"
    assert world.backend.total_arrivals == before


def test_logout_at_the_provider_refuses_the_session_on_denylist_routes_only(world):
    browser, token = sign_in(world)
    assert call_through(world, world.gateway, *DENYLIST_ROUTE, token).status == 200
    assert call_through(world, world.gateway, *PLAIN_ROUTE, token).status == 200
    delivered = len(world.logout_deliveries())

    rp_initiated_logout(world.idp.discovery(), browser, client_id=CLIENT)
    delivery = world.wait_for_delivery()
    assert len(world.logout_deliveries()) == delivered + 1, world.idp._stderr_tail[-5:]
    assert delivery.final_status == 200 and delivery.method == "POST"
    assert any(key.startswith("sid|" + world.idp.issuer + "|") for key in table_keys(world)), "the session is on the shared table"

    refused = call_through(world, world.gateway, *DENYLIST_ROUTE, token)
    assert (refused.status, refused.code, refused.arrived) == (403, "revoked", 0)
    assert call_through(world, world.gateway, *PLAIN_ROUTE, token).status == 200   # freshness: none


def test_another_session_of_the_same_user_is_not_logged_out(world):
    browser, token = sign_in(world)
    assert call_through(world, world.gateway, *DENYLIST_ROUTE, token).status == 200
