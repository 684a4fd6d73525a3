"""Per-issuer introspection, revocation and binding settings and per-route freshness and proof: loading, the errors
that say how to fix a policy, the rendered route table the runtime reads, and the schema editors check against."""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from lambdas.validation.route_table import RouteTable, RouteTableError
from stacks.policy.render import render_route_table
from tests.support.route_tables import route, table_document
from tests.unit.policy.policy_testing import REPO, load_text, policy_error

BOUND_ISSUER = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    introspection:
      client_id: authgate-gateway
      client_secret_env: CORP_INTROSPECTION_SECRET
      cache_seconds: 10
    revocation: {max_token_lifetime_seconds: 900, cache_seconds: 2, logout_audiences: [orders-web]}
    binding: {dpop: true, mtls: true}
  plain:
    issuer: https://plain.example.com
    audiences: [orders-api]
"""


def _policy(routes: str, issuers: str = BOUND_ISSUER) -> str:
    return issuers + "apis:\n  orders:\n    routes:\n" + routes


def test_settings_load_and_reach_the_route_table(tmp_path):
    policy = load_text(tmp_path, _policy("""
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
      "POST /orders": {issuers: [corp], freshness: denylist, proof: dpop}
      "DELETE /orders/{id}": {issuers: [corp], freshness: introspect, proof: mtls}
      "GET /plain": {issuers: [plain]}
"""))
    corp = policy.issuer("corp")
    assert corp.introspection.endpoint is None and corp.introspection.negative_cache_seconds == 5
    assert corp.binding.dpop_algorithms == ["ES256", "PS256", "RS256", "EdDSA"]
    table = render_route_table(policy)
    entry = table["issuers"]["corp"]
    assert entry["introspection"] == {"endpoint": None, "client_id": "authgate-gateway",
                                      "client_secret_env": "CORP_INTROSPECTION_SECRET", "cache_seconds": 10,
                                      "negative_cache_seconds": 5, "timeout_seconds": 1.0}
    assert entry["revocation"]["cache_seconds"] == 2 and entry["binding"]["mtls"] is True
    # An issuer that uses none of it renders exactly as before.
    assert not {"introspection", "revocation", "binding"} & set(table["issuers"]["plain"])
    routes = {r["route_key"]: r for r in table["apis"]["orders"]["routes"]}
    assert "freshness" not in routes["GET /orders"] and "proof" not in routes["GET /orders"]
    assert (routes["POST /orders"]["freshness"], routes["POST /orders"]["proof"]) == ("denylist", "dpop")
    assert routes["POST /orders"]["enforcement"] == "lambda"
    assert "proof: dpop needs the Lambda authorizer" in routes["POST /orders"]["enforcement_reason"]

    loaded = RouteTable.load(json.loads(json.dumps(table)))
    api = loaded.api("orders")
    assert (api.route("DELETE /orders/{id}").freshness, api.route("DELETE /orders/{id}").proof) == ("introspect",
                                                                                                      "mtls")
    assert api.route("GET /orders").freshness == "none" and api.route("GET /orders").proof == "none"
    config = loaded.issuers["corp"]
    assert config.introspection.client_secret_env == "CORP_INTROSPECTION_SECRET"
    assert config.revocation.logout_audiences == ("orders-web",) and config.binding.dpop


@pytest.mark.parametrize("route, expected", [
    ('{issuers: [plain], freshness: introspect}', "issuer plain has no introspection settings; add introspection"),
    ('{issuers: [plain], proof: dpop}', "issuer plain does not issue DPoP-bound tokens; set binding: {dpop: true}"),
    ('{issuers: [corp, plain], proof: mtls}', "issuer plain does not issue certificate-bound tokens"),
    ('{public: true, proof: dpop}', "a public route takes no token, so proof cannot apply"),
    ('{public: true, freshness: denylist}', "a public route takes no token, so freshness cannot apply"),
    ('{issuers: [corp], freshness: sometimes}', "freshness: 'sometimes' is not allowed; use one of 'none', 'denylist' or 'introspect'"),
    ('{issuers: [corp], proof: dpop, enforcement: native}', "proof: dpop needs the Lambda authorizer"),
    ('{issuers: [corp], freshness: denylist, enforcement: native}', "freshness: denylist needs the Lambda authorizer"),
])
def test_route_problems_say_what_to_change(tmp_path, route, expected):
    error = policy_error(tmp_path, _policy(f'      "GET /orders": {route}\n'))
    assert expected in str(error)


@pytest.mark.parametrize("setting, expected", [
    ("introspection: {client_id: gw, client_secret: s3cret}", "client_secret_env"),
    ("introspection: {client_id: gw, client_secret_env: lower-case}", "is not an environment variable name"),
    ("introspection: {client_id: gw, client_secret_env: S, endpoint: 'http://idp.example.com/introspect'}",
     "introspection.endpoint 'http://idp.example.com/introspect' uses plain http to a non-loopback host"),
    ("revocation: {max_token_lifetime_seconds: 999999}", "less than or equal to 86400"),
    ("binding: {dpop: true, dpop_algorithms: [HS256]}", "dpop_algorithms[0]: 'HS256' is not allowed"),
])
def test_issuer_setting_problems(tmp_path, setting, expected):
    issuers = f"""
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    {setting}
"""
    error = policy_error(tmp_path, _policy('      "GET /orders": {issuers: [corp]}\n', issuers))
    assert expected in str(error)


def test_websocket_connect_refuses_proof(tmp_path):
    error = policy_error(tmp_path, BOUND_ISSUER + """
apis:
  chat:
    protocol: websocket
    routes:
      "$connect": {issuers: [corp], proof: dpop}
""")
    assert "proof: dpop is not available on a WebSocket API" in str(error)


def test_runtime_refuses_a_table_whose_route_needs_what_the_issuer_lacks():
    table = table_document(None, [route("GET /o", proof="dpop")])
    with pytest.raises(RouteTableError, match=r"proof dpop needs issuer corp to bind its tokens \(binding.dpop\)"):
        RouteTable.load(table)
    table["apis"]["orders"]["routes"][0] = route("GET /o", freshness="often")
    with pytest.raises(RouteTableError, match="freshness must be one of none, denylist, introspect"):
        RouteTable.load(table)


def test_schema_accepts_the_settings_and_flags_bad_values(tmp_path):
    schema = json.loads((REPO / "policies/authgate.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(_policy('      "POST /orders": {issuers: [corp], freshness: introspect, proof: dpop}\n'))
    assert [e.message for e in validator.iter_errors(good)] == []
    bad = yaml.safe_load(_policy('      "POST /orders": {issuers: [corp], proof: tls}\n'))
    assert any("'tls' is not one of" in e.message for e in validator.iter_errors(bad))
    nonce = yaml.safe_load(_policy('      "POST /orders": {issuers: [corp], proof: dpop, dpop_nonce: required}\n'))
    assert [e.message for e in validator.iter_errors(nonce)] == []
    nonce["apis"]["orders"]["routes"]["POST /orders"]["dpop_nonce"] = "always"
    assert any("'always' is not one of" in e.message for e in validator.iter_errors(nonce))
