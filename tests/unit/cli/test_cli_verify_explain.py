"""`authgate verify` and `authgate explain` through the real console-script entry point, with real signed tokens."""
from __future__ import annotations

import json
import time

import pytest

from stacks.cli import main
from tests.support.tokens import AUDIENCE, ISSUER, mint


@pytest.fixture()
def policy_file(tmp_path, jwks_file):
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
issuers:
  corp:
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    jwks_file: {jwks_file}
apis:
  orders:
    routes:
      "GET /health": {{public: true}}
      "GET /orders": {{issuers: [corp], scopes: [orders:read]}}
      "POST /orders": {{issuers: [corp], scopes: [orders:write], roles: [admin]}}
""")
    return str(path)


def trust(jwks_file):
    return ["--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", jwks_file]


def test_valid_token_exits_zero_and_reports_the_principal(key, jwks_file, capsys):
    token = mint(key, scope="orders:read", subject="alice")
    assert main(["verify", token, *trust(jwks_file), "--scope", "orders:read"]) == 0
    out = capsys.readouterr().out
    assert "VALID access token for subject 'alice'" in out
    assert token not in out


def test_rejection_says_code_expectation_and_fix_without_the_token(key, jwks_file, capsys):
    token = mint(key, audience="billing-api")
    assert main(["verify", token, *trust(jwks_file)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED (invalid_audience, HTTP 401)" in out
    assert "fix:" in out
    assert token.split(".")[2] not in out


def test_missing_scope_is_a_403_rejection_in_json(key, jwks_file, capsys):
    token = mint(key, scope="orders:read")
    assert main(["verify", token, *trust(jwks_file), "--scope", "orders:write", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False and result["code"] == "insufficient_scope" and result["status"] == 403


def test_batch_writes_one_result_per_line_and_exits_one_if_any_rejected(key, jwks_file, tmp_path, capsys):
    good = mint(key, subject="bob")
    expired = mint(key, now=time.time() - 3600)
    batch = tmp_path / "tokens.jsonl"
    batch.write_text("\n".join([json.dumps({"token": good}), json.dumps({"token": expired}), "not json"]) + "\n")
    assert main(["verify", "--batch", str(batch), *trust(jwks_file)]) == 1
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["valid"] for r in results] == [True, False, False]
    assert results[0]["claims"]["sub"] == "bob"
    assert results[1]["code"] == "expired"
    assert results[2]["code"] == "bad_input" and ":3:" in results[2]["error"]["message"]


def test_batch_of_only_valid_tokens_exits_zero(key, jwks_file, tmp_path, capsys):
    batch = tmp_path / "tokens.jsonl"
    batch.write_text("".join(json.dumps({"token": mint(key)}) + "\n" for _ in range(3)))
    assert main(["verify", "--batch", str(batch), *trust(jwks_file)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_signature_only_ignores_claims_but_not_the_signature(key, jwks_file, capsys):
    expired_wrong_audience = mint(key, audience="someone-else", now=time.time() - 86400)
    assert main(["verify", expired_wrong_audience, "--jwks", jwks_file, "--signature-only", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["header"]["kid"] == key.kid
    head, body, sig = expired_wrong_audience.split(".")
    tampered = f"{head}.{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    assert main(["verify", tampered, "--jwks", jwks_file, "--signature-only", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "bad_signature"


@pytest.mark.parametrize("argv, message", [
    (["verify", "x.y.z"], "say whom to trust"),
    (["verify", "x.y.z", "--issuer", ISSUER], "give --audience"),
    (["verify", "x.y.z", "--signature-only"], "needs --jwks"),
    (["verify", "--issuer", ISSUER, "--audience", AUDIENCE], "give a TOKEN"),
    (["verify", "x.y.z", "--issuer-name", "corp"], "add --policy"),
    (["verify", "x.y.z", "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", "/nonexistent.json"],
     "cannot read JWKS file /nonexistent.json"),
    (["verify", "x.y.z", "--jwks", "/nonexistent.json", "--signature-only"], "cannot read JWKS file"),
    (["verify", "x.y.z", "--policy", "p.yaml", "--var", "NOEQUALS"], "NAME=VALUE"),
])
def test_usage_errors_exit_two_with_the_fix(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_verify_against_a_policy_issuer(key, policy_file, capsys):
    token = mint(key)
    assert main(["verify", token, "--policy", policy_file, "--issuer-name", "corp"]) == 0
    assert main(["verify", token, "--policy", policy_file, "--issuer-name", "nope"]) == 2
    assert "choose one of: corp" in capsys.readouterr().err


def test_explain_lists_every_check_and_the_callable_routes(key, policy_file, capsys):
    token = mint(key, scope="orders:read")
    assert main(["explain", token, "--policy", policy_file]) == 0
    out = capsys.readouterr().out
    assert "PASS  signature" in out
    assert "GET /orders" in out and "allowed" in out
    assert "POST /orders" in out and "denied: insufficient_scope" in out


def test_explain_keeps_going_after_a_failure_and_gives_fixes(key, policy_file, capsys):
    token = mint(key, audience="billing-api", now=time.time() - 3600)
    assert main(["explain", token, "--policy", policy_file, "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    failed = {name for name, c in checks.items() if c["passed"] is False}
    assert {"signature"} <= {name for name, c in checks.items() if c["passed"] is True}
    assert len(failed) >= 2, checks
    assert all(checks[name]["fix"] for name in failed)


def test_explain_against_one_route_checks_its_requirement(key, policy_file, capsys):
    token = mint(key, scope="orders:write")
    assert main(["explain", token, "--policy", policy_file, "--api", "orders", "--route", "POST /orders"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "admin" in out
    assert main(["explain", token, "--policy", policy_file, "--api", "orders", "--route", "GET /nope"]) == 2
