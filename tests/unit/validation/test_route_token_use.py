"""A route's token_use narrows an issuer that accepts either kind of token: Requirement, Verifier, explain, the route
table loader and the Lambda authorizers all enforce it, and a mismatch is wrong_token_use (401, not 403)."""
from __future__ import annotations

import importlib
import json

import pytest

from lambdas.validation import IssuerConfig, Requirement, TokenRejected, Verifier
from lambdas.validation.route_table import RouteTable, RouteTableError
from tests.support.route_tables import route, table_document
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"


def access_token(key: SigningKey, **claims) -> str:
    return mint(key, scope="orders:read", client_id="orders-web", **claims)


def id_token(key: SigningKey, **claims) -> str:
    # OIDC Core: an ID token carries nonce; its typ is JWT, never at+jwt.
    return mint(key, typ="JWT", nonce="n-0S6_WzA2Mj", scope="orders:read", **claims)


def either_kind_verifier(key: SigningKey) -> Verifier:
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), name="corp", token_use=None)])


def test_requirement_token_use_is_validated_and_part_of_identity():
    assert Requirement(token_use="access") != Requirement(token_use="id") != Requirement()
    assert hash(Requirement(token_use="access")) == hash(Requirement.from_route({"token_use": "access"}))
    assert not Requirement(token_use="id").is_empty and Requirement(token_use=None).is_empty
    assert "token_use='id'" in repr(Requirement(token_use="id"))
    for bad in ("any", "ID", "refresh", "", 1):
        with pytest.raises(ValueError, match="token_use must be"):
            Requirement(token_use=bad)


def test_route_of_the_other_kind_is_wrong_token_use_before_any_403(key):
    verifier = either_kind_verifier(key)
    id_principal = verifier.authenticate(id_token(key))
    access_principal = verifier.authenticate(access_token(key))
    assert (id_principal.token_use, access_principal.token_use) == ("id", "access")
    access_only = Requirement.from_route({"token_use": "access", "scopes": ["orders:write"]})
    failures = access_only.failures(id_principal)
    assert [f.code for f in failures] == ["wrong_token_use", "insufficient_scope"]
    assert failures[0].status == 401 and not failures[0].is_authorization_failure
    assert failures[0].expected == "access" and failures[0].found == "id" and "access token" in failures[0].hint
    with pytest.raises(TokenRejected) as raised:
        access_only.check(id_principal)
    assert raised.value.code == "wrong_token_use"
    assert not access_only.is_satisfied_by(id_principal)
    assert [f.code for f in access_only.failures(access_principal)] == ["insufficient_scope"]
    id_only = Requirement(token_use="id")
    assert id_only.is_satisfied_by(id_principal) and not id_only.is_satisfied_by(access_principal)
    assert [f.code for f in id_only.failures(access_principal)] == ["wrong_token_use"]


def test_verifier_enforces_route_token_use_on_every_call_including_cache_hits(key):
    verifier = either_kind_verifier(key)
    access_route = Requirement.from_route({"token_use": "access", "scopes": ["orders:read"]})
    token = id_token(key)
    for _ in range(2):  # the second call is a verified-token cache hit: the route rule must still apply
        with pytest.raises(TokenRejected) as raised:
            verifier.verify(token, requirement=access_route)
        assert raised.value.code == "wrong_token_use" and raised.value.status == 401
    assert verifier.verify(token, requirement=Requirement(token_use="id")).token_use == "id"
    assert verifier.verify(access_token(key), requirement=access_route).token_use == "access"


def test_explain_reports_the_route_token_use_check(key):
    verifier = either_kind_verifier(key)
    checks = {c.name: c for c in verifier.explain(id_token(key), Requirement(token_use="access"))}
    check = checks["route token use"]
    assert check.passed is False and check.code == "wrong_token_use" and "access token" in check.fix
    checks = {c.name: c for c in verifier.explain(access_token(key), Requirement(token_use="access"))}
    assert checks["route token use"].passed is True


def route_entry(route_key: str, **fields) -> dict:
    return route(route_key, **{"token_use": None, "enforcement_reason": "token_use", **fields})


def route_table(key: SigningKey, routes: list[dict]) -> dict:
    return table_document(key, routes, token_use=None)   # the issuer accepts either kind; routes narrow it


ROUTES = [route_entry("GET /orders", token_use="access", scopes=["orders:read"]),
          route_entry("GET /me", token_use="id"),
          route_entry("GET /either")]


def test_route_table_carries_token_use_and_refuses_a_bad_value(key):
    table = RouteTable.load(route_table(key, ROUTES))
    assert [r.requirement.token_use for r in table.api("orders").routes] == ["access", "id", None]
    with pytest.raises(RouteTableError, match=r"GET /orders.*token_use must be"):
        RouteTable.load(route_table(key, [route_entry("GET /orders", token_use="any")]))


@pytest.fixture
def load_authorizer(monkeypatch, tmp_path, key):
    def load(kind: str, **env):
        path = tmp_path / "routes.json"
        path.write_text(json.dumps(route_table(key, ROUTES)))
        monkeypatch.setenv("AUTHGATE_POLICY", str(path))
        monkeypatch.setenv("AUTHGATE_API", "orders")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(importlib.import_module(f"lambdas.authorizers.{kind}"))
    return load


def rest_event(token: str, path: str) -> dict:
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": f"{ARN}/GET{path}"}


def http_api_event(token: str, path: str) -> dict:
    return {"version": "2.0", "type": "REQUEST", "routeKey": f"GET {path}", "routeArn": f"{ARN}/GET{path}",
            "rawPath": path, "headers": {"authorization": f"Bearer {token}"},
            "requestContext": {"requestId": "r-1", "routeKey": f"GET {path}", "http": {"method": "GET", "path": path}}}


def test_rest_authorizer_answers_401_for_the_wrong_kind_and_never_caches_an_allow_for_it(load_authorizer, key,
                                                                                        capsys):
    from lambdas.authorizers.iam_policy import policy_allows
    rest = load_authorizer("rest")
    with pytest.raises(Exception, match="^Unauthorized$"):
        rest.handler(rest_event(id_token(key), "/orders"))
    [audit] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"authgate"')]
    assert audit["decision"] == "unauthorized" and audit["code"] == "wrong_token_use"
    # On a route that takes ID tokens the same token is allowed, and the cacheable policy it gets must not open
    # the access-only route (API Gateway reuses the policy for every route while it is cached).
    out = rest.handler(rest_event(id_token(key), "/me"))
    assert policy_allows(out["policyDocument"], f"{ARN}/GET/me")
    assert policy_allows(out["policyDocument"], f"{ARN}/GET/either")
    assert not policy_allows(out["policyDocument"], f"{ARN}/GET/orders")
    out = rest.handler(rest_event(access_token(key), "/orders"))
    assert policy_allows(out["policyDocument"], f"{ARN}/GET/orders")
    assert not policy_allows(out["policyDocument"], f"{ARN}/GET/me")


def test_http_api_authorizer_refuses_the_wrong_kind(load_authorizer, key):
    http_api = load_authorizer("http_api")
    assert http_api.handler(http_api_event(id_token(key), "/orders")) == {"isAuthorized": False}
    assert http_api.handler(http_api_event(access_token(key), "/me")) == {"isAuthorized": False}
    assert http_api.handler(http_api_event(access_token(key), "/orders"))["isAuthorized"] is True
    assert http_api.handler(http_api_event(id_token(key), "/me"))["isAuthorized"] is True
    assert http_api.handler(http_api_event(id_token(key), "/either"))["isAuthorized"] is True
    iam = load_authorizer("http_api", AUTHGATE_RESPONSE="iam")
    with pytest.raises(Exception, match="^Unauthorized$"):
        iam.handler(http_api_event(id_token(key), "/orders"))
