"""REST API authorizer: TOKEN and REQUEST events, 401/403/allow, policies safe to reuse across routes, audit line."""
from __future__ import annotations

import pytest

from lambdas.authorizers.iam_policy import policy_allows


def test_token_event_allows_route_and_context_holds_only_scalars(load_handler, events, token_for, capsys):
    rest = load_handler("rest")
    token = token_for("orders:read", tenant="acme")
    out = rest.handler(events.rest_token(f"Bearer {token}", "GET", "/orders/42"))
    assert out["principalId"] == "user-123"
    assert policy_allows(out["policyDocument"], events.method_arn("GET", "/orders/42"))
    assert out["context"]["scopes"] == "orders:read"
    assert out["context"]["client_id"] == "orders-web"
    assert out["context"]["token_use"] == "access"
    assert all(isinstance(v, (str, int, float, bool)) for v in out["context"].values())
    [line] = events.audit_lines(capsys.readouterr().out)
    assert line["decision"] == "allow" and line["route"] == "GET /orders/{id}" and line["sub"] == "user-123"
    assert line["iss"] and line["aud"] == ["orders-api"] and line["jti"] and isinstance(line["latency_us"], int)
    assert token not in str(line) and token.split(".")[2] not in str(line)


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER  ", ""])
def test_bearer_prefix_is_optional_and_case_insensitive(load_handler, events, token_for, prefix):
    rest = load_handler("rest")
    out = rest.handler(events.rest_token(prefix + token_for("orders:read"), "GET", "/orders"))
    assert policy_allows(out["policyDocument"], events.method_arn("GET", "/orders"))


@pytest.mark.parametrize("value", [None, "", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer a b"])
def test_missing_or_bad_token_raises_unauthorized(load_handler, events, value, capsys):
    rest = load_handler("rest")
    with pytest.raises(Exception) as raised:
        rest.handler(events.rest_token(value, "GET", "/orders"))
    assert str(raised.value) == "Unauthorized"
    [line] = events.audit_lines(capsys.readouterr().out)
    assert line["decision"] == "unauthorized" and line["code"] == "malformed" and line["sub"] is None


def test_expired_and_foreign_signed_tokens_are_unauthorized(load_handler, events, signing_key, capsys):
    from tests.support.tokens import SigningKey, mint
    rest = load_handler("rest")
    expired = mint(signing_key, scope="orders:read", lifetime=-3600)
    other = mint(SigningKey.generate("RS256", kid=signing_key.kid), scope="orders:read")
    for token in (expired, other):
        with pytest.raises(Exception, match="^Unauthorized$"):
            rest.handler(events.rest_token(f"Bearer {token}", "GET", "/orders"))
    codes = [line["code"] for line in events.audit_lines(capsys.readouterr().out)]
    assert codes[0] == "expired" and codes[1] == "bad_signature"


def test_valid_token_lacking_scope_gets_deny(load_handler, events, token_for, capsys):
    rest = load_handler("rest")
    out = rest.handler(events.rest_token(f"Bearer {token_for('orders:read')}", "POST", "/orders"))
    assert not policy_allows(out["policyDocument"], events.method_arn("POST", "/orders"))
    assert policy_allows(out["policyDocument"], events.method_arn("GET", "/orders"))
    [line] = events.audit_lines(capsys.readouterr().out)
    assert line["decision"] == "forbidden" and line["code"] == "insufficient_scope"


def test_request_event_reads_the_authorization_header(load_handler, events, token_for):
    rest = load_handler("rest")
    event = events.rest_request(f"Bearer {token_for('orders:write', roles=['admin'])}", "DELETE", "/orders/9",
                                resource="/orders/{id}")
    out = rest.handler(event)
    assert policy_allows(out["policyDocument"], events.method_arn("DELETE", "/orders/9"))
    with pytest.raises(Exception, match="^Unauthorized$"):
        rest.handler(events.rest_request(None, "GET", "/orders"))


# Every (method, concrete path) a client could send to the ORDERS_ROUTES table, with the route it lands on.
REQUESTS = [("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/1"), ("DELETE", "/orders/1"),
            ("GET", "/orders/1/refunds"), ("GET", "/users/me"), ("GET", "/users/7"), ("GET", "/users/me/x"),
            ("GET", "/tenants/acme/report"), ("GET", "/health"), ("GET", "/orders/refunds")]


@pytest.mark.parametrize("scope,roles,tenant", [
    ("orders:read", [], None), ("orders:read orders:write", ["admin"], None), ("", ["auditor"], "acme"),
    ("orders:write", [], "globex"), ("", [], None)])
def test_cached_policy_is_right_for_every_route(load_handler, events, token_for, scope, roles, tenant):
    """API Gateway reuses the policy for every route while cached: evaluate it against all of them."""
    rest = load_handler("rest")
    claims = {"tenant": tenant} if tenant else {}
    token = token_for(scope, roles=roles, **claims)
    first = rest.handler(events.rest_token(f"Bearer {token}", "GET", "/users/me"))
    runtime = rest._RUNTIME.get()
    for method, path in REQUESTS:
        route = runtime.api.match(method, path)
        if route is None:
            continue
        expected = runtime.decide(token, route).allowed
        assert policy_allows(first["policyDocument"], events.method_arn(method, path)) == expected, (method, path)


def test_allow_wildcard_never_widens_to_a_stricter_route(load_handler, events, token_for):
    """GET /users/{id} (admin) as users/* would cover /users/me; GET /orders/{id} as orders/* would cover
    /orders/1/refunds (auditor). A reader gets the first without the second."""
    rest = load_handler("rest")
    out = rest.handler(events.rest_token(token_for("orders:read"), "GET", "/orders/5"))
    doc = out["policyDocument"]
    assert policy_allows(doc, events.method_arn("GET", "/orders/5"))
    assert not policy_allows(doc, events.method_arn("GET", "/orders/5/refunds"))
    assert not policy_allows(doc, events.method_arn("GET", "/users/7"))
    assert policy_allows(doc, events.method_arn("GET", "/users/me"))
    denied = [s for s in doc["Statement"] if s["Effect"] == "Deny"]
    assert denied and any(r.endswith("/GET/orders/*/refunds") for r in denied[0]["Resource"])


def test_issuer_outage_fails_closed_without_a_cacheable_answer(load_handler, events, token_for, signing_key, capsys):
    """An issuer whose keys cannot be fetched: no Allow, no cacheable Deny; an error API Gateway turns into 500."""
    from lambdas.authorizers.runtime import AuthorizerUnavailable
    document = events.table(signing_key)
    document["issuers"]["corp"].update(jwks=None, jwks_uri="https://127.0.0.1:9/jwks.json")
    rest = load_handler("rest", document)
    with pytest.raises(AuthorizerUnavailable):
        rest.handler(events.rest_token(f"Bearer {token_for('orders:read')}", "GET", "/orders"))
    lines = events.audit_lines(capsys.readouterr().out)
    assert lines[-1]["decision"] == "unavailable" and lines[-1]["code"] == "jwks_unavailable"


def test_missing_configuration_fails_every_request(load_handler, events, token_for, monkeypatch, capsys):
    from lambdas.authorizers.runtime import AuthorizerMisconfigured
    rest = load_handler("rest", AUTHGATE_API="nope")
    assert "no API named 'nope'" in capsys.readouterr().err
    with pytest.raises(AuthorizerMisconfigured, match="no API named 'nope'"):
        rest.handler(events.rest_token(token_for("orders:read"), "GET", "/orders"))
    monkeypatch.delenv("AUTHGATE_POLICY")
    import importlib
    rest = importlib.reload(rest)
    with pytest.raises(AuthorizerMisconfigured, match="AUTHGATE_POLICY is not set"):
        rest.handler(events.rest_token(token_for("orders:read"), "GET", "/orders"))


def test_unknown_route_is_denied(load_handler, events, token_for, capsys):
    rest = load_handler("rest")
    out = rest.handler(events.rest_token(token_for("orders:read"), "PUT", "/nowhere"))
    assert not policy_allows(out["policyDocument"], events.method_arn("PUT", "/nowhere"))
    assert events.audit_lines(capsys.readouterr().out)[-1]["code"] == "route_not_found"
