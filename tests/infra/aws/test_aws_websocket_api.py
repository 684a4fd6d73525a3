"""The WebSocket API stack: $connect authorizer and identity source, the authorizer's settings, message routes,
stage logging and throttling, the echo backend's handshake, and the refusals around WebSocket APIs."""
from __future__ import annotations

import copy
import importlib.util
import json
import os

import pytest
from aws_cdk.assertions import Match, Template

from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.route_plan import ApiPlan
from stacks.aws.websocket_api.infrastructure import (RUNTIME_DIR, WebSocketPlan, websocket_identity_source)
from stacks.policy import load_policy
from stacks.policy.render import render_route_table
from tests.infra.aws.conftest import REPO, resources_of


@pytest.fixture(scope="module")
def example_tables() -> dict:
    policy = load_policy(REPO / "policies/example.yaml")
    return {name: render_route_table(policy, apis=[name]) for name in ("notifications", "orders")}


def _routes(tpl: dict) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in resources_of(tpl, "AWS::ApiGatewayV2::Route").values()}


def _authorizer_function(tpl: dict) -> dict:
    (function,) = [f["Properties"] for f in resources_of(tpl, "AWS::Lambda::Function").values()
                   if f["Properties"].get("Handler") == "lambdas.authorizers.websocket.handler"]
    return function


def test_connect_runs_the_lambda_request_authorizer_on_the_query_token(templates):
    tpl = templates["WebSocketApi"]
    Template.from_json(tpl).has_resource_properties("AWS::ApiGatewayV2::Api", {
        "ProtocolType": "WEBSOCKET", "Name": "authgate-notifications",
        "RouteSelectionExpression": "$request.body.action"})
    (authorizer,) = [a["Properties"] for a in resources_of(tpl, "AWS::ApiGatewayV2::Authorizer").values()]
    assert authorizer["AuthorizerType"] == "REQUEST" and authorizer["Name"] == "authgate-notifications"
    assert authorizer["IdentitySource"] == ["route.request.querystring.access_token"]
    assert "AuthorizerResultTtlInSeconds" not in authorizer   # WebSocket authorizer results are never cached
    [(authorizer_id, _)] = resources_of(tpl, "AWS::ApiGatewayV2::Authorizer").items()
    routes = _routes(tpl)
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}


def test_message_routes_exist_without_an_authorizer_and_say_why(templates):
    tpl = templates["WebSocketApi"]
    routes = _routes(tpl)
    assert set(routes) == {"$connect", "$disconnect", "$default", "subscribe"}
    for key in ("$disconnect", "$default", "subscribe"):
        assert routes[key]["AuthorizationType"] == "NONE" and "AuthorizerId" not in routes[key]
    for resource in resources_of(tpl, "AWS::ApiGatewayV2::Route").values():
        if resource["Properties"]["RouteKey"] != "$connect":
            skips = {s["id"]: s["comment"] for s in resource["Metadata"]["checkov"]["skip"]}
            assert "authorizers on $connect only" in skips["CKV_AWS_309"]
    # The echo backend answers $default and custom actions; $disconnect has nobody left to answer.
    assert routes["$default"]["RouteResponseSelectionExpression"] == "$default"
    assert routes["subscribe"]["RouteResponseSelectionExpression"] == "$default"
    assert "RouteResponseSelectionExpression" not in routes["$disconnect"]


def test_authorizer_function_reads_the_notifications_table_and_the_query_token(templates):
    function = _authorizer_function(templates["WebSocketApi"])
    assert function["Environment"]["Variables"] == {
        "AUTHGATE_POLICY": "/var/task/authgate_routes.json", "AUTHGATE_API": "notifications",
        "AUTHGATE_WS_TOKEN_SOURCE": "query", "AUTHGATE_WS_QUERY_PARAM": "access_token",
        "AUTHGATE_METRICS_NAMESPACE": "authgate/dev"}
    assert function["Architectures"] == ["arm64"]
    tpl = Template.from_json(templates["WebSocketApi"])
    tpl.has_resource_properties("AWS::Lambda::Permission", {
        "Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com"})


def test_stage_is_throttled_and_access_logged_without_the_query_string(templates):
    (stage,) = [s["Properties"] for s in resources_of(templates["WebSocketApi"], "AWS::ApiGatewayV2::Stage").values()]
    assert stage["AutoDeploy"] is True and stage["StageName"] == "v1"
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100}
    log_format = json.loads(stage["AccessLogSettings"]["Format"])
    assert log_format["routeKey"] == "$context.routeKey" and log_format["eventType"] == "$context.eventType"
    assert "authorizerError" in log_format
    # The token may travel in the query string: no field of the access log may carry it.
    assert not any("querystring" in value.lower() or "authorization" in value.lower()
                   for value in log_format.values() if value != "$context.authorizer.error")
    Template.from_json(templates["WebSocketApi"]).has_output("*", {"Value": Match.any_value(),
                                                                   "Description": Match.string_like_regexp("wss://")})


@pytest.mark.parametrize("source, identity, env", [
    ("protocol", "route.request.header.Sec-WebSocket-Protocol", {"AUTHGATE_WS_PROTOCOL_MARKER": "authgate.bearer"}),
    ("header", "route.request.header.Authorization", {}),
])
def test_identity_source_follows_the_token_source(example_tables, authorizer_asset_dir, source, identity, env):
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App, aws_lambda as lambda_

    from stacks.aws.stacks import WebSocketApiStack
    plan = WebSocketPlan.from_route_table(example_tables["notifications"], "notifications")
    stack = WebSocketApiStack(App(), "Ws", plan=plan, route_table_path="authgate_routes.json", token_source=source,
                              authorizer_code=lambda_.Code.from_asset(str(authorizer_asset_dir)))
    tpl = Template.from_stack(stack).to_json()
    (authorizer,) = [a["Properties"] for a in resources_of(tpl, "AWS::ApiGatewayV2::Authorizer").values()]
    assert authorizer["IdentitySource"] == [identity]
    variables = _authorizer_function(tpl)["Environment"]["Variables"]
    assert variables["AUTHGATE_WS_TOKEN_SOURCE"] == source
    assert {k: v for k, v in variables.items() if k in ("AUTHGATE_WS_PROTOCOL_MARKER", "AUTHGATE_WS_QUERY_PARAM")} \
        == env


def test_identity_source_refusals():
    assert websocket_identity_source("query", query_param="token") == "route.request.querystring.token"
    with pytest.raises(UnsupportedConfiguration, match="token_source 'cookie' is not one of query, protocol, header"):
        websocket_identity_source("cookie")
    with pytest.raises(UnsupportedConfiguration, match="query_param 'a b'"):
        websocket_identity_source("query", query_param="a b")


def test_http_and_rest_constructs_refuse_a_websocket_api(example_tables):
    with pytest.raises(UnsupportedConfiguration, match=r"API 'notifications' is a WebSocket API \(protocol: "
                                                       r"websocket\); the HTTP API and REST API constructs"):
        ApiPlan.from_route_table(example_tables["notifications"], "notifications")
    with pytest.raises(UnsupportedConfiguration, match="API 'orders' is an HTTP API; the WebSocket API construct"):
        WebSocketPlan.from_route_table(example_tables["orders"], "orders")


def _broken(table: dict, change) -> dict:
    table = copy.deepcopy(table)
    change(table["apis"]["notifications"])
    return table


@pytest.mark.parametrize("change, message", [
    (lambda api: api["routes"][0].update(enforcement="native"), "no native JWT authorizer for WebSocket APIs"),
    (lambda api: api["routes"][0].update(issuers=[]), "a non-public route must name at least one issuer"),
    (lambda api: api["routes"].clear(), "exactly one authorized route"),
    (lambda api: api["connection_routes"].append("GET /x"), "is an HTTP route key"),
    (lambda api: api["connection_routes"].append("$default"), "lists '$default' twice"),
])
def test_websocket_plan_refuses_tables_it_cannot_deploy(example_tables, change, message):
    with pytest.raises(UnsupportedConfiguration, match=message.replace("$", r"\$")):
        WebSocketPlan.from_route_table(_broken(example_tables["notifications"], change), "notifications")


def test_plan_of_the_example(example_tables):
    plan = WebSocketPlan.from_route_table(example_tables["notifications"], "notifications")
    assert (plan.connect_public, plan.connect_issuers) == (False, ("corp",))
    assert plan.message_routes == ("$disconnect", "$default", "subscribe") and set(plan.issuers) == {"corp"}


def test_app_refuses_a_websocket_setting_that_names_no_websocket_api(tmp_path):
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from stacks.aws.app import build
    from stacks.aws.settings import AppSettings

    def settings(http_api="orders", **websocket):
        values = {"authgate:policy": str(REPO / "policies/example.yaml"), "authgate:api": http_api,
                  "authgate:websocket": websocket or None, "authgate:authorizer_asset_dir": str(tmp_path)}
        return AppSettings.from_context(values.get)

    with pytest.raises(UnsupportedConfiguration, match="authgate:websocket.api 'chat' is not in"):
        build(App(outdir=str(tmp_path / "out")), settings(api="chat"))
    with pytest.raises(UnsupportedConfiguration, match="API 'billing' is an HTTP API"):
        build(App(outdir=str(tmp_path / "out")), settings(api="billing"))
    with pytest.raises(UnsupportedConfiguration, match="unknown field"):
        settings(api="notifications", token="query")
    # A WebSocket API named as the HTTP/REST API: refused with the way to deploy it instead.
    with pytest.raises(UnsupportedConfiguration, match=r"is a WebSocket API .*authgate:websocket"):
        build(App(outdir=str(tmp_path / "out")), settings("notifications"))


def _echo_handler():
    spec = importlib.util.spec_from_file_location("connection_echo", RUNTIME_DIR / "connection_echo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_echo_backend_selects_the_marker_never_the_token_and_echoes_the_connection_identity():
    handler = _echo_handler()
    connect = {"requestContext": {"routeKey": "$connect"},
               "headers": {"Sec-WebSocket-Protocol": "authgate.bearer, eyJhbGciOi.eyJzdWIi.c2ln"}}
    assert handler(connect, None) == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "authgate.bearer"}}
    assert handler({"requestContext": {"routeKey": "$connect"}, "headers": {}}, None) == {"statusCode": 200}
    message = {"requestContext": {"routeKey": "subscribe", "connectionId": "c-1",
                                  "authorizer": {"principalId": "user-123", "sub": "user-123",
                                                 "scopes": "orders-api/orders.read", "integrationLatency": 12}},
               "body": json.dumps({"action": "subscribe", "order": "o-1"})}
    body = json.loads(handler(message, None)["body"])
    assert body == {"route": "subscribe", "connection": "c-1", "principal": "user-123",
                    "identity": {"sub": "user-123", "scopes": "orders-api/orders.read"}}
