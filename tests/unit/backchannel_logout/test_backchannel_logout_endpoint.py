"""The back-channel logout endpoint through its two adapters (HTTP API Lambda event, ASGI), with real logout tokens:
a logout is recorded on the denylist the authorizers read, and every failure gets the status section 2.8 asks for."""
from __future__ import annotations

import asyncio
import base64
import importlib
import json
import time
import uuid
from urllib.parse import urlencode

import pytest

from lambdas.backchannel_logout.asgi import BackchannelLogoutApp
from lambdas.backchannel_logout.core import BackchannelLogout
from lambdas.validation.logout_token import BACKCHANNEL_LOGOUT_EVENT
from lambdas.validation.route_decision import Outcome, decide_request
from lambdas.validation.route_table import RouteTable
from tests.support.keys import SIGNING_KEY as KEY  # the run's trusted key
from tests.support.route_tables import route, table_document
from tests.support.tokens import ISSUER, mint

FORM = "application/x-www-form-urlencoded"


def document() -> dict:
    doc = table_document(KEY, [route("GET /orders", freshness="denylist")])
    doc["issuers"]["corp"]["revocation"] = {"cache_seconds": 0, "logout_audiences": ["orders-web"]}
    return doc


@pytest.fixture
def endpoint(tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(document()))
    return BackchannelLogout.from_env({"AUTHGATE_POLICY": str(path)})


def logout_token(**overrides) -> str:
    claims = {"iss": ISSUER, "aud": "orders-web", "iat": int(time.time()), "jti": uuid.uuid4().hex,
              "sid": "session-7", "sub": "alice", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    claims.update(overrides)
    return mint(KEY, claims, typ="logout+jwt")


def form(token: str) -> bytes:
    return urlencode({"logout_token": token}).encode()


def test_a_logout_refuses_the_sessions_tokens_on_denylist_routes(endpoint):
    table = RouteTable.load(document())
    verifier = table.verifier()
    access = mint(KEY, sid="session-7", subject="alice", now=time.time() - 10)
    decide = lambda: decide_request(table.api("orders"), verifier, "GET", "/orders", f"Bearer {access}",  # noqa: E731
                                    checks=endpoint.checks)
    assert decide().outcome is Outcome.ALLOW
    answer = endpoint.handle("POST", FORM, form(logout_token()))
    assert (answer.status, json.loads(answer.body)) == (200, {"logged_out": True})
    assert answer.headers["cache-control"] == "no-store"
    assert decide().code == "revoked"


@pytest.mark.parametrize("method, content_type, body, status", [
    ("GET", None, b"", 405),
    ("POST", "application/json", b'{"logout_token": "x"}', 400),
    ("POST", FORM, b"logout_token=not-a-jwt", 400),
    ("POST", FORM, b"x" * 20_000, 400),
])
def test_bad_requests(endpoint, method, content_type, body, status):
    assert endpoint.handle(method, content_type, body).status == status


def test_replay_and_a_token_for_another_client_are_400(endpoint):
    token = logout_token()
    assert endpoint.handle("POST", FORM, form(token)).status == 200
    assert endpoint.handle("POST", FORM, form(token)).status == 400
    assert endpoint.handle("POST", FORM, form(logout_token(aud="billing-web"))).status == 400


def test_denylist_down_is_503_so_the_issuer_retries(endpoint, capsys):
    class Down:
        def put(self, *a, **k):
            raise OSError("down")

        def get_many(self, keys):
            raise OSError("down")

    endpoint.checks.denylist.store = Down()
    answer = endpoint.handle("POST", FORM, form(logout_token()))
    assert answer.status == 503 and json.loads(answer.body)["error"] == "temporarily_unavailable"
    # The deployment's LogoutUnavailable alarm counts these lines (stacks/aws/backchannel_logout); a 400 is "refused".
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["authgate"] == "backchannel_logout" and line["outcome"] == "unavailable"
    endpoint.handle("POST", FORM, b"logout_token=not-a-jwt")
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["outcome"] == "refused"


def test_lambda_handler_reads_the_http_api_event(monkeypatch, tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(document()))
    monkeypatch.setenv("AUTHGATE_POLICY", str(path))
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AUTHGATE_DENYLIST_TABLE", raising=False)
    module = importlib.reload(importlib.import_module("lambdas.backchannel_logout.http_api"))
    event = {"version": "2.0", "routeKey": "POST /backchannel-logout", "rawPath": "/backchannel-logout",
             "headers": {"content-type": FORM}, "isBase64Encoded": True,
             "body": base64.b64encode(form(logout_token())).decode(),
             "requestContext": {"http": {"method": "POST", "path": "/backchannel-logout"}}}
    result = module.handler(event)
    assert result["statusCode"] == 200 and result["headers"]["cache-control"] == "no-store"


def test_in_lambda_without_the_shared_table_it_refuses_to_start(tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(document()))
    with pytest.raises(ValueError, match="AUTHGATE_DENYLIST_TABLE is not set"):
        BackchannelLogout.from_env({"AUTHGATE_POLICY": str(path), "AWS_LAMBDA_FUNCTION_NAME": "logout"})


def test_a_table_without_logout_audiences_is_refused(tmp_path):
    doc = document()
    doc["issuers"]["corp"]["revocation"] = {"logout_audiences": []}
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="logout_audiences"):
        BackchannelLogout.from_env({"AUTHGATE_POLICY": str(path)})


def test_asgi_app(endpoint):
    app = BackchannelLogoutApp(endpoint)
    sent: list[dict] = []
    body = form(logout_token())
    chunks = [{"type": "http.request", "body": body[:10], "more_body": True},
              {"type": "http.request", "body": body[10:], "more_body": False}]

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/backchannel-logout",
             "headers": [(b"content-type", FORM.encode())]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"]) == {"logged_out": True}
