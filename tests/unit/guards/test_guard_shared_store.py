"""A backend guard whose routes need the shared denylist / DPoP replay table refuses to start in Lambda without it,
as the authorizers do: each execution environment's own memory would never see a logout or another one's proofs."""
from __future__ import annotations

import pytest

from lambdas.guards.require import BearerGuard
from lambdas.validation.route_table import RouteTable
from tests.support.keys import SIGNING_KEY
from tests.support.route_tables import route, table_document


def table(**route_fields) -> RouteTable:
    document = table_document(SIGNING_KEY, [route("GET /orders", **route_fields)])
    if route_fields.get("proof") == "dpop":
        document["issuers"]["corp"]["binding"] = {"dpop": True}
    return RouteTable.load(document)


@pytest.fixture
def no_table(monkeypatch):
    monkeypatch.delenv("AUTHGATE_DENYLIST_TABLE", raising=False)


@pytest.mark.parametrize("fields", [{"freshness": "denylist"}, {"proof": "dpop"}])
def test_in_lambda_a_guard_needing_the_shared_table_refuses_to_start_without_it(monkeypatch, no_table, fields):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-backend")
    with pytest.raises(ValueError, match="AUTHGATE_DENYLIST_TABLE is not set"):
        BearerGuard.from_route_table(table(**fields), "orders")


def test_outside_lambda_or_without_such_routes_it_starts(monkeypatch, no_table):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert BearerGuard.from_route_table(table(freshness="denylist"), "orders").checks is not None
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-backend")
    assert BearerGuard.from_route_table(table(), "orders").checks is not None
