"""The command line as a new user meets it: file modes, one exit status per failure, flags named in errors, batch
results matched to their input lines, and the requirement flags verify offers."""
from __future__ import annotations

import json
import os
import stat

import pytest

from stacks.cli import main
from tests.support.tokens import AUDIENCE, ISSUER, mint
from tests.unit.policy.policy_testing import REPO


def trust(jwks_file):
    return ["--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", jwks_file]


@pytest.fixture()
def bad_policy(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("issuers:\n  corp: {issuer: https://idp.example.com, audiences: [a], leeway_seconds: '30'}\n"
                    "apis:\n  a:\n    routes:\n      'GET /x': {issuers: [corp]}\n")
    return str(path)


# ---- render -o: the umask's mode ---------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_render_output_file_gets_the_umask_mode(tmp_path, umask, mode):
    out = tmp_path / "routes.json"
    previous = os.umask(umask)
    try:
        assert main(["render", "routes", "--policy", str(REPO / "policies/example.yaml"), "-o", str(out)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert json.loads(out.read_text())["issuers"]
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]   # no temporary file left beside it


# ---- one exit status for an invalid policy -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["render", "routes", "--policy", "{policy}"],
    ["render", "apim", "--policy", "{policy}", "--api", "a"],
    ["verify", "x.y.z", "--policy", "{policy}"],
    ["explain", "x.y.z", "--policy", "{policy}"],
    ["synth", "--policy", "{policy}", "--api", "a", "-o", "{out}"],
])
def test_an_invalid_policy_exits_two_from_every_command(argv, bad_policy, capsys, tmp_path):
    assert main([a.replace("{policy}", bad_policy).replace("{out}", str(tmp_path / "cdk.out")) for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"{bad_policy}:2: issuers.corp.leeway_seconds: expected a whole number" in err
    assert "Traceback" not in err


def test_policy_warnings_are_printed_on_stderr(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("issuers:\n  corp: {issuer: https://idp.example.com, audiences: [a]}\n"
                    "  spare: {issuer: https://other.example.com, audiences: [a]}\n"
                    "apis:\n  a:\n    routes:\n      'GET /x': {issuers: [corp]}\n")
    assert main(["render", "routes", "--policy", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"authgate render: warning: {path}:3: issuers.spare: issuer spare is defined but no route" in captured.err
    assert json.loads(captured.out)["issuers"]


# ---- --algorithms: one check with or without --signature-only ----------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ("FOO", "'FOO' cannot be allowed (it is not a JWS algorithm)"),
    ("HS256", "'HS256' cannot be allowed (none and HMAC"),
    ("none", "'none' cannot be allowed (none and HMAC"),
    ("es256", "case-sensitive: did you mean ES256?"),
    ("RS256,", "'(empty)' cannot be allowed"),
])
@pytest.mark.parametrize("mode", ["signature-only", "claims"])
def test_bad_algorithms_are_a_usage_error_in_both_modes(value, message, mode, jwks_file, capsys):
    extra = ["--jwks", jwks_file, "--signature-only"] if mode == "signature-only" else trust(jwks_file)
    assert main(["verify", "x.y.z", *extra, "--algorithms", value]) == 2
    err = capsys.readouterr().err
    assert f"--algorithms {value!r}" in err and message in err


# ---- messages name the flags the user typed ----------------------------------------------------------------------

@pytest.mark.parametrize("argv, says, never", [
    (["--leeway", "999"], f"--issuer {ISSUER}: --leeway must be an integer from 0 to 300", "leeway_seconds"),
    (["--jwks", "http://127.0.0.1:9/keys.json"], "--jwks 'http://127.0.0.1:9/keys.json' uses plain http; set "
     "--allow-insecure-http to allow loopback http", "allow_insecure_http"),
])
def test_errors_name_the_cli_flags_not_python_fields(argv, says, never, capsys):
    assert main(["verify", "x.y.z", "--issuer", ISSUER, "--audience", AUDIENCE, *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and never not in err and "IssuerConfig" not in err


def test_discovery_over_http_names_the_flag(capsys):
    assert main(["verify", "x.y.z", "--issuer", "http://127.0.0.1:9", "--audience", AUDIENCE]) == 2
    err = capsys.readouterr().err
    assert "set --allow-insecure-http" in err and "allow_insecure_http" not in err


# ---- verify --batch: results matched to input lines -------------------------------------------------------------

def test_batch_results_carry_the_line_number_and_the_input_id(key, jwks_file, tmp_path, capsys):
    good = mint(key)
    batch = tmp_path / "tokens.jsonl"
    batch.write_text("\n".join([
        json.dumps({"token": good, "id": "req-1"}),
        "",
        "   ",
        json.dumps({"token": "nope"}),
        "not json",
        json.dumps({"token": good, "id": 42}),
    ]) + "\n")
    assert main(["verify", "--batch", str(batch), *trust(jwks_file)]) == 1
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["line"], r.get("id"), r["valid"]) for r in results] == [
        (1, "req-1", True), (4, None, False), (5, None, False), (6, 42, True)]
    assert "id" not in results[1]
    assert results[2]["code"] == "bad_input" and f"{batch}:5:" in results[2]["error"]["message"]


# ---- verify: groups, all-of roles, claims ------------------------------------------------------------------------

@pytest.mark.parametrize("flags, valid, code", [
    (["--group", "support", "--group", "ops"], True, "ok"),
    (["--group", "finance"], False, "insufficient_group"),
    (["--group-all", "support", "--group-all", "ops"], False, "insufficient_group"),
    (["--role-all", "reader", "--role-all", "writer"], True, "ok"),
    (["--role-all", "reader", "--role-all", "admin"], False, "insufficient_role"),
    (["--claim", "tenant=acme"], True, "ok"),
    (["--claim", "tenant=globex", "--claim", "tenant=acme"], True, "ok"),
    (["--claim", "tenant=globex"], False, "claim_mismatch"),
])
def test_verify_checks_groups_all_of_roles_and_claims(key, jwks_file, flags, valid, code, capsys):
    token = mint(key, groups=["support"], roles=["reader", "writer"], tenant="acme")
    assert main(["verify", token, *trust(jwks_file), *flags, "--json"]) == (0 if valid else 1)
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is valid and result["code"] == code


@pytest.mark.parametrize("flags, message", [
    (["--claim", "tenant"], "--claim 'tenant': write it as NAME=VALUE"),
    (["--signature-only", "--group", "g"], "--signature-only reads no claims, so --group cannot be checked"),
])
def test_requirement_flag_usage_errors(jwks_file, flags, message, capsys):
    assert main(["verify", "x.y.z", *trust(jwks_file), *flags]) == 2
    assert message in capsys.readouterr().err


# ---- --policy with --jwks: explain a token against a real policy offline ----------------------------------------

def orders_policy(tmp_path, *, jwks_uri: str, extra_routes: str = "") -> str:
    """A one-issuer policy whose keys are at `jwks_uri` (unreachable from the tests), with GET /orders."""
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
issuers:
  corp: {{issuer: {ISSUER}, audiences: [{AUDIENCE}], jwks_uri: "{jwks_uri}"}}
apis:
  orders:
    routes:
      "GET /orders": {{issuers: [corp], scopes: [orders:read]}}
{extra_routes}""")
    return str(path)


@pytest.fixture()
def remote_keys_policy(tmp_path):
    return orders_policy(tmp_path, jwks_uri="https://keys.invalid/jwks.json")


def test_verify_and_explain_with_a_policy_take_keys_from_jwks(key, jwks_file, remote_keys_policy, capsys):
    token = mint(key, scope="orders:read")
    assert main(["verify", token, "--policy", remote_keys_policy, "--jwks", jwks_file, "--scope", "orders:read"]) == 0
    assert main(["explain", token, "--policy", remote_keys_policy, "--jwks", jwks_file]) == 0
    out = capsys.readouterr().out
    assert "GET /orders" in out and "allowed" in out
    assert main(["verify", token, "--policy", remote_keys_policy, "--issuer", ISSUER]) == 2
    assert "drop --issuer/--audience" in capsys.readouterr().err


# ---- paste mistakes get a precise message -------------------------------------------------------------------------

@pytest.mark.parametrize("pasted, message", [
    ("Bearer {t}", "the token starts with 'Bearer '"),
    ("bearer {t}", "the token starts with 'Bearer '"),
    ('"{t}"', "wrapped in quotes"),
    ("'{t}'", "wrapped in quotes"),
    ("{head}\n{tail}", "a line break at character"),
    ("{head} {tail}", "a space at character"),
    ("", "the token is empty"),
])
@pytest.mark.parametrize("command", ["verify", "explain"])
def test_paste_mistakes_are_named(key, jwks_file, pasted, message, command, capsys):
    token = mint(key)
    text = pasted.format(t=token, head=token[:40], tail=token[40:])
    assert main([command, text, *trust(jwks_file)]) == 1
    out = capsys.readouterr().out
    assert message in out and ("pass the bare token" in out or "the token is empty" in out)
    assert "this token has" not in out and "is not valid base64url" not in out


# ---- explain: every unmet condition named; keys unreachable -> the rest still checked, marked unverified ----------

@pytest.fixture()
def unreachable_keys_policy(tmp_path):
    return orders_policy(tmp_path, jwks_uri="https://127.0.0.1:1/jwks.json", extra_routes=(
        '      "POST /orders": {issuers: [corp], scopes_all: [orders:write, orders:admin], roles: [admin]}\n'))


def test_explain_with_unreachable_keys_still_checks_claims_and_routes_marked_unverified(key, unreachable_keys_policy,
                                                                                     capsys):
    token = mint(key, scope="orders:read")
    assert main(["explain", token, "--policy", unreachable_keys_policy, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["signing key"]["passed"] is False and report["signature_verified"] is False
    for name in ("audience", "expiry", "token use"):
        assert by_name[name]["passed"] is True and "the signature was not verified" in by_name[name]["detail"]
    verdict = report["routes"]["orders"]["POST /orders"]
    # Every unmet condition, each naming what it needs and what the token has.
    assert "insufficient_scope" in verdict and "orders:admin, orders:write" in verdict
    assert "insufficient_role" in verdict and "needs one of: admin" in verdict
    assert report["routes"]["orders"]["GET /orders"] == "allowed"


def test_explain_route_check_lists_every_failing_condition(key, jwks_file, tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text(f"""
issuers:
  corp: {{issuer: {ISSUER}, audiences: [{AUDIENCE}], jwks_file: {jwks_file}}}
apis:
  orders:
    routes:
      "POST /orders": {{issuers: [corp], scopes: [orders:write, orders:admin], scopes_all: [orders:read, audit]}}
""")
    token = mint(key, scope="orders:read")
    assert main(["explain", token, "--policy", str(path), "--api", "orders", "--route", "POST /orders",
                 "--json"]) == 1
    scopes = next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["name"] == "scopes")
    assert "none of the scopes" in scopes["detail"] and "orders:admin" in scopes["detail"]
    assert "lacks scope(s) this route requires: audit" in scopes["detail"]
