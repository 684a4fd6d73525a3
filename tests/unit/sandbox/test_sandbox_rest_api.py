"""The REST API emulator on a CDK-shaped template: the real rest.py handler, IAM policy per method ARN, result cache."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.gateways.cfn import Template
from sandbox.gateways.rest_api import RestApiEmulator
from stacks.policy import load_policy_text
from stacks.policy.render import render_route_table
from tests.support.tokens import ISSUER, SigningKey, mint

REPO = Path(__file__).resolve().parents[3]
POLICY = """
issuers:
  corp: {issuer: %s, audiences: [orders-api], jwks_file: keys.json}
apis:
  orders:
    routes:
      "GET /health": {public: true}
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
      "GET /orders/{id}": {issuers: [corp], scopes: [orders:read], claims: {tenant: [acme]}}
      "POST /orders": {issuers: [corp], scopes_all: [orders:read, orders:write]}
""" % ISSUER


def rest_template(kind="REQUEST", ttl=300, validation=None, identity_source="method.request.header.Authorization"):
    root = {"Fn::GetAtt": ["Api", "RootResourceId"]}
    resources = {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "authgate-orders"}},
        "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"StageName": "v1"}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Handler": "lambdas.authorizers.rest.handler",
            "Environment": {"Variables": {"AUTHGATE_POLICY": "/var/task/authgate_routes.json", "AUTHGATE_API": "orders"}}}},
        "Authorizer": {"Type": "AWS::ApiGateway::Authorizer", "Properties": {
            "Type": kind, "IdentitySource": identity_source, "AuthorizerResultTtlInSeconds": ttl,
            "AuthorizerUri": {"Fn::Join": ["", ["arn:aws:apigateway:lambda:path/functions/",
                                                {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]}}},
        "Health": {"Type": "AWS::ApiGateway::Resource", "Properties": {"ParentId": root, "PathPart": "health"}},
        "Orders": {"Type": "AWS::ApiGateway::Resource", "Properties": {"ParentId": root, "PathPart": "orders"}},
        "OrderId": {"Type": "AWS::ApiGateway::Resource", "Properties": {"ParentId": {"Ref": "Orders"}, "PathPart": "{id}"}},
    }
    if validation:
        resources["Authorizer"]["Properties"]["IdentityValidationExpression"] = validation
    for lid, resource, method, public in (("HealthGet", "Health", "GET", True), ("OrdersGet", "Orders", "GET", False),
                                          ("OrderGet", "OrderId", "GET", False), ("OrdersPost", "Orders", "POST", False)):
        props = {"HttpMethod": method, "ResourceId": {"Ref": resource}, "AuthorizationType": "NONE" if public else "CUSTOM"}
        if not public:
            props["AuthorizerId"] = {"Ref": "Authorizer"}
        resources[lid] = {"Type": "AWS::ApiGateway::Method", "Properties": props}
    return Template({"Resources": resources})


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture()
def route_table(tmp_path, key):
    (tmp_path / "keys.json").write_text(json.dumps(key.jwks()))
    table = render_route_table(load_policy_text(POLICY, base_dir=tmp_path))
    path = tmp_path / "authgate_routes.json"
    path.write_text(json.dumps(table))
    return str(path)


def emulator_for(route_table, clock, **template_options):
    return RestApiEmulator(rest_template(**template_options), code_root_of=lambda function_id: REPO,
                           route_table_path=route_table, clock=clock)


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def test_policy_is_cached_per_token_and_reused_for_other_methods(route_table, key):
    clock = Clock()
    rest = emulator_for(route_table, clock)
    token = mint(key, scope="orders:read")
    first = rest.decide("GET", "/orders", bearer(token))
    assert first.allowed and rest.invocations == 1
    # Same token, another method: answered from the cached policy (the token has no tenant claim) without invoking.
    other = rest.decide("GET", "/orders/42", bearer(token))
    assert (other.allowed, other.status, rest.invocations) == (False, 403, 1)
    assert "cached policy from GET /orders" in other.checked
    assert rest.decide("POST", "/orders", bearer(token)).status == 403
    assert rest.decide("GET", "/orders", bearer(token)).allowed and rest.invocations == 1
    clock.now += 301   # the TTL is over: the function runs again
    assert rest.decide("GET", "/orders/42", bearer(token)).status == 403 and rest.invocations == 2


def test_a_cache_keyed_on_method_and_path_too_is_reused_only_for_the_same_request(route_table, key):
    # What the construct deploys when some policy may name only the current request (choose_authorizer_cache).
    clock = Clock()
    rest = emulator_for(route_table, clock,
                        identity_source="method.request.header.Authorization,context.httpMethod,context.path")
    token = mint(key, scope="orders:read")
    assert rest.decide("GET", "/orders", bearer(token)).allowed and rest.invocations == 1
    assert rest.decide("GET", "/orders", bearer(token)).allowed and rest.invocations == 1
    assert rest.decide("POST", "/orders", bearer(token)).status == 403 and rest.invocations == 2
    assert rest.decide("GET", "/orders/42", bearer(token)).status == 403 and rest.invocations == 3


def test_allowed_tenant_token_and_the_method_arn_the_handler_sees(route_table, key):
    rest = emulator_for(route_table, Clock())
    token = mint(key, scope="orders:read", tenant="acme")
    assert rest.decide("GET", "/orders/42", bearer(token)).allowed
    assert rest.method_arn("GET", "/orders/42").endswith(":api/v1/GET/orders/42")
    assert rest.authorizers["Authorizer"].function.last_audit()["route"] == "GET /orders/{id}"


def test_bad_or_missing_tokens_are_401_and_never_cached(route_table, key):
    rest = emulator_for(route_table, Clock())
    assert rest.decide("GET", "/orders", {}).status == 401 and rest.invocations == 0   # identity source missing
    stranger = SigningKey.generate()
    forged = mint(stranger, scope="orders:read", header={"kid": key.kid})
    for expected_invocations in (1, 2):
        refused = rest.decide("GET", "/orders", bearer(forged))
        assert (refused.status, refused.code, rest.invocations) == (401, "bad_signature", expected_invocations)


def test_public_and_undefined_resources(route_table):
    rest = emulator_for(route_table, Clock())
    assert rest.decide("GET", "/health", {}).allowed and rest.invocations == 0
    missing = rest.decide("GET", "/nowhere", {})
    assert (missing.status, dict(missing.body)) == (403, {"message": "Missing Authentication Token"})
    assert rest.decide("DELETE", "/orders", {}).status == 403


def test_token_authorizer_event_and_identity_validation_expression(route_table, key):
    rest = emulator_for(route_table, Clock(), kind="TOKEN", validation=r"^Bearer [-0-9A-Za-z_.]+$")
    assert rest.decide("GET", "/orders", {"authorization": "Basic dXNlcjpwYXNz"}).status == 401
    assert rest.invocations == 0
    assert rest.decide("GET", "/orders", bearer(mint(key, scope="orders:read"))).allowed
    assert rest.invocations == 1
