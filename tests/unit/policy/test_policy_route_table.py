"""The route table renderer: golden output, the shared format the authorizers load, bundled keys inlined."""
from __future__ import annotations

import argparse
import json

import pytest

from lambdas.validation.route_table import RouteTable
from stacks.commands import render as render_command
from stacks.policy import load_policy
from stacks.policy.render import render_route_table, route_table_json
from tests.support.tokens import SigningKey
from tests.unit.policy.policy_testing import REPO, assert_golden, load_text


def run_render(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="authgate render")
    render_command.add_arguments(parser)
    return render_command.run(parser.parse_args(list(argv)))


def test_example_route_table_matches_golden():
    assert_golden("example.routes.json", route_table_json(load_policy(REPO / "policies/example.yaml")))


def test_local_route_table_matches_golden():
    policy = load_policy(REPO / "policies/local.yaml", variables={"LOCAL_ISSUER_URL": "http://127.0.0.1:41234"})
    assert_golden("local.routes.json", route_table_json(policy))


def test_rendered_table_loads_in_the_runtime_and_matches_requests():
    table = RouteTable.load(render_route_table(load_policy(REPO / "policies/example.yaml")))
    orders = table.api("orders")
    route = orders.match("GET", "/orders/42")
    assert route.route_key == "GET /orders/{id}" and route.enforcement == "native"
    assert route.requirement.scopes_any == ("orders-api/orders.read", "orders-api/orders.admin")
    assert table.api("billing").match("PUT", "/exports/2024/q1.csv").route_key == "ANY /exports/{path+}"
    assert orders.match("GET", "/health").public


def test_shape_follows_the_shared_contract():
    table = render_route_table(load_policy(REPO / "policies/example.yaml"))
    assert list(table) == ["format", "issuers", "apis"] and table["format"] == "authgate.routes/v1"
    assert list(table["issuers"]["corp"]) == ["issuer", "audiences", "profile", "algorithms", "jwks_uri", "jwks",
                                              "token_use", "leeway_seconds", "max_token_age_seconds",
                                              "allow_insecure_http"]
    entry = table["apis"]["billing"]["routes"][2]
    assert entry == {
        "route_key": "GET /invoices/{id}", "method": "GET", "path": "/invoices/{id}", "public": False,
        "issuers": ["workforce"], "scopes": ["billing.read"], "scopes_all": [], "roles": [], "roles_all": [],
        "groups": [], "groups_all": [], "claims": {"tenant": ["acme", "globex"]}, "token_use": None,
        "enforcement": "lambda", "enforcement_reason": entry["enforcement_reason"]}
    assert "claims needs the Lambda authorizer" in entry["enforcement_reason"]


def test_one_api_carries_only_the_issuers_it_uses():
    table = render_route_table(load_policy(REPO / "policies/example.yaml"), apis=["orders"])
    assert list(table["issuers"]) == ["corp"] and list(table["apis"]) == ["orders"]
    with pytest.raises(KeyError, match="no API named 'shop'"):
        render_route_table(load_policy(REPO / "policies/example.yaml"), apis=["shop"])


def test_jwks_file_contents_are_inlined(tmp_path):
    key = SigningKey.generate("RS256", kid="bundled-1")
    (tmp_path / "corp.jwks.json").write_text(json.dumps(key.jwks()))
    policy = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [a], jwks_file: corp.jwks.json, token_use: any}
        apis:
          a: {routes: {"GET /x": {issuers: [corp], token_use: access}}}
    """)
    table = render_route_table(policy)
    assert table["issuers"]["corp"]["jwks"] == key.jwks() and table["issuers"]["corp"]["jwks_uri"] is None
    assert table["issuers"]["corp"]["token_use"] is None
    assert table["apis"]["a"]["routes"][0]["token_use"] == "access"
    RouteTable.load(table)


def test_cli_writes_the_table_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "out" / "routes.json"
    assert run_render("routes", "--policy", str(REPO / "policies/example.yaml"), "--api", "billing",
                      "-o", str(out)) == 0
    assert json.loads(out.read_text())["apis"].keys() == {"billing"}
    assert run_render("routes", "--policy", str(REPO / "policies/local.yaml"),
                      "--var", "LOCAL_ISSUER_URL=http://127.0.0.1:5000") == 0
    assert '"issuer": "http://127.0.0.1:5000"' in capsys.readouterr().out
    assert run_render("routes", "--policy", str(REPO / "policies/local.yaml")) == 2   # an invalid policy: exit 2 from every command
    assert "${LOCAL_ISSUER_URL} has no value" in capsys.readouterr().err
    assert run_render("routes", "--policy", str(REPO / "policies/local.yaml"), "--var", "oops") == 2
    assert "write it as NAME=VALUE" in capsys.readouterr().err
