"""The one route decision (lambdas/validation/route_decision.py) that authorizers, guards and services share."""
from __future__ import annotations

import socket

import pytest

from lambdas.authorizers.runtime import AuthorizerRuntime
from lambdas.guards.require import BearerGuard
from lambdas.validation import TokenRejected
from lambdas.validation.route_decision import (Outcome, bearer_token, decide_for_principal, decide_request,
                                               decide_route)
from lambdas.validation.route_table import RouteTable
from tests.support.route_tables import ORDERS_ROUTES, route, table_document
from tests.support.tokens import SigningKey, mint


@pytest.fixture(scope="module")
def table(key) -> RouteTable:
    routes = ORDERS_ROUTES + [route("GET /profile", token_use="id"),
                              route("GET /audit", scopes_all=["audit:read", "audit:export"], roles=["auditor"])]
    return RouteTable.load(table_document(key, routes))


@pytest.fixture(scope="module")
def verifier(table):
    return table.verifier()


def token(key, scope="", **claims) -> str:
    return mint(key, scope=scope, client_id="orders-web", **claims)


def decide(table, verifier, method, path, authorization, **options):
    return decide_request(table.api("orders"), verifier, method, path, authorization, **options)


def test_allow_carries_the_principal(table, verifier, key):
    decision = decide(table, verifier, "GET", "/orders/7", f"Bearer {token(key, 'orders:read')}")
    assert decision.outcome is Outcome.ALLOW and decision.allowed and decision.status == 200
    assert decision.route.route_key == "GET /orders/{id}" and decision.principal.scopes == ("orders:read",)
    assert decision.code is None and decision.principal_or_raise() is decision.principal


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"])
def test_public_routes_are_public_whatever_the_credential(table, verifier, authorization):
    decision = decide(table, verifier, "GET", "/health", authorization)
    assert decision.outcome is Outcome.PUBLIC and decision.allowed and decision.principal is None
    assert decision.principal_or_raise() is None


def test_a_public_route_still_yields_a_good_tokens_principal(table, verifier, key):
    decision = decide(table, verifier, "GET", "/health", token(key, "orders:read"), all_routes=True)
    assert decision.outcome is Outcome.PUBLIC and decision.principal.subject
    assert "GET /orders" in {r.route_key for r in decision.satisfied}


def test_a_repeated_authorization_header_is_refused(table, verifier, key):
    good = f"Bearer {token(key, 'orders:read')}"
    decision = decide(table, verifier, "GET", "/orders", [good, good])
    assert (decision.outcome, decision.code, decision.status) == (Outcome.UNAUTHORIZED, "malformed", 401)
    assert "more than once" in decision.message
    assert decide(table, verifier, "GET", "/orders", [good]).outcome is Outcome.ALLOW  # one value, in a list


def test_unknown_routes_authenticate_first_then_are_forbidden(table, verifier, key):
    anonymous = decide(table, verifier, "GET", "/nowhere", None)
    assert (anonymous.outcome, anonymous.code, anonymous.route) == (Outcome.UNAUTHORIZED, "malformed", None)
    known = decide(table, verifier, "GET", "/nowhere", token(key, "orders:read"))
    assert (known.outcome, known.code, known.status) == (Outcome.FORBIDDEN, "route_not_found", 403)
    assert known.principal is not None and "'orders'" in known.message


def test_forbidden_names_every_missing_condition(table, verifier, key):
    decision = decide(table, verifier, "GET", "/audit", token(key, "audit:read"))
    assert decision.outcome is Outcome.FORBIDDEN and decision.code == "insufficient_scope"
    assert [m.code for m in decision.missing] == ["insufficient_scope", "insufficient_role"]
    assert "audit:export" in decision.missing[0].message and decision.missing[1].expected == ["auditor"]
    with pytest.raises(TokenRejected) as raised:
        decision.principal_or_raise()
    assert raised.value is decision.rejection


def test_the_wrong_token_use_is_unauthorized_not_forbidden(table, verifier, key):
    decision = decide(table, verifier, "GET", "/profile", token(key))
    assert (decision.outcome, decision.code) == (Outcome.UNAUTHORIZED, "wrong_token_use")


def test_a_route_that_does_not_accept_the_issuer_is_unauthorized(key):
    other = SigningKey.generate("ES256")
    issuers = table_document(key)["issuers"]
    issuers["partner"] = dict(issuers["corp"], issuer="https://partner.example.test", algorithms=["ES256"],
                              jwks=other.jwks())
    loaded = RouteTable.load(table_document(key, [route("GET /orders")], issuers=issuers))
    partner_token = mint(other, issuer="https://partner.example.test", client_id="p")
    decision = decide(loaded, loaded.verifier(), "GET", "/orders", partner_token)
    assert (decision.outcome, decision.code) == (Outcome.UNAUTHORIZED, "unknown_issuer")
    assert decision.rejection.expected == ["corp"] and decision.rejection.found == "partner"


def test_keys_that_cannot_be_had_are_unavailable(key):
    with socket.socket() as probe:          # a loopback port nothing listens on: the fetch is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuers = table_document(key)["issuers"]
    issuers["corp"] = dict(issuers["corp"], jwks=None, jwks_uri=f"http://127.0.0.1:{port}/jwks",
                           allow_insecure_http=True)
    loaded = RouteTable.load(table_document(key, issuers=issuers))
    decision = decide(loaded, loaded.verifier(), "GET", "/orders", token(key, "orders:read"))
    assert (decision.outcome, decision.code, decision.status) == (Outcome.UNAVAILABLE, "jwks_unavailable", 503)
    assert decide(loaded, loaded.verifier(), "GET", "/health", token(key)).outcome is Outcome.PUBLIC


def test_decide_for_principal_applies_the_same_rule_to_a_caller_known_otherwise(table, verifier, key):
    principal = verifier.authenticate(token(key, "orders:read"))
    api = table.api("orders")
    assert decide_for_principal(api, api.match("GET", "/orders"), principal).outcome is Outcome.ALLOW
    assert decide_for_principal(api, api.match("POST", "/orders"), principal).code == "insufficient_scope"
    assert decide_for_principal(api, None, principal).code == "route_not_found"


def test_request_facts_nobody_checks_are_refused(table, verifier):
    """A fact is checked by decide_route or it is not accepted: a misspelt one must not be silently ignored."""
    with pytest.raises(TypeError):
        decide(table, verifier, "GET", "/orders", None, dpop_prof="x")


def test_bearer_token_reads_one_value():
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi" == bearer_token("bearer  abc.def.ghi ")
    assert bearer_token("abc.def.ghi") == "abc.def.ghi" == bearer_token(("abc.def.ghi",))
    for bad in (None, "", [], "Bearer a b", "Token abc", ("a", "b")):
        with pytest.raises(TokenRejected) as raised:
            bearer_token(bad)
        assert raised.value.code == "malformed"


REQUESTS = [("GET", "/orders"), ("GET", "/orders/1"), ("DELETE", "/orders/1"), ("GET", "/health"),
            ("GET", "/nowhere"), ("GET", "/users/me"), ("GET", "/profile"), ("GET", "/audit")]


def test_guard_and_authorizer_runtime_decide_alike(table, key):
    """BearerGuard answered route_not_found before reading the token and skipped the token on public routes; the
    authorizers authenticated first. Both now make the one decision: same outcome and code for every request."""
    guard = BearerGuard.from_route_table(table, "orders")
    runtime = AuthorizerRuntime(table, "orders")
    api = table.api("orders")
    credentials = [None, "Bearer junk", f"Bearer {token(key, 'orders:read')}",
                   f"Bearer {token(key, 'orders:write', roles=['admin'])}"]
    for method, path in REQUESTS:
        for credential in credentials:
            headers = {"Authorization": credential} if credential else {}
            by_guard = guard.decide(headers, method, path)
            by_runtime = runtime.decide(credential, api.match(method, path))
            assert (by_guard.outcome, by_guard.code) == (by_runtime.outcome, by_runtime.code), (method, path)
    repeated = [("authorization", "Bearer a.b.c"), ("authorization", "Bearer a.b.c")]
    assert guard.decide(repeated, "GET", "/orders").code == "malformed"
    assert guard.decide(repeated, "GET", "/health").outcome is Outcome.PUBLIC
    with pytest.raises(TokenRejected) as raised:
        guard.check({}, "GET", "/nowhere")
    assert raised.value.code == "malformed"


def test_decide_route_for_a_route_the_gateway_selected(table, verifier, key):
    api = table.api("orders")
    decision = decide_route(api, verifier, api.route("POST /orders"), token(key, "orders:write"))
    assert decision.outcome is Outcome.ALLOW and decision.route.route_key == "POST /orders"
