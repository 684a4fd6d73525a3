"""Fixtures for the forward-auth service: a real signing key, a route table that trusts it, and the service."""
from __future__ import annotations

import pytest

from lambdas.authorizers.runtime import AuthorizerRuntime
from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
from lambdas.validation.route_table import RouteTable
from tests.support.route_tables import route, table_document
from tests.support.tokens import mint


# The forward-auth routes: a scopes_all route, a claim on a templated route and a public greedy path.
ROUTES = [
    route("GET /orders", scopes=["orders:read"]),
    route("POST /orders", scopes_all=["orders:read", "orders:write"]),
    route("GET /orders/{id}", scopes=["orders:read"], claims={"tenant": ["acme"]}),
    route("DELETE /orders/{id}", scopes=["orders:write"], roles=["admin"]),
    route("GET /public/{proxy+}", public=True),
    route("GET /health", public=True),
]


@pytest.fixture
def token_for(signing_key):
    def make(scope: str = "orders:read", **claims) -> str:
        return mint(signing_key, scope=scope, client_id="orders-web", **claims)
    return make


@pytest.fixture
def table_for(signing_key):
    """table_document for the session's key (conftest functions are not importable under importlib mode)."""
    return lambda routes=None, **overrides: table_document(signing_key, ROUTES if routes is None else routes,
                                                           **overrides)


@pytest.fixture
def make_service(signing_key):
    def build(document=None, settings: ForwardAuthSettings | None = None, **options) -> ForwardAuthService:
        table = RouteTable.load(document or table_document(signing_key, ROUTES))
        return ForwardAuthService(AuthorizerRuntime(table, "orders"), settings, **options)
    return build


@pytest.fixture
def service(make_service) -> ForwardAuthService:
    return make_service()
