"""The HTTP API emulator on a CDK-shaped template: native JWT routes through discovery on a real local server, Lambda
routes through the real http_api.py handler with payload 2.0, identity sources and the simple-response cache."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.gateways.cfn import Template
from sandbox.gateways.http_api import HttpApiEmulator
from stacks.policy import load_policy_text
from stacks.policy.render import render_route_table
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.tokens import mint

REPO = Path(__file__).resolve().parents[3]


def http_template(issuer):
    api = {"Ref": "Api"}
    resources = {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "HTTP"}},
        "Jwt": {"Type": "AWS::ApiGatewayV2::Authorizer", "Properties": {
            "ApiId": api, "AuthorizerType": "JWT", "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {"Issuer": issuer, "Audience": ["orders-api"]}}},
        "Lambda": {"Type": "AWS::ApiGatewayV2::Authorizer", "Properties": {
            "ApiId": api, "AuthorizerType": "REQUEST", "AuthorizerPayloadFormatVersion": "2.0",
            "AuthorizerResultTtlInSeconds": 300, "EnableSimpleResponses": True,
            "IdentitySource": ["$request.header.Authorization", "$context.routeKey"],
            "AuthorizerUri": {"Fn::Join": ["", ["arn:", {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Handler": "lambdas.authorizers.http_api.handler", "Environment": {"Variables": {
                "AUTHGATE_POLICY": "/var/task/authgate_routes.json", "AUTHGATE_API": "orders",
                "AUTHGATE_RESPONSE": "simple", "AUTHGATE_RESULT_TTL_SECONDS": "300",
                "AUTHGATE_IDENTITY_SOURCES": "$request.header.Authorization,$context.routeKey"}}}},
        "Health": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": api, "RouteKey": "GET /health", "AuthorizationType": "NONE"}},
        "List": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": api, "RouteKey": "GET /orders", "AuthorizationType": "JWT", "AuthorizerId": {"Ref": "Jwt"},
            "AuthorizationScopes": ["orders:read"]}},
        "Read": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": api, "RouteKey": "GET /orders/{id}", "AuthorizationType": "CUSTOM",
            "AuthorizerId": {"Ref": "Lambda"}}},
    }
    return Template({"Resources": resources})


@pytest.fixture()
def setup(http_server, tmp_path, key):  # noqa: F811
    issuer = http_server.base_url.rstrip("/")
    http_server.serve_json("/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": issuer + "/jwks"})
    http_server.serve_json("/jwks", key.jwks())
    policy = load_policy_text(f"""
issuers:
  local: {{issuer: "{issuer}", local_development: true, audiences: [orders-api]}}
apis:
  orders:
    routes:
      "GET /health": {{public: true}}
      "GET /orders": {{issuers: [local], scopes: [orders:read]}}
      "GET /orders/{{id}}": {{issuers: [local], scopes: [orders:read], claims: {{tenant: [acme]}}}}
""", base_dir=tmp_path)
    table = tmp_path / "routes.json"
    table.write_text(json.dumps(render_route_table(policy)))
    emulator = HttpApiEmulator(http_template(issuer), code_root_of=lambda function_id: REPO,
                               route_table_path=str(table))
    return emulator, key, issuer


def auth(token):
    return {"authorization": f"Bearer {token}"}


def test_native_jwt_route_checks_signature_audience_and_scopes(setup):
    http_api, key, issuer = setup
    assert http_api.decide("GET", "/orders", auth(mint(key, issuer=issuer, scope="orders:read"))).allowed
    no_scope = http_api.decide("GET", "/orders", auth(mint(key, issuer=issuer, scope="profile")))
    assert (no_scope.status, no_scope.code) == (403, "insufficient_scope")
    other_api = http_api.decide("GET", "/orders", auth(mint(key, issuer=issuer, audience="billing-api",
                                                             scope="orders:read")))
    assert (other_api.status, other_api.code) == (401, "invalid_audience")
    assert http_api.decide("GET", "/orders", {}).status == 401
    assert http_api.decide("GET", "/health", {}).allowed
    assert http_api.decide("GET", "/missing", {}).status == 404


def test_lambda_route_runs_the_handler_and_caches_per_token_and_route_key(setup):
    http_api, key, issuer = setup
    function = http_api.lambda_authorizers["Lambda"].function
    tenant = mint(key, issuer=issuer, scope="orders:read", tenant="acme")
    assert http_api.decide("GET", "/orders/1", auth(tenant)).allowed
    assert http_api.decide("GET", "/orders/2", auth(tenant)).allowed
    assert function.invocations == 1   # same token, same route key: the cached answer
    outsider = mint(key, issuer=issuer, scope="orders:read", tenant="globex")
    refused = http_api.decide("GET", "/orders/1", auth(outsider))
    assert (refused.status, refused.code, function.invocations) == (403, "claim_mismatch", 2)
    assert http_api.decide("GET", "/orders/1", {}).status == 401 and function.invocations == 2


def test_the_event_is_payload_format_2(setup):
    http_api, key, issuer = setup
    function = http_api.lambda_authorizers["Lambda"].function
    seen = []
    original = function.handler
    function.handler = lambda event, context: seen.append(event) or original(event, context)
    http_api.decide("GET", "/orders/7?expand=1", auth(mint(key, issuer=issuer, scope="orders:read", tenant="acme")))
    (event,) = seen
    assert event["version"] == "2.0" and event["type"] == "REQUEST" and event["routeKey"] == "GET /orders/{id}"
    assert event["rawPath"] == "/orders/7" and event["rawQueryString"] == "expand=1"
    assert event["pathParameters"] == {"id": "7"} and event["identitySource"][1] == "GET /orders/{id}"
    assert event["routeArn"].endswith("/$default/GET/orders/7")
    assert event["requestContext"]["http"]["method"] == "GET"
