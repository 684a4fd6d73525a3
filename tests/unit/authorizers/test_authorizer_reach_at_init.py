"""The REST (and HTTP API `iam`) authorizer analyses route reach at init: no request runs the reach search, and a
failing analysis leaves the authorizer misconfigured (every request 500) instead of building policies without it."""
from __future__ import annotations

import pytest

from lambdas.authorizers.iam_policy import RouteReach, policy_allows
from lambdas.authorizers.runtime import AuthorizerMisconfigured

# Principals with different satisfied sets, so each request needs a policy encoding not built before.
PRINCIPALS = [("orders:read", []), ("orders:read orders:write", ["admin"]), ("", ["auditor"]), ("", [])]


def _forbid_reach_search(monkeypatch):
    def search(*args, **kwargs):
        raise AssertionError("the route reach search ran while deciding a request")
    monkeypatch.setattr(RouteReach, "_pattern_reaches", search)


def test_rest_requests_never_run_the_reach_search(load_handler, events, token_for, monkeypatch):
    rest = load_handler("rest")
    _forbid_reach_search(monkeypatch)
    for scope, roles in PRINCIPALS:
        for method, path in (("GET", "/orders/5"), ("DELETE", "/orders/5"), ("GET", "/users/me")):
            out = rest.handler(events.rest_token(f"Bearer {token_for(scope, roles=roles)}", method, path))
            runtime = rest._RUNTIME.get()
            expected = runtime.decide(token_for(scope, roles=roles), runtime.api.match(method, path)).allowed
            assert policy_allows(out["policyDocument"], events.method_arn(method, path)) == expected


def test_http_api_iam_requests_never_run_the_reach_search(load_handler, events, token_for, monkeypatch):
    http_api = load_handler("http_api", AUTHGATE_RESPONSE="iam")
    _forbid_reach_search(monkeypatch)
    for scope, roles in PRINCIPALS:
        token = f"Bearer {token_for(scope, roles=roles)}"
        out = http_api.handler(events.http_api(token, "GET /orders/{id}", "/orders/5"))
        assert policy_allows(out["policyDocument"], events.method_arn("GET", "/orders/5")) == ("orders:read" in scope)


def test_http_api_simple_responses_skip_the_analysis(load_handler):
    # Simple responses carry no policy: the analysis would only add to every cold start.
    http_api = load_handler("http_api", AUTHGATE_RESPONSE="simple")
    assert http_api._RUNTIME.get()._policy_builder is None


def test_a_failing_reach_analysis_fails_every_request(load_handler, events, token_for, monkeypatch, capsys):
    def broken(self):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(RouteReach, "analyse_all", broken)
    rest = load_handler("rest")
    assert "route reach analysis of API 'orders' failed (RecursionError" in capsys.readouterr().err
    with pytest.raises(AuthorizerMisconfigured, match="no IAM policy can be built"):
        rest.handler(events.rest_token(f"Bearer {token_for('orders:read')}", "GET", "/orders"))


def test_glob_unsafe_tables_are_not_analysed(load_handler, events, token_for, signing_key, monkeypatch):
    # A literal '*' in a route path makes IAM patterns meaningless; such tables only get current-route policies.
    document = events.table(signing_key, [events.route("GET /files/*", scopes=["orders:read"]),
                                          events.route("GET /files/{name}", roles=["admin"])])
    _forbid_reach_search(monkeypatch)
    rest = load_handler("rest", document)
    out = rest.handler(events.rest_token(f"Bearer {token_for('orders:read')}", "GET", "/files/report"))
    assert not policy_allows(out["policyDocument"], events.method_arn("GET", "/files/report"))
