"""satisfied_routes (the memoised, per-permission form of routes_satisfied_by) lists exactly what the plain rule lists,
for every principal, including routes whose freshness or proof is checked on every request (never listed, whatever
requirement they share with listed routes)."""
from __future__ import annotations

import pytest

from lambdas.validation.route_decision import permission_groups, routes_satisfied_by, satisfied_routes
from lambdas.validation.route_table import RouteTable
from tests.support.route_tables import route, table_document
from tests.support.keys import SIGNING_KEY as KEY  # the run's trusted key
from tests.support.tokens import SigningKey, mint

DOCUMENT = table_document(KEY, [
    route("GET /orders"), route("GET /orders/{id}", freshness="denylist"), route("POST /orders", proof="dpop"),
    route("GET /reports", scopes=["reports:read"]), route("GET /admin", roles=["admin"]),
    route("GET /health", public=True)])
DOCUMENT["issuers"]["corp"].update(binding={"dpop": True}, revocation={"cache_seconds": 0})


@pytest.fixture(scope="module")
def table():
    return RouteTable.load(DOCUMENT)


@pytest.mark.parametrize("claims", [{}, {"scope": "reports:read"}, {"roles": ["admin"], "scope": "reports:read"},
                                    {"cnf": {"jkt": "x" * 43}}])
def test_satisfied_routes_agree_with_the_plain_rule(table, claims):
    api = table.api("orders")
    principal = table.verifier().authenticate(mint(KEY, **claims))
    expected = {r.route_key for r in routes_satisfied_by(api.routes, principal)}
    assert {r.route_key for r in satisfied_routes(api, principal)} == expected
    assert "GET /orders/{id}" not in expected and "POST /orders" not in expected
    # the same combination of permissions gives back the very same set (the IAM policy memo is keyed by it)
    assert satisfied_routes(api, principal) is satisfied_routes(api, principal)


def test_routes_checked_per_request_are_a_permission_of_their_own(table):
    groups = permission_groups(table.api("orders").routes)
    assert ("GET /orders",) in {tuple(r.route_key for r in group) for group in groups}
    assert all(len({r.checked_per_request for r in group}) == 1 for group in groups)
