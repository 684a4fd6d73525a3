"""HTTP API (payload 2.0, simple and IAM responses) and WebSocket $connect authorizers with real event shapes."""
from __future__ import annotations

import pytest

from lambdas.authorizers.iam_policy import policy_allows


def test_http_api_simple_response(load_handler, events, token_for, capsys):
    http = load_handler("http_api", AUTHGATE_RESPONSE=None, AUTHGATE_RESULT_TTL_SECONDS=None)
    token = token_for("orders:read")
    ok = http.handler(events.http_api(f"Bearer {token}", "GET /orders/{id}", "/orders/3"))
    assert ok["isAuthorized"] is True and ok["context"]["sub"] == "user-123"
    assert all(isinstance(v, (str, int, float, bool)) for v in ok["context"].values())
    assert http.handler(events.http_api(f"Bearer {token}", "POST /orders", "/orders")) == {"isAuthorized": False}
    assert http.handler(events.http_api(None, "GET /orders", "/orders")) == {"isAuthorized": False}
    assert http.handler(events.http_api("Bearer x.y.z", "GET /orders", "/orders")) == {"isAuthorized": False}
    lines = events.audit_lines(capsys.readouterr().out)
    assert [line["decision"] for line in lines] == ["allow", "forbidden", "unauthorized", "unauthorized"]
    assert [line["code"] for line in lines] == [None, "insufficient_scope", "malformed", "malformed"]
    assert all(token not in str(line) for line in lines)


def test_http_api_iam_response_covers_every_route(load_handler, events, token_for):
    http = load_handler("http_api", AUTHGATE_RESPONSE="iam", AUTHGATE_RESULT_TTL_SECONDS=None)
    token = token_for("orders:read")
    out = http.handler(events.http_api(f"Bearer {token}", "GET /orders", "/orders"))
    doc = out["policyDocument"]
    assert policy_allows(doc, events.method_arn("GET", "/orders"))
    assert policy_allows(doc, events.method_arn("GET", "/orders/1"))
    assert not policy_allows(doc, events.method_arn("POST", "/orders"))
    assert not policy_allows(doc, events.method_arn("GET", "/orders/1/refunds"))
    with pytest.raises(Exception, match="^Unauthorized$"):
        http.handler(events.http_api(None, "GET /orders", "/orders"))


def test_http_api_caching_without_route_key_refuses_to_start(load_handler, events, token_for, capsys):
    """Simple responses cached per token alone would let GET /orders' answer serve DELETE /orders/{id}."""
    from lambdas.authorizers.runtime import AuthorizerMisconfigured
    http = load_handler("http_api", AUTHGATE_RESPONSE=None, AUTHGATE_RESULT_TTL_SECONDS="300",
                        AUTHGATE_IDENTITY_SOURCES="$request.header.Authorization")
    assert "$context.routeKey" in capsys.readouterr().err
    with pytest.raises(AuthorizerMisconfigured, match=r"\$context\.routeKey"):
        http.handler(events.http_api(f"Bearer {token_for('orders:read')}", "GET /orders", "/orders"))
    http = load_handler("http_api", AUTHGATE_RESPONSE=None, AUTHGATE_RESULT_TTL_SECONDS="300",
                        AUTHGATE_IDENTITY_SOURCES="$request.header.Authorization,$context.routeKey")
    assert http.handler(events.http_api(f"Bearer {token_for('orders:read')}", "GET /orders", "/orders"))[
        "isAuthorized"] is True


def test_identity_source_helper(signing_key, events):
    from lambdas.authorizers.identity_sources import http_api_identity_sources
    from lambdas.validation.route_table import RouteTable
    api = RouteTable.load(events.table(signing_key)).api("orders")
    assert http_api_identity_sources(api, result_ttl_seconds=0) == ["$request.header.Authorization"]
    assert http_api_identity_sources(api, result_ttl_seconds=300) == ["$request.header.Authorization",
                                                                      "$context.routeKey"]
    assert http_api_identity_sources(api, result_ttl_seconds=300, response="iam") == [
        "$request.header.Authorization"]
    same = RouteTable.load(events.table(signing_key, [events.route("GET /a", scopes=["x"]),
                                                      events.route("GET /b", scopes=["x"])])).api("orders")
    assert http_api_identity_sources(same, result_ttl_seconds=300) == ["$request.header.Authorization"]
    with pytest.raises(ValueError, match="simple"):
        http_api_identity_sources(api, result_ttl_seconds=300, response="policy")


def _ws_document(events, signing_key):
    return events.table(signing_key, [events.route("$connect", scopes=["chat:connect"])])


@pytest.mark.parametrize("source", ["query", "protocol", "header"])
def test_websocket_connect_token_sources(load_handler, events, token_for, signing_key, source, capsys):
    ws = load_handler("websocket", _ws_document(events, signing_key), AUTHGATE_WS_TOKEN_SOURCE=source)
    token = token_for("chat:connect")
    event = {"query": events.websocket(query={"access_token": token}),
             "protocol": events.websocket(protocol=f"authgate.bearer, {token}"),
             "header": events.websocket(authorization=f"Bearer {token}")}[source]
    out = ws.handler(event)
    assert out["policyDocument"]["Statement"] == [{"Action": "execute-api:Invoke", "Effect": "Allow",
                                                   "Resource": [f"{events.ARN_PREFIX}/$connect"]}]
    assert out["context"]["scopes"] == "chat:connect"
    [line] = events.audit_lines(capsys.readouterr().out)
    assert line["decision"] == "allow" and line["route"] == "$connect" and token not in str(line)


def test_websocket_rejections(load_handler, events, token_for, signing_key):
    ws = load_handler("websocket", _ws_document(events, signing_key), AUTHGATE_WS_TOKEN_SOURCE="protocol")
    with pytest.raises(Exception, match="^Unauthorized$"):
        ws.handler(events.websocket())
    with pytest.raises(Exception, match="^Unauthorized$"):  # the token without the marker is not read
        ws.handler(events.websocket(protocol=token_for("chat:connect")))
    out = ws.handler(events.websocket(protocol=f"authgate.bearer, {token_for('other')}"))
    assert out["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_websocket_table_without_connect_route_is_refused(load_handler, events, capsys):
    from lambdas.authorizers.runtime import AuthorizerMisconfigured
    ws = load_handler("websocket")
    with pytest.raises(AuthorizerMisconfigured, match=r"no '\$connect' route"):
        ws.handler(events.websocket(query={"access_token": "x"}))
