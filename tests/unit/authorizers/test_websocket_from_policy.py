"""From policy to decision: a WebSocket API in a policy file, rendered to the route table, driving the real $connect
authorizer with API Gateway's $connect event and real signed tokens (query string and Sec-WebSocket-Protocol)."""
from __future__ import annotations

import json
import time

import pytest

from stacks.policy import load_policy
from stacks.policy.render import render_route_table
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

PARTNER_ISSUER = "https://partners.example.test"


@pytest.fixture(scope="module")
def partner_key() -> SigningKey:
    return SigningKey.generate("RS256")


@pytest.fixture
def notifications_table(tmp_path, signing_key, partner_key) -> dict:
    """The route table `authgate render routes --api notifications` writes for this policy."""
    policy = {
        "issuers": {
            "corp": {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": signing_key.jwks()},
            "partners": {"issuer": PARTNER_ISSUER, "audiences": [AUDIENCE], "jwks": partner_key.jwks()},
        },
        "apis": {
            "notifications": {"protocol": "websocket", "routes": {
                "$connect": {"issuers": ["corp"], "scopes": ["notifications:read"], "claims": {"tenant": ["acme"]}},
                "$disconnect": {}, "$default": {}, "subscribe": {}}},
            "partner-orders": {"routes": {"GET /orders": {"issuers": ["partners"], "scopes": ["orders:read"]}}},
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(policy), encoding="utf-8")   # JSON is YAML
    table = render_route_table(load_policy(path), apis=["notifications"])
    assert [r["route_key"] for r in table["apis"]["notifications"]["routes"]] == ["$connect"]
    return table


@pytest.fixture
def connect_authorizer(load_handler, notifications_table):
    def load(token_source: str):
        return load_handler("websocket", notifications_table, AUTHGATE_API="notifications",
                            AUTHGATE_WS_TOKEN_SOURCE=token_source, AUTHGATE_WS_QUERY_PARAM=None,
                            AUTHGATE_WS_PROTOCOL_MARKER=None)
    return load


def _token(key: SigningKey, *, scope="notifications:read", tenant="acme", **claims) -> str:
    return mint(key, scope=scope, tenant=tenant, client_id="orders-web", **claims)


def _connect(events, source: str, token: str | None) -> dict:
    if token is None:
        return events.websocket()
    if source == "query":
        return events.websocket(query={"access_token": token})
    # What a browser sends for new WebSocket(url, ["authgate.bearer", token]).
    return events.websocket(protocol=f"authgate.bearer, {token}")


@pytest.mark.parametrize("source", ["query", "protocol"])
def test_allow_names_only_connect_and_passes_the_identity(connect_authorizer, events, signing_key, source, capsys):
    ws = connect_authorizer(source)
    token = _token(signing_key)
    out = ws.handler(_connect(events, source, token))
    assert out["principalId"] == "user-123"
    assert out["policyDocument"]["Statement"] == [{"Action": "execute-api:Invoke", "Effect": "Allow",
                                                   "Resource": [f"{events.ARN_PREFIX}/$connect"]}]
    assert out["context"]["sub"] == "user-123" and out["context"]["scopes"] == "notifications:read"
    assert out["context"]["issuer_name"] == "corp"
    [line] = events.audit_lines(capsys.readouterr().out)
    assert (line["decision"], line["route"], line["token_source"]) == ("allow", "$connect", source)
    assert token not in json.dumps(line) and token.split(".")[2] not in json.dumps(line)


@pytest.mark.parametrize("source", ["query", "protocol"])
@pytest.mark.parametrize("claims, code", [
    ({"scope": "orders:read"}, "insufficient_scope"),
    ({"tenant": "globex"}, "claim_mismatch"),
])
def test_valid_token_lacking_what_connect_needs_is_denied_403(connect_authorizer, events, signing_key, source,
                                                              claims, code, capsys):
    ws = connect_authorizer(source)
    out = ws.handler(_connect(events, source, _token(signing_key, **claims)))
    assert out["policyDocument"]["Statement"] == [{"Action": "execute-api:Invoke", "Effect": "Deny",
                                                   "Resource": [f"{events.ARN_PREFIX}/$connect"]}]
    [line] = events.audit_lines(capsys.readouterr().out)
    assert (line["decision"], line["code"]) == ("forbidden", code)


@pytest.mark.parametrize("source", ["query", "protocol"])
@pytest.mark.parametrize("case, code", [
    ("missing", None),
    ("expired", "expired"),
    ("other audience", "invalid_audience"),
    ("forged", "bad_signature"),
    ("issuer of another API", "unknown_issuer"),
    ("id token", "wrong_token_use"),
])
def test_missing_or_bad_token_is_unauthorized_401(connect_authorizer, events, signing_key, partner_key, source,
                                                  case, code, capsys):
    ws = connect_authorizer(source)
    now = int(time.time())
    token = {
        "missing": None,
        "expired": _token(signing_key, iat=now - 900, nbf=now - 900, exp=now - 600),
        "other audience": _token(signing_key, aud="billing-api"),
        # Signed by the partners' key but claiming corp's issuer.
        "forged": _token(partner_key, header={"kid": signing_key.kid}),
        # partners is trusted by partner-orders only, so the notifications table does not carry it at all.
        "issuer of another API": _token(partner_key, iss=PARTNER_ISSUER),
        "id token": _token(signing_key, typ="JWT", nonce="n-1"),
    }[case]
    with pytest.raises(Exception, match="^Unauthorized$"):
        ws.handler(_connect(events, source, token))
    [line] = events.audit_lines(capsys.readouterr().out)
    assert line["decision"] == "unauthorized" and line["route"] == "$connect"
    if code is not None:
        assert line["code"] == code


def test_token_in_the_other_place_is_not_read(connect_authorizer, events, signing_key):
    """The function reads the token only from where its construct's identity source puts it."""
    token = _token(signing_key)
    with pytest.raises(Exception, match="^Unauthorized$"):
        connect_authorizer("query").handler(events.websocket(protocol=f"authgate.bearer, {token}"))
    with pytest.raises(Exception, match="^Unauthorized$"):
        connect_authorizer("protocol").handler(events.websocket(query={"access_token": token}))
