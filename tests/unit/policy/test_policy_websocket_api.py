"""WebSocket APIs in the auth policy: protocol, route keys, $connect-only requirements, compiler, renderers, schema."""
from __future__ import annotations

import json

import jsonschema
import pytest

from lambdas.validation.route_table import RouteTable
from stacks.policy import load_policy
from stacks.policy.compiler import CONNECTION, LAMBDA, WEBSOCKET_CONNECT_REASON, compile_policy
from stacks.policy.errors import format_field_path
from stacks.policy.render import render_apim, render_apim_operations, render_openapi, render_route_table
from stacks.policy.route_keys import WebSocketRouteKey, parse_websocket_route_key
from tests.unit.policy.policy_testing import ISSUER_BLOCK, REPO, load_text, policy_error

WEBSOCKET_API = ISSUER_BLOCK + """    jwks_uri: https://idp.example.com/keys
apis:
  live:
    protocol: websocket
    routes:
      $connect: {issuers: [corp], scopes: [live:read], roles: [viewer]}
      $disconnect: {}
      $default: {description: anything without an action}
      sendMessage: {}
  orders:
    routes:
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
"""


def _websocket_policy(routes: str) -> str:
    return ISSUER_BLOCK + "apis:\n  live:\n    protocol: websocket\n    routes:\n" + routes


def test_example_policy_has_a_websocket_api_and_http_stays_the_default():
    policy = load_policy(REPO / "policies/example.yaml")
    notifications = policy.api("notifications")
    assert notifications.protocol == "websocket" and notifications.is_websocket
    assert list(notifications.routes) == ["$connect", "$disconnect", "$default", "subscribe"]
    assert notifications.connect_route.scopes == ["orders-api/orders.read"]
    assert policy.api("orders").protocol == "http" and policy.api("orders").connect_route is None
    assert notifications.route_keys()["subscribe"] == WebSocketRouteKey("subscribe")


def test_route_keys_and_iteration_follow_the_protocol(tmp_path):
    policy = load_text(tmp_path, WEBSOCKET_API)
    keys = {(api, getattr(key, "key", None)) for api, key, _ in policy.iter_routes()}
    assert keys == {("live", "$connect"), ("live", "$disconnect"), ("live", "$default"), ("live", "sendMessage"),
                    ("orders", "GET /orders")}
    # $connect's requirements count like any route's when an issuer's scopes and roles are collected.
    assert policy.issuer_scopes("corp") == ("live:read", "orders:read")
    assert policy.issuer_roles("corp") == ("viewer",)


@pytest.mark.parametrize("key", ["$connect", "$disconnect", "$default", "sendMessage", "chat.post", "a:b/c-d_1"])
def test_websocket_route_keys_accepted(key):
    assert parse_websocket_route_key(key).key == key


@pytest.mark.parametrize("key, expected", [
    ("$connected", "of the keys starting with '$' API Gateway knows only $connect, $disconnect, $default"),
    ("GET /orders", "is an HTTP route key, but this API has protocol: websocket"),
    ("send message", "is not a WebSocket route key"),
    ("x" * 129, "is not a WebSocket route key"),
    ("", "is not a WebSocket route key"),
])
def test_websocket_route_keys_refused(key, expected):
    with pytest.raises(ValueError, match="WebSocket route key") as info:
        parse_websocket_route_key(key)
    assert expected in str(info.value)


@pytest.mark.parametrize("route, field", [
    ("$default: {issuers: [corp]}", "issuers"),
    ("sendMessage: {scopes: [live:write]}", "scopes"),
    ("$disconnect: {public: true}", "public"),
    ("$default: {public: false}", "public"),
    ("sendMessage: {claims: {tenant: [acme]}}", "claims"),
    ("sendMessage: {enforcement: lambda}", "enforcement"),
])
def test_message_routes_cannot_carry_requirements(tmp_path, route, field):
    err = policy_error(tmp_path, _websocket_policy(f"      $connect: {{issuers: [corp]}}\n      {route}\n"))
    key = route.split(":")[0]
    assert err.field == format_field_path(("apis", "live", "routes", key, field))
    assert err.line == 10 and str(err).startswith(f"{tmp_path / 'policy.yaml'}:10: ")
    assert f"route {key!r} of a WebSocket API cannot set {field}" in str(err)
    assert "authorization happens once per connection on $connect" in str(err)
    assert 'Put the requirement on the "$connect" route' in str(err)


def test_a_websocket_api_needs_connect(tmp_path):
    err = policy_error(tmp_path, _websocket_policy("      $default: {}\n      sendMessage: {}\n"))
    assert err.field == "apis.live.routes" and err.line == 8
    assert 'a WebSocket API needs a "$connect" route' in str(err)


@pytest.mark.parametrize("route, field, expected", [
    ("$connect: {scopes: [a]}", 'apis.live.routes."$connect"', "a protected route names the issuers"),
    ("$connect: {issuers: [nope]}", 'apis.live.routes."$connect".issuers[0]', "no issuer named 'nope'"),
    ("$connect: {issuers: [corp], enforcement: native}", 'apis.live.routes."$connect".enforcement',
     "enforcement: native is impossible on a WebSocket API: API Gateway has no native JWT authorizer"),
    ("$connnect: {issuers: [corp]}", 'apis.live.routes."$connnect"', "API Gateway knows only $connect"),
    ('"GET /x": {issuers: [corp]}', 'apis.live.routes."GET /x"', "is an HTTP route key"),
])
def test_connect_route_problems_are_located(tmp_path, route, field, expected):
    extra = "" if route.startswith(("$connect:", "$connect ")) else "      $connect: {issuers: [corp]}\n"
    err = policy_error(tmp_path, _websocket_policy(extra + f"      {route}\n"))
    problem = next(p for p in err.problems if p.field == field)
    assert expected in problem.message and problem.line is not None


def test_websocket_keys_in_an_http_api_are_refused(tmp_path):
    err = policy_error(tmp_path, ISSUER_BLOCK + "apis:\n  a:\n    routes:\n      $connect: {issuers: [corp]}\n")
    assert err.field == 'apis.a.routes."$connect"' and err.line == 8
    assert "is not a route key" in str(err)


def test_unknown_protocol_is_refused(tmp_path):
    err = policy_error(tmp_path, ISSUER_BLOCK + "apis:\n  a:\n    protocol: grpc\n    routes:\n      "
                                                "\"GET /x\": {public: true}\n")
    assert err.field == "apis.a.protocol" and err.line == 7
    assert "'grpc' is not allowed; use one of 'http' or 'websocket'" in str(err)


def test_public_connect_needs_no_authorizer(tmp_path):
    policy = load_text(tmp_path, _websocket_policy("      $connect: {public: true}\n      $default: {}\n"))
    (connect, default) = compile_policy(policy).api("live").routes
    assert connect.public and not connect.needs_lambda_authorizer and not connect.needs_native_authorizer
    assert default.enforcement == CONNECTION


def test_compiler_sends_connect_to_the_lambda_authorizer_and_says_why(tmp_path):
    compiled = compile_policy(load_text(tmp_path, WEBSOCKET_API))
    live = compiled.api("live")
    assert live.protocol == "websocket" and compiled.api("orders").protocol == "http"
    connect = live.routes[0]
    assert (connect.route_key, connect.enforcement, connect.reason) == ("$connect", LAMBDA, WEBSOCKET_CONNECT_REASON)
    assert WEBSOCKET_CONNECT_REASON == ("WebSocket APIs authorize on $connect with a Lambda REQUEST authorizer; "
                                        "there is no native JWT authorizer for them")
    assert connect.method is None and connect.path is None and connect.needs_lambda_authorizer
    assert [r.route_key for r in live.websocket_message_routes] == ["$disconnect", "$default", "sendMessage"]
    assert all(not r.needs_lambda_authorizer and not r.needs_native_authorizer for r in live.websocket_message_routes)
    assert live.needs_lambda_authorizer and live.native_issuers == ()
    summary = compiled.describe()
    assert "api live (websocket):" in summary and "api orders:" in summary
    assert "$connect     lambda  WebSocket APIs authorize on $connect" in summary
    assert "sendMessage  connection  WebSocket message route: API Gateway runs no authorizer here" in summary


def test_route_table_writes_connect_as_the_runtime_reads_it(tmp_path):
    table = render_route_table(load_text(tmp_path, WEBSOCKET_API))
    live = table["apis"]["live"]
    assert live["protocol"] == "websocket"
    assert live["connection_routes"] == ["$disconnect", "$default", "sendMessage"]
    (connect,) = live["routes"]
    assert connect["route_key"] == "$connect" and connect["method"] is None and connect["path"] is None
    assert connect["enforcement"] == "lambda" and connect["issuers"] == ["corp"]
    assert connect["scopes"] == ["live:read"] and connect["roles"] == ["viewer"]
    # An HTTP API's entry is unchanged: no protocol member, no connection routes.
    assert set(table["apis"]["orders"]) == {"routes"}

    loaded = RouteTable.load(json.loads(json.dumps(table))).api("live")
    route = loaded.route("$connect")
    assert route is not None and route.is_special and route.issuers == ("corp",)
    assert route.requirement.scopes_any == ("live:read",) and route.requirement.roles_any == ("viewer",)
    assert [r.route_key for r in loaded.routes] == ["$connect"]
    # A message route is nothing the authorizer decides on.
    assert loaded.route("sendMessage") is None and loaded.match("GET", "/") is None


def test_openapi_and_apim_refuse_a_websocket_api(tmp_path):
    policy = load_text(tmp_path, WEBSOCKET_API)
    with pytest.raises(ValueError, match=r"API 'live' is a WebSocket API \(protocol: websocket\); GCP API Gateway"):
        render_openapi(policy, "live", backend_url="https://live.example.com")
    for render in (render_apim, render_apim_operations):
        with pytest.raises(ValueError, match=r"API 'live' is a WebSocket API \(protocol: websocket\); authgate "
                                             r"renders APIM policies for HTTP APIs only"):
            render(policy, "live")
    # The HTTP API of the same policy still renders.
    assert render_openapi(policy, "orders", backend_url="https://orders.example.com")["paths"]
    assert "validate-jwt" in render_apim(policy, "orders")


def _schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "policies/authgate.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def test_schema_checks_route_keys_by_protocol():
    issuers = {"corp": {"issuer": "https://idp.example.com", "audiences": ["a"]}}
    good = {"issuers": issuers, "apis": {"live": {"protocol": "websocket", "routes": {
        "$connect": {"issuers": ["corp"]}, "$default": {}, "sendMessage": {}}}}}
    assert list(_schema_validator().iter_errors(good)) == []
    bad = {"issuers": issuers, "apis": {
        "live": {"protocol": "websocket", "routes": {"$connect": {"issuers": ["corp"]}, "GET /x": {}}},
        "http": {"routes": {"$connect": {"issuers": ["corp"]}}},
        "odd": {"protocol": "mqtt", "routes": {"GET /x": {"public": True}}}}}
    messages = " | ".join(e.message for e in _schema_validator().iter_errors(bad))
    assert "'GET /x' does not match" in messages
    assert "'$connect' does not match" in messages
    assert "'mqtt' is not one of ['http', 'websocket']" in messages


@pytest.mark.parametrize("stack_file", ["Pulumi.gcp-dev.yaml", "Pulumi.azure-dev.yaml"])
def test_pulumi_stacks_refuse_a_websocket_api_before_building_anything(stack_file):
    import yaml

    from stacks.pulumi_program.program import build_stack
    from stacks.pulumi_program.settings import ConfigSource, StackConfigError

    raw = yaml.safe_load((REPO / stack_file).read_text(encoding="utf-8"))["config"]
    values = {key: json.dumps(value) if isinstance(value, (dict, list)) else str(value) for key, value in raw.items()}
    values["authgate:api"] = "notifications"
    with pytest.raises(StackConfigError) as raised:
        build_stack(ConfigSource(values.get), root=REPO)
    assert raised.value.key == "authgate:api"
    assert "API 'notifications' is a WebSocket API (protocol: websocket)" in str(raised.value)
    assert "Pick an HTTP API (orders, billing)" in str(raised.value)
