"""Routes with token_source: cookie, through the HTTP API and REST authorizers and the backend guard: the access
token comes from the token handler's sealed session cookie and is verified as a bearer token would be; state-changing
requests need the CSRF header and the app's origin; header routes ignore cookies and cookie routes ignore headers."""
from __future__ import annotations

import time

import pytest

from lambdas.authorizers.runtime import AuthorizerMisconfigured
from lambdas.guards.require import BearerGuard
from lambdas.token_handler import SESSION_COOKIE, CookieKeys
from lambdas.token_handler.api_side import SessionCookieSource
from lambdas.token_handler.sealing import seal
from lambdas.validation.route_table import RouteTable, RouteTableError

ORIGIN = "https://shop.example.com"
KEYS = CookieKeys.generate("k1")
CSRF = {"x-authgate-csrf": "1", "origin": ORIGIN}


@pytest.fixture
def document(events, signing_key):
    return events.table(signing_key, [
        events.route("GET /api/orders", scopes=["orders:read"], token_source="cookie"),
        events.route("POST /api/orders", scopes=["orders:read"], token_source="cookie"),
        events.route("GET /orders", scopes=["orders:read"]),
    ])


def session_cookie(token: str, keys: CookieKeys = KEYS) -> str:
    now = time.time()
    return f"{SESSION_COOKIE}=" + seal(keys, SESSION_COOKIE, {"at": token, "at_exp": now + 300}, expires_at=now + 600)


def http_event(events, token, route_key, path, *, cookies=(), headers=None):
    event = events.http_api(token, route_key, path)
    event["cookies"] = list(cookies)
    event["headers"].update(headers or {})
    return event


@pytest.fixture
def http_api(load_handler, document):
    return load_handler("http_api", document, AUTHGATE_COOKIE_KEYS=KEYS.to_json(), AUTHGATE_WEB_ORIGIN=ORIGIN)


def test_a_cookie_route_takes_the_session_cookie_and_ignores_the_authorization_header(http_api, events, token_for):
    good = token_for("orders:read")
    assert http_api.handler(http_event(events, None, "GET /api/orders", "/api/orders",
                                       cookies=[session_cookie(good)]))["isAuthorized"] is True
    assert http_api.handler(http_event(events, f"Bearer {good}", "GET /api/orders", "/api/orders"))[
        "isAuthorized"] is False
    assert http_api.handler(http_event(events, None, "GET /api/orders", "/api/orders",
                                       cookies=[session_cookie(token_for("other"))]))["isAuthorized"] is False


def test_a_header_route_ignores_the_session_cookie(http_api, events, token_for):
    good = token_for("orders:read")
    assert http_api.handler(http_event(events, None, "GET /orders", "/orders",
                                       cookies=[session_cookie(good)]))["isAuthorized"] is False
    assert http_api.handler(http_event(events, f"Bearer {good}", "GET /orders", "/orders"))["isAuthorized"] is True


@pytest.mark.parametrize("headers", [{}, {"origin": ORIGIN}, {"x-authgate-csrf": "1", "origin": "https://evil.example"},
                                     {"x-authgate-csrf": "1"}])
def test_a_cross_site_state_change_is_refused_with_a_valid_session(http_api, events, token_for, headers, capsys):
    event = http_event(events, None, "POST /api/orders", "/api/orders",
                       cookies=[session_cookie(token_for("orders:read"))], headers=headers)
    assert http_api.handler(event)["isAuthorized"] is False
    assert '"code":"csrf_refused"' in capsys.readouterr().out
    event["headers"].update(CSRF)
    assert http_api.handler(event)["isAuthorized"] is True


def test_tampered_foreign_key_and_doubled_session_cookies_are_refused(http_api, events, token_for):
    cookie = session_cookie(token_for("orders:read"))
    for cookies in ([cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]],
                    [session_cookie(token_for("orders:read"), CookieKeys.generate("k1"))],
                    [cookie, cookie]):
        assert http_api.handler(http_event(events, None, "GET /api/orders", "/api/orders",
                                           cookies=cookies))["isAuthorized"] is False


def test_cookie_routes_without_cookie_keys_are_a_misconfiguration(load_handler, document, events):
    module = load_handler("http_api", document, AUTHGATE_COOKIE_KEYS=None, AUTHGATE_WEB_ORIGIN=None)
    with pytest.raises(AuthorizerMisconfigured, match="AUTHGATE_COOKIE_KEYS"):
        module.handler(http_event(events, None, "GET /orders", "/orders"))


def test_rest_request_cookie_route_gets_a_policy_for_this_route_only(load_handler, document, events, token_for):
    rest = load_handler("rest", document, AUTHGATE_COOKIE_KEYS=KEYS.to_json(), AUTHGATE_WEB_ORIGIN=ORIGIN)
    event = events.rest_request(None, "GET", "/api/orders")
    event["headers"]["Cookie"] = session_cookie(token_for("orders:read"))
    event["multiValueHeaders"]["Cookie"] = [event["headers"]["Cookie"]]
    statements = rest.handler(event)["policyDocument"]["Statement"]
    allowed = [s["Resource"] for s in statements if s["Effect"] == "Allow"]
    # Not GET/orders, which the same principal satisfies: a cached answer must not carry the cookie elsewhere.
    assert allowed in ([events.method_arn("GET", "/api/orders")], [[events.method_arn("GET", "/api/orders")]])


def test_the_backend_guard_reads_the_cookie_for_cookie_routes(document, token_for):
    source = SessionCookieSource(KEYS, ORIGIN)
    guard = BearerGuard.from_route_table(document, "orders", cookie_source=source)
    cookie = session_cookie(token_for("orders:read"))
    assert guard.decide({"cookie": cookie}, "GET", "/api/orders").allowed
    assert guard.decide([(b"cookie", cookie.encode()), (b"x-authgate-csrf", b"1"), (b"origin", ORIGIN.encode())],
                        "POST", "/api/orders").allowed
    refused = guard.decide({"cookie": cookie}, "POST", "/api/orders")
    assert refused.status == 403 and refused.code == "csrf_refused"
    assert not BearerGuard.from_route_table(document, "orders").decide({"cookie": cookie}, "GET",
                                                                       "/api/orders").allowed


def test_the_route_table_refuses_an_unknown_token_source(document):
    document["apis"]["orders"]["routes"][0]["token_source"] = "query"
    with pytest.raises(RouteTableError, match="token_source must be one of header, cookie"):
        RouteTable.load(document)
