"""`authgate explain --route` on routes with proof and freshness: what the token decides (bound or not) passes or
fails, and what only a request can show (a proof, its server nonce, the denylist) is named as such."""
from __future__ import annotations

import json

from stacks.cli import main
from tests.support.tokens import AUDIENCE, ISSUER, mint


def policy(tmp_path, jwks_file) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
issuers:
  corp:
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    jwks_file: {jwks_file}
    binding: {{dpop: true, mtls: true}}
    revocation: {{cache_seconds: 3}}
apis:
  orders:
    routes:
      "POST /orders": {{issuers: [corp], scopes: [orders:write], proof: dpop, freshness: denylist}}
      "DELETE /orders/{{id}}": {{issuers: [corp], proof: mtls}}
      "PUT /orders/{{id}}": {{issuers: [corp], proof: dpop, dpop_nonce: required}}
""")
    return str(path)


def explain(token, path, route, capsys):
    status = main(["explain", token, "--policy", path, "--api", "orders", "--route", route, "--json"])
    return status, {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_unbound_token_on_a_dpop_route_fails_with_the_fix(key, jwks_file, tmp_path, capsys):
    status, checks = explain(mint(key, scope="orders:write"), policy(tmp_path, jwks_file), "POST /orders", capsys)
    assert status == 1
    assert checks["DPoP binding"]["passed"] is False and checks["DPoP binding"]["code"] == "dpop_required"
    assert checks["freshness"]["passed"] is None and "within 3 s" in checks["freshness"]["detail"]


def test_bound_token_names_what_each_request_must_carry(key, jwks_file, tmp_path, capsys):
    token = mint(key, scope="orders:write", cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    status, checks = explain(token, policy(tmp_path, jwks_file), "POST /orders", capsys)
    assert status == 0
    assert "Authorization: DPoP" in checks["DPoP binding"]["detail"] and checks["DPoP binding"]["passed"] is None


def test_mtls_route(key, jwks_file, tmp_path, capsys):
    path = policy(tmp_path, jwks_file)
    status, checks = explain(mint(key), path, "DELETE /orders/{id}", capsys)
    assert status == 1 and checks["certificate binding"]["code"] == "certificate_required"
    status, checks = explain(mint(key, cnf={"x5t#S256": "bN7qLJ6KZWv-ggUZlr8V8oZc3IcVjIcjOi8Qq8E6J0A"}), path,
                             "DELETE /orders/{id}", capsys)
    assert status == 0 and "mutual TLS" in checks["certificate binding"]["detail"]


def test_a_nonce_route_names_the_nonce_each_proof_needs(key, jwks_file, tmp_path, capsys):
    path = policy(tmp_path, jwks_file)
    token = mint(key, cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    status, checks = explain(token, path, "PUT /orders/{id}", capsys)
    nonce = checks["DPoP nonce"]
    assert status == 0 and nonce["passed"] is None
    assert "use_dpop_nonce" in nonce["detail"] and "DPoP-Nonce" in nonce["detail"] and "120 s" in nonce["detail"]
    status, checks = explain(mint(key, scope="orders:write", cnf={"jkt": "x"}), path, "POST /orders", capsys)
    assert "DPoP nonce" not in checks
