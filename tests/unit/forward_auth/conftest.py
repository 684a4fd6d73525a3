"""Fixtures for the forward-auth service: a real signing key, a route table that trusts it, and the service."""
from __future__ import annotations

import pytest

from lambdas.authorizers.runtime import AuthorizerRuntime
from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
from lambdas.validation.route_table import RouteTable
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint


def route(key: str, **fields) -> dict:
    method, path = key.split(" ", 1)
    entry = {"route_key": key, "method": method, "path": path, "public": False, "issuers": ["corp"], "scopes": [],
             "scopes_all": [], "roles": [], "roles_all": [], "groups": [], "groups_all": [], "claims": {},
             "enforcement": "lambda", "enforcement_reason": "test"}
    entry.update(fields)
    if entry["public"]:
        entry["issuers"] = []
    return entry


ROUTES = [
    route("GET /orders", scopes=["orders:read"]),
    route("POST /orders", scopes_all=["orders:read", "orders:write"]),
    route("GET /orders/{id}", scopes=["orders:read"], claims={"tenant": ["acme"]}),
    route("DELETE /orders/{id}", scopes=["orders:write"], roles=["admin"]),
    route("GET /public/{proxy+}", public=True),
    route("GET /health", public=True),
]


def issuer_entry(key: SigningKey, **overrides) -> dict:
    entry = {"issuer": ISSUER, "audiences": [AUDIENCE], "profile": "generic", "algorithms": [key.alg],
             "jwks_uri": None, "jwks": key.jwks(), "token_use": "access", "leeway_seconds": 60,
             "max_token_age_seconds": None, "allow_insecure_http": False}
    entry.update(overrides)
    return entry


def table_document(key: SigningKey, routes=None, **issuer_overrides) -> dict:
    return {"format": "authgate.routes/v1", "issuers": {"corp": issuer_entry(key, **issuer_overrides)},
            "apis": {"orders": {"routes": routes if routes is not None else ROUTES}}}


@pytest.fixture
def token_for(signing_key):
    def make(scope: str = "orders:read", **claims) -> str:
        return mint(signing_key, scope=scope, client_id="orders-web", **claims)
    return make


@pytest.fixture
def table_for(signing_key):
    """table_document for the session's key (conftest functions are not importable under importlib mode)."""
    return lambda routes=None, **overrides: table_document(signing_key, routes, **overrides)


@pytest.fixture
def make_service(signing_key):
    def build(document=None, settings: ForwardAuthSettings | None = None, **options) -> ForwardAuthService:
        table = RouteTable.load(document or table_document(signing_key))
        return ForwardAuthService(AuthorizerRuntime(table, "orders"), settings, **options)
    return build


@pytest.fixture
def service(make_service) -> ForwardAuthService:
    return make_service()
