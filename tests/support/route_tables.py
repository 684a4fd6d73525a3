"""Rendered route tables for tests: one route entry and one table document, shaped as `authgate render routes`
writes them (format authgate.routes/v1), so a test states only the fields it cares about."""
from __future__ import annotations

from lambdas.validation.route_table import FORMAT, ApiRoutes, RouteTable
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey


def route(key: str, **fields) -> dict:
    entry = {"route_key": key, "public": False, "issuers": ["corp"], "scopes": [], "scopes_all": [], "roles": [],
             "roles_all": [], "groups": [], "groups_all": [], "claims": {}, "enforcement": "lambda",
             "enforcement_reason": "test"}
    if not key.startswith("$"):
        entry["method"], entry["path"] = key.split(" ", 1)
    entry.update(fields)
    if entry.get("public"):
        entry["issuers"] = []
    return entry


ORDERS_ROUTES = [
    route("GET /orders", scopes=["orders:read"]),
    route("POST /orders", scopes=["orders:write"]),
    route("GET /orders/{id}", scopes=["orders:read"]),
    route("DELETE /orders/{id}", scopes=["orders:write"], roles=["admin"]),
    route("GET /orders/{id}/refunds", roles=["auditor"]),
    route("GET /users/me"),
    route("GET /users/{id}", roles=["admin"]),
    route("GET /tenants/{tenant}/report", claims={"tenant": ["acme"]}),
    route("GET /health", public=True),
]


def table_document(key: SigningKey | None, routes=None, *, extra_apis=None, issuers=None, **corp_fields) -> dict:
    """A table whose one issuer "corp" trusts `key` (no key: an empty key set, for tests that verify nothing);
    `corp_fields` override that issuer's members (token_use=None accepts either kind of token)."""
    corp = {"issuer": ISSUER, "audiences": [AUDIENCE], "profile": "generic",
            "algorithms": [key.alg if key else "RS256"], "jwks_uri": None,
            "jwks": key.jwks() if key else {"keys": []}, "token_use": "access", "leeway_seconds": 60,
            "max_token_age_seconds": None, "allow_insecure_http": False, **corp_fields}
    return {
        "format": FORMAT,
        "issuers": issuers or {"corp": corp},
        "apis": {"orders": {"routes": routes if routes is not None else ORDERS_ROUTES}, **(extra_apis or {})},
    }


def keyless_api(route_keys, public=()) -> ApiRoutes:
    """The loaded API "orders" of these route keys (those in `public` public): for routing and policy tests."""
    routes = [route(key, public=key in public) for key in route_keys]
    return RouteTable.load(table_document(None, routes)).api("orders")
