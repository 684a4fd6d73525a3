"""Fixtures for the authorizer tests: a signing key, a route table that trusts it, and API Gateway event shapes.

The event builders follow the shapes in the API Gateway developer guide (REST TOKEN and REQUEST inputs, HTTP API
payload 2.0, WebSocket $connect REQUEST input); only values differ.
"""
from __future__ import annotations

import importlib
import json

import pytest

from tests.support.route_tables import ORDERS_ROUTES, route, table_document  # noqa: F401 (used by the tests here)
from tests.support.tokens import mint

REGION, ACCOUNT, API_ID, STAGE = "eu-west-1", "123456789012", "a1b2c3d4e5", "prod"
ARN_PREFIX = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}"


@pytest.fixture
def token_for(signing_key):
    def make(scope: str = "", roles=None, **claims) -> str:
        extra = {"scope": scope, "client_id": "orders-web"}
        if roles is not None:
            extra["roles"] = roles
        extra.update(claims)
        return mint(signing_key, **extra)
    return make


@pytest.fixture
def table_file(tmp_path, signing_key):
    def write(document=None) -> str:
        path = tmp_path / "routes.json"
        path.write_text(json.dumps(document or table_document(signing_key)))
        return str(path)
    return write


@pytest.fixture
def load_handler(monkeypatch, table_file):
    """Import (or re-import) a handler module with AUTHGATE_* set, exactly as Lambda would at init."""
    def load(kind: str, document=None, **env) -> object:
        monkeypatch.setenv("AUTHGATE_POLICY", table_file(document))
        monkeypatch.setenv("AUTHGATE_API", "orders")
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        module = importlib.import_module(f"lambdas.authorizers.{kind}")
        return importlib.reload(module)
    return load


def method_arn(method: str, path: str) -> str:
    return f"{ARN_PREFIX}/{method}{path}"


def rest_token_event(token: str | None, method: str, path: str) -> dict:
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn(method, path)}


def rest_request_event(token: str | None, method: str, path: str, resource: str | None = None) -> dict:
    headers = {"Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com", "User-Agent": "curl/8.5.0",
               "X-Forwarded-Proto": "https"}
    if token is not None:
        headers["Authorization"] = token
    return {
        "type": "REQUEST", "methodArn": method_arn(method, path), "resource": resource or path, "path": path,
        "httpMethod": method, "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {}, "multiValueQueryStringParameters": {}, "pathParameters": {},
        "stageVariables": {},
        "requestContext": {"path": f"/{STAGE}{path}", "accountId": ACCOUNT, "resourceId": "abc123", "stage": STAGE,
                           "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                           "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
                           "resourcePath": resource or path, "httpMethod": method, "apiId": API_ID,
                           "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com"},
    }


def http_api_event(token: str | None, route_key: str, path: str) -> dict:
    method = route_key.split(" ", 1)[0] if " " in route_key else "GET"
    headers = {"host": f"{API_ID}.execute-api.{REGION}.amazonaws.com", "user-agent": "curl/8.5.0"}
    if token is not None:
        headers["authorization"] = token
    return {
        "version": "2.0", "type": "REQUEST", "routeArn": method_arn(method, path),
        "identitySource": [token] if token else [], "routeKey": route_key, "rawPath": path, "rawQueryString": "",
        "cookies": [], "headers": headers, "queryStringParameters": {},
        "requestContext": {"accountId": ACCOUNT, "apiId": API_ID, "domainName": f"{API_ID}.execute-api.{REGION}"
                           ".amazonaws.com", "domainPrefix": API_ID,
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
                           "requestId": "id-1", "routeKey": route_key, "stage": "$default",
                           "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390},
        "pathParameters": {}, "stageVariables": {},
    }


def websocket_connect_event(*, query: dict | None = None, protocol: str | None = None,
                            authorization: str | None = None) -> dict:
    headers = {"Connection": "upgrade", "content-length": "0", "Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
               "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
               "Upgrade": "websocket", "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https"}
    if protocol is not None:
        headers["Sec-WebSocket-Protocol"] = protocol
    if authorization is not None:
        headers["Authorization"] = authorization
    return {
        "type": "REQUEST", "methodArn": f"{ARN_PREFIX}/$connect", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": query or {},
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()}, "stageVariables": {},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "extendedRequestId": "ABCD1234=",
                           "requestTime": "09/Feb/2019:18:30:05 +0000", "messageDirection": "IN", "stage": STAGE,
                           "connectedAt": 1549737005289, "requestTimeEpoch": 1549737005290,
                           "identity": {"sourceIp": "203.0.113.10", "userAgent": "Mozilla/5.0"},
                           "requestId": "ABCD1234=", "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
                           "connectionId": "AAAAAAAAAAAAAAA=", "apiId": API_ID},
    }


def audit_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{\"authgate\"")]


@pytest.fixture
def events():
    """The event builders, for test modules (conftest functions are not importable under importlib mode)."""
    from types import SimpleNamespace
    return SimpleNamespace(rest_token=rest_token_event, rest_request=rest_request_event, http_api=http_api_event,
                           websocket=websocket_connect_event, method_arn=method_arn, audit_lines=audit_lines,
                           table=table_document, route=route, ARN_PREFIX=ARN_PREFIX)
