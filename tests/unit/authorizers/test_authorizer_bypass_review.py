"""Attacks on the authorizers' cached policies and fail-closed paths: each test is a bypass that once worked or a
shape the policy builder must keep right (wildcard characters in request paths, trailing slashes, size fallbacks)."""
from __future__ import annotations

import itertools
import random

import pytest

from lambdas.authorizers.iam_policy import MethodArn, PolicyBuilder, policy_allows
from tests.support.route_tables import keyless_api

PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"




# --- a wildcard character in the request path must never become a wildcard in an Allow ---------------------------

def test_public_route_with_star_in_path_does_not_allow_other_routes_for_a_garbage_token(load_handler, events,
                                                                                       signing_key):
    routes = [events.route("GET /pages/{page}", public=True), events.route("GET /pages/admin", roles=["admin"]),
              events.route("GET /pages/{page}/edit", roles=["editor"])]
    rest = load_handler("rest", events.table(signing_key, routes))
    out = rest.handler(events.rest_token("Bearer not-a-token", "GET", "/pages/*"))
    document = out["policyDocument"]
    # API Gateway caches this answer for the token "Bearer not-a-token" and applies it to every route.
    assert not policy_allows(document, events.method_arn("GET", "/pages/admin"))
    assert not policy_allows(document, events.method_arn("GET", "/pages/1/edit"))


@pytest.mark.parametrize("path", ["/orders/*", "/orders/?", "/orders/a*b"])
def test_size_fallback_never_turns_a_star_in_the_path_into_an_allow_pattern(path):
    api = keyless_api(["GET /orders/{id}", "GET /orders/{id}/refunds", "DELETE /orders/{id}"])
    builder = PolicyBuilder(api, max_bytes=10)  # nothing but the current-route policy fits
    reader = [api.route("GET /orders/{id}")]
    arn = MethodArn.parse(f"{PREFIX}/GET{path}")
    result = builder.build(arn, reader, current_allowed=True)
    assert not policy_allows(result.document, f"{PREFIX}/GET/orders/1/refunds")
    assert not policy_allows(result.document, f"{PREFIX}/DELETE/orders/1")


def test_star_in_path_with_a_literal_star_route_table_does_not_allow_other_routes():
    api = keyless_api(["GET /files/*", "GET /files/{name}", "GET /files/{name}/raw"])
    assert PolicyBuilder(api).reach.glob_unsafe
    arn = MethodArn.parse(f"{PREFIX}/GET/files/*")
    result = PolicyBuilder(api).build(arn, [api.route("GET /files/*")], current_allowed=True)
    assert not policy_allows(result.document, f"{PREFIX}/GET/files/x/raw")
    assert not policy_allows(result.document, f"{PREFIX}/GET/files/x")


# --- trailing slashes: API Gateway routes /orders/ to /orders, and the method ARN keeps the slash ---------------

def test_cached_exact_policy_does_not_allow_the_trailing_slash_form_of_an_unsatisfied_route():
    api = keyless_api(["GET /orders", "GET /orders/{id}"])
    arn = MethodArn.parse(f"{PREFIX}/GET/orders/7")
    result = PolicyBuilder(api).build(arn, [api.route("GET /orders/{id}")], current_allowed=True)
    assert result.strategy == "exact"
    assert api.match("GET", "/orders/").route_key == "GET /orders"
    assert not policy_allows(result.document, f"{PREFIX}/GET/orders/")
    assert policy_allows(result.document, f"{PREFIX}/GET/orders/7")


def test_deny_list_also_denies_the_trailing_slash_form():
    keys = [f"GET /svc{i}/items" for i in range(40)] + ["GET /admin/users"]
    api = keyless_api(keys)
    satisfied = [r for r in api.routes if r.route_key != "GET /admin/users"]
    builder = PolicyBuilder(api, max_bytes=1200)
    result = builder.build(MethodArn.parse(f"{PREFIX}/GET/svc1/items"), satisfied, current_allowed=True)
    assert result.strategy == "deny_list"
    assert not policy_allows(result.document, f"{PREFIX}/GET/admin/users")
    assert not policy_allows(result.document, f"{PREFIX}/GET/admin/users/")


# --- empty segments: what API Gateway routes //admin to is unverified offline, so it is refused on both sides ------

@pytest.mark.parametrize("path", ["//admin", "/admin//", "/a//admin", "//", "/catalog//"])
def test_paths_with_empty_segments_match_no_route(path):
    api = keyless_api(["GET /{proxy+}", "GET /admin", "GET /catalog", "GET /"])
    assert api.match("GET", path) is None


def test_cached_reader_policy_does_not_allow_an_empty_segment_form_of_an_unsatisfied_route():
    # Issue 18 item 4: the router read //admin as /admin while the policy's Deny named only GET/admin and GET/admin/,
    # so the Allow GET/* (from GET /{proxy+}) admitted GET//admin from a policy cached for GET /catalog.
    api = keyless_api(["GET /{proxy+}", "GET /admin", "GET /catalog"])
    reader = [api.route("GET /{proxy+}"), api.route("GET /catalog")]
    for max_bytes in (8192, 700):
        result = PolicyBuilder(api, max_bytes=max_bytes).build(MethodArn.parse(f"{PREFIX}/GET/catalog"), reader,
                                                               current_allowed=True)
        assert policy_allows(result.document, f"{PREFIX}/GET/catalog")
        for path in ("//admin", "/admin//", "//admin/", "/x//admin", "//catalog"):
            assert not policy_allows(result.document, f"{PREFIX}/GET{path}"), (result.strategy, path)


def test_deny_list_policy_refuses_empty_segments_too():
    keys = [f"GET /svc{i}/items" for i in range(40)] + ["GET /admin/users"]
    api = keyless_api(keys)
    satisfied = [r for r in api.routes if r.route_key != "GET /admin/users"]
    result = PolicyBuilder(api, max_bytes=1200).build(MethodArn.parse(f"{PREFIX}/GET/svc1/items"), satisfied,
                                                      current_allowed=True)
    assert result.strategy == "deny_list"
    assert not policy_allows(result.document, f"{PREFIX}/GET//admin/users")
    assert not policy_allows(result.document, f"{PREFIX}/GET/svc1//items")


# --- the randomized oracle, over request shapes the first version did not try ------------------------------------

LITERALS = ["a", "b", "me", "items"]
# "" makes empty segments: //a, /a//b, /a// (a single trailing '/' is the one empty segment API Gateway ignores).
REQUEST_VALUES = LITERALS + ["zz", "*", ""]


def _random_route_keys(rng):
    keys, seen = [], set()
    for _ in range(rng.randint(2, 8)):
        segments = []
        for position in range(rng.randint(0, 3)):
            segments.append(rng.choice(LITERALS) if rng.random() < 0.55 else f"{{p{position}}}")
        if segments and rng.random() < 0.25:
            segments[-1] = f"{{rest{len(segments)}+}}"
        method = rng.choice(["GET", "GET", "POST", "HEAD", "ANY"])
        shape = (method, tuple("{+}" if s.endswith("+}") else "{}" if s.startswith("{") else s for s in segments))
        if shape not in seen:
            seen.add(shape)
            keys.append(f"{method} /" + "/".join(segments))
    return keys


def _requests():
    for length in range(0, 5):
        for segments in itertools.product(REQUEST_VALUES, repeat=length):
            path = "/" + "/".join(segments)
            for method in ("GET", "POST", "HEAD", "DELETE"):
                yield method, path
                if segments:
                    yield method, path + "/"


ALL_REQUESTS = list(_requests())


@pytest.mark.parametrize("max_bytes", [8192, 700, 300])
@pytest.mark.parametrize("seed", range(25))
def test_no_cached_policy_ever_admits_an_unsatisfied_route(seed, max_bytes):
    rng = random.Random(seed * 7919 + max_bytes)
    api = keyless_api(_random_route_keys(rng))
    builder = PolicyBuilder(api, max_bytes=max_bytes)
    satisfied = [r for r in api.routes if rng.random() < 0.5]
    sat_keys = {r.route_key for r in satisfied}
    every = [(m, p, api.match(m, p)) for m, p in ALL_REQUESTS]
    routed = [(m, p, r) for m, p, r in every if r is not None]
    # The router refuses every path with an empty segment; the policy must refuse them all as well.
    empty_segments = [(m, p) for m, p, _ in every if "//" in p]
    assert all(r is None for m, p, r in every if "//" in p)
    for current_method, current_path, current in rng.sample(routed, min(6, len(routed))):
        arn = MethodArn.parse(f"{PREFIX}/{current_method}{current_path}")
        result = builder.build(arn, satisfied, current_allowed=current.route_key in sat_keys)
        if current.route_key not in sat_keys:
            assert not policy_allows(result.document, arn.arn)
        for method, path, route in routed:
            if route.route_key not in sat_keys:
                assert not policy_allows(result.document, f"{PREFIX}/{method}{path}"), (
                    result.strategy, current_method, current_path, method, path, route.route_key, result.document)
        for method, path in empty_segments:
            assert not policy_allows(result.document, f"{PREFIX}/{method}{path}"), (
                result.strategy, current_method, current_path, method, path, result.document)


# --- REST REQUEST events: API Gateway says which resource it routed to; the method ARN must agree ----------------

def test_request_event_whose_resource_disagrees_with_the_method_arn_is_denied(load_handler, events, token_for):
    rest = load_handler("rest")
    token = f"Bearer {token_for('orders:read')}"
    # The ARN reads as GET /orders/1 (satisfied) but API Gateway routed the request to /orders/{id}/refunds: the
    # two views disagree (an encoded '/' decoded into the ARN, or a table that is not the deployed API).
    event = events.rest_request(token, "GET", "/orders/1", resource="/orders/{id}/refunds")
    out = rest.handler(event)
    assert not policy_allows(out["policyDocument"], events.method_arn("GET", "/orders/1"))
    agreeing = rest.handler(events.rest_request(token, "GET", "/orders/1", resource="/orders/{id}"))
    assert policy_allows(agreeing["policyDocument"], events.method_arn("GET", "/orders/1"))


def test_request_event_with_two_authorization_values_is_unauthorized(load_handler, events, token_for, capsys):
    rest = load_handler("rest")
    good = f"Bearer {token_for('orders:read')}"
    event = events.rest_request(good, "GET", "/orders")
    event["multiValueHeaders"]["Authorization"] = [good, "Bearer other"]
    with pytest.raises(Exception, match="^Unauthorized$"):
        rest.handler(event)
    [line] = events.audit_lines(capsys.readouterr().out)
    assert line["code"] == "malformed"


def test_websocket_token_sent_twice_is_unauthorized(load_handler, events, token_for, signing_key):
    routes = [events.route("$connect", scopes=["chat:connect"])]
    token = token_for("chat:connect")
    query = load_handler("websocket", events.table(signing_key, routes), AUTHGATE_WS_TOKEN_SOURCE="query")
    event = events.websocket(query={"access_token": token})
    assert policy_allows(query.handler(event)["policyDocument"], f"{events.ARN_PREFIX}/$connect")
    event["multiValueQueryStringParameters"]["access_token"] = [token, "other"]
    with pytest.raises(Exception, match="^Unauthorized$"):
        query.handler(event)
    header = load_handler("websocket", events.table(signing_key, routes), AUTHGATE_WS_TOKEN_SOURCE="header")
    event = events.websocket(authorization=f"Bearer {token}")
    event["multiValueHeaders"]["Authorization"] = [f"Bearer {token}", "Bearer other"]
    with pytest.raises(Exception, match="^Unauthorized$"):
        header.handler(event)


# --- HTTP API: the $default catch-all shares one routeKey across every path ---------------------------------------

def test_cached_simple_response_for_default_route_does_not_depend_on_the_path(load_handler, events, token_for,
                                                                               signing_key):
    # Every request the $default route catches has routeKey "$default", so a cached simple answer keyed by it
    # serves all of them: it must not be decided from one request's path.
    routes = [events.route("GET /orders", scopes=["orders:read"]), events.route("GET /admin", roles=["admin"])]
    http = load_handler("http_api", events.table(signing_key, routes), AUTHGATE_RESULT_TTL_SECONDS="300",
                        AUTHGATE_IDENTITY_SOURCES="$request.header.Authorization,$context.routeKey")
    out = http.handler(events.http_api(f"Bearer {token_for('orders:read')}", "$default", "/orders"))
    assert out == {"isAuthorized": False}
    uncached = load_handler("http_api", events.table(signing_key, routes), AUTHGATE_RESULT_TTL_SECONDS="0")
    out = uncached.handler(events.http_api(f"Bearer {token_for('orders:read')}", "$default", "/orders"))
    assert out["isAuthorized"] is True
