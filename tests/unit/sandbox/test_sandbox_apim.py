"""The APIM emulator interpreting render_apim's XML: validate-jwt (keys, audiences, issuers, required claims with
any/all and separator, skew), failed-validation status and message, header deletion and identity headers."""
from __future__ import annotations

import json

import pytest

from sandbox.gateways.apim import ApimEmulationError, ApimEmulator, ClaimRule
from stacks.policy import load_policy_text
from stacks.policy.render.apim import render_apim, render_apim_operations
from tests.support.tokens import ISSUER, SigningKey, mint

POLICY = """
issuers:
  corp: {issuer: %s, audiences: [orders-api], jwks_file: keys.json, leeway_seconds: 30}
apis:
  orders:
    routes:
      "GET /health": {public: true}
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
      "GET /orders/{id}": {issuers: [corp], scopes: [orders:read], claims: {tenant: [acme]}}
      "POST /orders": {issuers: [corp], scopes_all: [orders:read, orders:write]}
""" % ISSUER
OPERATIONS = [("GET /health", "GET", "/health"), ("GET /orders", "GET", "/orders"),
              ("GET /orders/{id}", "GET", "/orders/{id}"), ("POST /orders", "POST", "/orders")]


@pytest.fixture(scope="module")
def key():
    return SigningKey.generate()


@pytest.fixture(scope="module")
def apim(key, tmp_path_factory):
    folder = tmp_path_factory.mktemp("apim")
    (folder / "keys.json").write_text(json.dumps(key.jwks()))
    policy = load_policy_text(POLICY, base_dir=folder)
    return ApimEmulator(render_apim(policy, "orders"), OPERATIONS, render_apim_operations(policy, "orders"))


def auth(token, **more):
    return {"authorization": f"Bearer {token}", **more}


def test_a_good_token_passes_and_identity_headers_replace_what_the_client_sent(apim, key):
    decision = apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", subject="svc-1", azp="app-7"),
                                                  **{"x-authgate-subject": "admin", "x-apigateway-api-userinfo": "x"}))
    assert decision.allowed
    assert decision.set_headers["x-authgate-subject"] == "svc-1"
    assert decision.set_headers["x-authgate-client-id"] == "app-7"
    assert decision.set_headers["x-authgate-scopes"] == "orders:read"
    assert "x-apigateway-api-userinfo" in decision.drop_headers


def test_api_level_failures_answer_401_with_the_rendered_message(apim, key):
    for headers in ({}, {"authorization": "Basic abc"}, auth(mint(key, audience="billing-api", scope="orders:read")),
                    auth(mint(key, scope="orders:read", lifetime=-120))):
        refused = apim.decide("GET", "/orders", headers)
        assert refused.status == 401 and refused.body["message"].startswith("Unauthorized"), headers
    # 30 s of clock skew from the issuer's leeway: a token expired 10 s ago still passes.
    assert apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", lifetime=-10))).allowed


def test_operation_rules_answer_403(apim, key):
    read_only = mint(key, scope="orders:read")
    refused = apim.decide("POST", "/orders", auth(read_only))
    assert (refused.status, refused.code) == (403, "claim_mismatch") and refused.body["message"].startswith("Forbidden")
    assert apim.decide("POST", "/orders", auth(mint(key, scope="orders:write orders:read"))).allowed
    assert apim.decide("GET", "/orders/9", auth(mint(key, scope="orders:read", tenant="globex"))).status == 403
    assert apim.decide("GET", "/orders/9", auth(mint(key, scope="orders:read", tenant="acme"))).allowed


def test_public_operation_needs_no_token_and_unknown_paths_are_404(apim):
    assert apim.decide("GET", "/health", {}).allowed
    assert apim.decide("GET", "/nowhere", {}).status == 404


def test_required_claim_matching():
    all_of = ClaimRule("scope", "all", " ", ("a", "b"))
    assert all_of.failure({"scope": "b c a"}) is None
    assert all_of.failure({"scope": "a"}) and all_of.failure({})
    any_of = ClaimRule("roles", "any", None, ("admin",))
    assert any_of.failure({"roles": ["reader", "admin"]}) is None
    assert any_of.failure({"roles": "admin reader"})   # no separator: the whole string is one value


def test_policies_the_emulator_cannot_interpret_are_refused():
    api = "<policies><inbound><base /><send-request mode='new' /></inbound></policies>"
    with pytest.raises(ApimEmulationError, match="send-request"):
        ApimEmulator(api, OPERATIONS, {})
    unsigned = ("<policies><inbound><validate-jwt header-name='Authorization' require-signed-tokens='false'>"
                "<audiences><audience>a</audience></audiences><issuers><issuer>https://i</issuer></issuers>"
                "</validate-jwt></inbound></policies>")
    with pytest.raises(ApimEmulationError, match="unsigned"):
        ApimEmulator(unsigned, OPERATIONS, {})
    with pytest.raises(Exception):   # defusedxml refuses entity declarations
        ApimEmulator('<!DOCTYPE p [<!ENTITY x "y">]><policies><inbound>&x;</inbound></policies>', OPERATIONS, {})
