"""Routes that ask for server-provided DPoP nonces (`dpop_nonce: required` beside `proof: dpop`): loading, the
errors that say how to fix a policy (file, line and field), the route table the runtime reads (the member is written
only when used), the schema, and `authgate explain --route`."""
from __future__ import annotations

import json

import pytest

from lambdas.validation.route_table import RouteTable, RouteTableError
from stacks.policy.render import render_route_table
from tests.support.route_tables import route, table_document
from tests.unit.policy.policy_testing import load_text, policy_error

ISSUERS = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    binding: {dpop: true, mtls: true}
"""


def _policy(routes: str) -> str:
    return ISSUERS + "apis:\n  orders:\n    routes:\n" + routes


def test_the_setting_reaches_the_route_table_only_where_used(tmp_path):
    policy = load_text(tmp_path, _policy("""
      "POST /orders": {issuers: [corp], proof: dpop, dpop_nonce: required}
      "GET /orders": {issuers: [corp], proof: dpop}
"""))
    table = render_route_table(policy)
    routes = {r["route_key"]: r for r in table["apis"]["orders"]["routes"]}
    assert routes["POST /orders"]["dpop_nonce"] == "required"
    assert "dpop_nonce" not in routes["GET /orders"]
    api = RouteTable.load(json.loads(json.dumps(table))).api("orders")
    assert api.route("POST /orders").dpop_nonce == "required" and api.route("GET /orders").dpop_nonce == "none"
    assert api.needs_dpop_nonces and api.route("POST /orders").checked_per_request


@pytest.mark.parametrize("route, field, expected", [
    ("{issuers: [corp], dpop_nonce: required}", "dpop_nonce",
     "dpop_nonce: required asks for server nonces in DPoP proofs, and this route has proof: none; set proof: dpop"),
    ("{issuers: [corp], proof: mtls, dpop_nonce: required}", "dpop_nonce", "this route has proof: mtls"),
    ("{public: true, dpop_nonce: required}", None, "a public route takes no token, so dpop_nonce cannot apply"),
    ("{issuers: [corp], proof: dpop, dpop_nonce: always}", "dpop_nonce", "'none' or 'required'"),
])
def test_problems_name_the_file_line_and_field(tmp_path, route, field, expected):
    error = policy_error(tmp_path, _policy(f'      "POST /orders": {route}\n'))
    text = str(error)
    assert expected in text
    where = 'apis.orders.routes."POST /orders"' + (f".{field}" if field else "")
    assert f".yaml:9: {where}:" in text, text


def test_the_runtime_refuses_a_table_with_a_nonce_but_no_dpop_proof():
    table = table_document(None, [route("GET /o", dpop_nonce="required")], binding={"dpop": True})
    with pytest.raises(RouteTableError, match="dpop_nonce required applies to DPoP proofs, and the route has proof "
                                              "none"):
        RouteTable.load(table)
    table["apis"]["orders"]["routes"][0].update(proof="dpop", dpop_nonce="sometimes")
    with pytest.raises(RouteTableError, match="dpop_nonce must be one of none, required"):
        RouteTable.load(table)
