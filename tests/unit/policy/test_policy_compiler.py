"""The compiler's per-route choice between the native JWT authorizer and the Lambda authorizer, and its reasons."""
from __future__ import annotations

import json

import pytest

from stacks.policy import load_policy
from stacks.policy.compiler import compile_policy
from tests.unit.policy.policy_testing import REPO, load_text, policy_error

ISSUERS = """
issuers:
  corp: {issuer: https://idp.example.com, audiences: [orders-api]}
  cog: {issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123", profile: cognito, audiences: [client1]}
  ec: {issuer: https://ec.example.com, audiences: [orders-api], algorithms: [ES256]}
  ids: {issuer: https://accounts.google.com, profile: google, audiences: [client.apps.googleusercontent.com]}
  aged: {issuer: https://aged.example.com, audiences: [orders-api], max_token_age_seconds: 600}
  either: {issuer: https://either.example.com, audiences: [orders-api], token_use: any}
"""


def compiled_route(tmp_path, route_yaml: str):
    policy = load_text(tmp_path, ISSUERS + f'apis:\n  a:\n    routes:\n      "GET /x": {route_yaml}\n')
    return compile_policy(policy).api("a").routes[0]


@pytest.mark.parametrize("route_yaml, native_scopes, reason", [
    ("{issuers: [corp], scopes: [a, b]}", ("a", "b"), "native JWT authorizer: the route needs only iss of corp, aud, "
                                                      "any of scopes a, b"),
    ("{issuers: [cog], scopes: [r/a]}", ("r/a",), "iss of cog, client_id, any of scopes r/a"),
    ("{issuers: [corp], scopes_all: [a]}", ("a",), "any of scopes a"),
    ("{issuers: [either]}", (), "the route needs only iss of either, aud"),
])
def test_routes_the_native_authorizer_can_enforce(tmp_path, route_yaml, native_scopes, reason):
    route = compiled_route(tmp_path, route_yaml)
    assert route.enforcement == "native" and route.needs_native_authorizer
    assert route.native_scopes == native_scopes
    assert reason in route.reason


@pytest.mark.parametrize("route_yaml, reason", [
    ("{issuers: [corp], scopes: [a], roles: [admin]}",
     "roles needs the Lambda authorizer: the native JWT authorizer checks only iss, aud/client_id, expiry and any-of "
     "scopes"),
    ("{issuers: [corp], scopes: [a], groups_all: [g], claims: {tenant: [acme]}}", "groups_all, claims need the Lambda"),
    ("{issuers: [corp], scopes_all: [a, b]}", "scopes_all needs the Lambda authorizer"),
    ("{issuers: [corp], scopes: [a], scopes_all: [b]}", "scopes_all needs the Lambda authorizer"),
    ("{issuers: [corp, cog], scopes: [a]}", "2 issuers (corp, cog) need the Lambda authorizer: an HTTP API route takes "
                                            "one JWT authorizer"),
    ("{issuers: [ec], scopes: [a]}", "issuer ec allows ES256, which the native JWT authorizer cannot verify"),
    ("{issuers: [ids]}", "ID tokens (token_use: id) need the Lambda authorizer"),
    ("{issuers: [corp]}", "a route requiring no scope needs the Lambda authorizer to accept only access tokens"),
    ("{issuers: [aged], scopes: [a]}", "limits token age (max_token_age_seconds)"),
    ("{issuers: [either], token_use: id}", "ID tokens (token_use: id)"),
    ("{issuers: [corp], scopes: [s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11]}",
     "11 any-of scopes exceed the native JWT authorizer's limit of 10 per route"),
    ("{issuers: [corp], scopes: [a], enforcement: lambda}", "enforcement: lambda set in the policy (the native JWT "
                                                            "authorizer could enforce it)"),
])
def test_routes_that_need_the_lambda_authorizer_say_why(tmp_path, route_yaml, reason):
    route = compiled_route(tmp_path, route_yaml)
    assert route.enforcement == "lambda" and route.needs_lambda_authorizer
    assert route.native_scopes == ()
    assert reason in route.reason


def test_ten_scopes_is_still_native(tmp_path):
    route = compiled_route(tmp_path, "{issuers: [corp], scopes: [s1, s2, s3, s4, s5, s6, s7, s8, s9, s10]}")
    assert route.enforcement == "native" and len(route.native_scopes) == 10


def test_bundled_and_loopback_keys_cannot_be_native(tmp_path, signing_key):
    (tmp_path / "keys.json").write_text(json.dumps(signing_key.jwks()))
    policy = load_text(tmp_path, """
        issuers:
          bundled: {issuer: https://idp.example.com, audiences: [a], jwks_file: keys.json}
          dev: {issuer: "http://127.0.0.1:9000", audiences: [a], local_development: true}
        apis:
          a:
            routes:
              "GET /b": {issuers: [bundled], scopes: [s]}
              "GET /d": {issuers: [dev], scopes: [s]}
    """)
    bundled, dev = compile_policy(policy).api("a").routes
    assert "keys are bundled (jwks_file/jwks)" in bundled.reason and bundled.enforcement == "lambda"
    assert "loopback development issuer" in dev.reason and dev.enforcement == "lambda"


def test_public_routes_get_no_authorizer(tmp_path):
    route = compiled_route(tmp_path, "{public: true}")
    assert route.public and not route.needs_native_authorizer and not route.needs_lambda_authorizer
    assert route.reason == "public: no token needed, so no authorizer"


@pytest.mark.parametrize("route_yaml, expected", [
    ("{issuers: [corp], scopes: [s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11], enforcement: native}",
     "enforcement: native is impossible here: 11 any-of scopes exceed"),
    ("{issuers: [corp], roles: [admin], scopes: [a], enforcement: native}", "roles needs the Lambda authorizer"),
    ("{issuers: [ec], scopes: [a], enforcement: native}", "cannot verify (RSA RS256/RS384/RS512 only)"),
])
def test_forced_native_that_cannot_work_is_a_policy_error(tmp_path, route_yaml, expected):
    err = policy_error(tmp_path, ISSUERS + f'apis:\n  a:\n    routes:\n      "GET /x": {route_yaml}\n')
    assert expected in str(err)
    assert err.field == 'apis.a.routes."GET /x".enforcement' and err.line == 11


def test_example_policy_decisions_and_summary():
    compiled = compile_policy(load_policy(REPO / "policies/example.yaml"))
    decisions = {(r.api, r.route_key): r.enforcement for api in compiled.apis.values() for r in api.routes
                 if not r.public}
    assert decisions == {
        ("orders", "GET /orders"): "native", ("orders", "GET /orders/{id}"): "native",
        ("orders", "POST /orders"): "lambda", ("orders", "DELETE /orders/{id}"): "lambda",
        ("billing", "GET /invoices"): "native", ("billing", "GET /invoices/{id}"): "lambda",
        ("billing", "POST /invoices/{id}/refunds"): "lambda", ("billing", "ANY /exports/{path+}"): "lambda",
        ("notifications", "$connect"): "lambda", ("notifications", "$disconnect"): "connection",
        ("notifications", "$default"): "connection", ("notifications", "subscribe"): "connection",
    }
    assert compiled.api("orders").native_issuers == ("corp",)
    assert compiled.api("billing").needs_lambda_authorizer
    summary = compiled.describe()
    assert "  GET /health          public  public: no token needed" in summary
    assert "DELETE /orders/{id}  lambda  groups needs the Lambda authorizer" in summary
    with pytest.raises(KeyError, match="no API named 'x'"):
        compiled.api("x")
