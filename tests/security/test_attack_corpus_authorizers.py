"""Every hostile token of the catalogue through the HTTP API and REST Lambda authorizers, loaded from the environment
as Lambda loads them: never Allow, never an unhandled exception, the catalogue's code in the one audit line, and
neither the token nor its signature in anything logged.

The route (GET /orders, scope orders:read) is one every catalogue token would pass without its attack
(test_good_tokens_are_allowed is the control). Tokens are minted on the real clock, as the authorizers read it.
Left out: the catalogue entries marked trimmed_by_http (whitespace around the token), because a header value has no
such whitespace; test_attack_corpus.py shows they reduce to the good token.
"""
from __future__ import annotations

import importlib
import json
import logging
import time

import pytest

from tests.security.hostile_tokens import ALGORITHMS, ATTACKS, LEEWAY, SCOPE, Forge, Keyring
from tests.support.route_tables import route, table_document

ARN_PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"
SWEPT = [name for name, attack in ATTACKS.items() if not attack.trimmed_by_http]
HANDLERS = ("http_api", "rest")


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return Keyring.generate()


def route_table(keys: Keyring) -> dict:
    """The rendered route table the handlers read: the catalogue's issuer (every algorithm, its keys and leeway) and
    one route."""
    return table_document(None, [route("GET /orders", scopes=[SCOPE])], algorithms=list(ALGORITHMS),
                          jwks=keys.jwks(), leeway_seconds=LEEWAY)


@pytest.fixture(scope="module")
def handlers(keys, tmp_path_factory):
    """The two handler modules imported afresh with AUTHGATE_* set, as at Lambda init."""
    path = tmp_path_factory.mktemp("attack-corpus") / "routes.json"
    path.write_text(json.dumps(route_table(keys)))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTHGATE_POLICY", str(path))
        env.setenv("AUTHGATE_API", "orders")
        for name in ("AUTHGATE_RESPONSE", "AUTHGATE_RESULT_TTL_SECONDS", "AUTHGATE_IDENTITY_SOURCES",
                     "AUTHGATE_TOKEN_HEADER", "AUTHGATE_MAX_POLICY_BYTES"):
            env.delenv(name, raising=False)
        yield {kind: importlib.reload(importlib.import_module(f"lambdas.authorizers.{kind}")).handler
               for kind in HANDLERS}


def http_api_event(authorization: str) -> dict:
    return {"version": "2.0", "type": "REQUEST", "routeArn": f"{ARN_PREFIX}/GET/orders",
            "identitySource": [authorization], "routeKey": "GET /orders", "rawPath": "/orders", "rawQueryString": "",
            "headers": {"authorization": authorization, "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"},
            "requestContext": {"accountId": "123456789012", "apiId": "a1b2c3d4e5", "requestId": "attack-corpus",
                               "routeKey": "GET /orders", "stage": "$default",
                               "http": {"method": "GET", "path": "/orders", "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"}}}


def rest_token_event(authorization: str) -> dict:
    return {"type": "TOKEN", "authorizationToken": authorization, "methodArn": f"{ARN_PREFIX}/GET/orders"}


def decide(handlers, kind: str, token: str) -> str:
    """"allow", or "unauthorized" when the handler answered exactly as API Gateway needs for a bad token (HTTP API:
    isAuthorized false; REST: Exception("Unauthorized")). Anything else raises."""
    authorization = f"Bearer {token}"
    if kind == "http_api":
        out = handlers[kind](http_api_event(authorization))
        if out.get("isAuthorized") is True:
            return "allow"
        assert out == {"isAuthorized": False}
        return "unauthorized"
    try:
        out = handlers[kind](rest_token_event(authorization))
    except Exception as exc:  # noqa: BLE001 - the one expected exception is checked exactly
        assert type(exc) is Exception and exc.args == ("Unauthorized",), f"unexpected {type(exc).__name__}"
        return "unauthorized"
    effects = {statement["Effect"] for statement in out["policyDocument"]["Statement"]}
    return "allow" if "Allow" in effects else "deny"


def audit_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"authgate"')]


@pytest.mark.parametrize("kind", HANDLERS)
@pytest.mark.parametrize("key_name", ["rsa", "p256", "p384", "p521", "ed"])
def test_good_tokens_are_allowed(handlers, keys, capsys, kind, key_name):
    forge = Forge(keys, int(time.time()))
    assert decide(handlers, kind, forge.good(getattr(keys, key_name))) == "allow"
    [line] = audit_lines(capsys.readouterr().out)
    assert line["decision"] == "allow" and line["code"] is None


@pytest.mark.parametrize("kind", HANDLERS)
@pytest.mark.parametrize("name", SWEPT)
def test_hostile_token_is_unauthorized_and_never_logged(handlers, keys, capsys, caplog, kind, name):
    caplog.set_level(logging.DEBUG)
    attack = ATTACKS[name]
    token = attack.build(Forge(keys, int(time.time())))
    assert decide(handlers, kind, token) == "unauthorized"
    captured = capsys.readouterr()
    [line] = audit_lines(captured.out)
    assert (line["decision"], line["code"], line["sub"]) == ("unauthorized", attack.code, None)
    logged = captured.out + captured.err + caplog.text
    if len(token) > 16:
        assert token not in logged
    signature = token.rsplit(".", 1)[-1]
    if len(signature) > 16:
        assert signature not in logged
