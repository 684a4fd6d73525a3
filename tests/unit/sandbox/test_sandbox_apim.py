"""The APIM emulator interpreting render_apim's XML: validate-jwt (keys, audiences, issuers, required claims with
any/all and separator, skew), failed-validation status and message, header deletion and identity headers."""
from __future__ import annotations

import json
import re

import pytest

from sandbox.gateways.apim import ApimEmulationError, ApimEmulator, ClaimRule
from stacks.policy import load_policy_text
from stacks.policy.render.apim import render_apim, render_apim_operations
from tests.support.tokens import ISSUER, SigningKey, mint

POLICY = """
issuers:
  corp: {issuer: %s, audiences: [orders-api], jwks_file: keys.json, leeway_seconds: 30}
apis:
  orders:
    routes:
      "GET /health": {public: true}
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
      "GET /orders/{id}": {issuers: [corp], scopes: [orders:read], claims: {tenant: [acme]}}
      "POST /orders": {issuers: [corp], scopes_all: [orders:read, orders:write]}
""" % ISSUER
OPERATIONS = [("GET /health", "GET", "/health"), ("GET /orders", "GET", "/orders"),
              ("GET /orders/{id}", "GET", "/orders/{id}"), ("POST /orders", "POST", "/orders")]


@pytest.fixture(scope="module")
def apim(key, tmp_path_factory):
    folder = tmp_path_factory.mktemp("apim")
    (folder / "keys.json").write_text(json.dumps(key.jwks()))
    policy = load_policy_text(POLICY, base_dir=folder)
    return ApimEmulator(render_apim(policy, "orders"), OPERATIONS, render_apim_operations(policy, "orders"))


def auth(token, **more):
    return {"authorization": f"Bearer {token}", **more}


def test_a_good_token_passes_and_identity_headers_replace_what_the_client_sent(apim, key):
    decision = apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", subject="svc-1", azp="app-7"),
                                                  **{"x-authgate-subject": "admin", "x-apigateway-api-userinfo": "x"}))
    assert decision.allowed
    assert decision.set_headers["x-authgate-subject"] == "svc-1"
    assert decision.set_headers["x-authgate-client-id"] == "app-7"
    assert decision.set_headers["x-authgate-scopes"] == "orders:read"
    assert "x-apigateway-api-userinfo" in decision.drop_headers


def test_api_level_failures_answer_401_with_the_rendered_message(apim, key):
    for headers in ({}, {"authorization": "Basic abc"}, auth(mint(key, audience="billing-api", scope="orders:read")),
                    auth(mint(key, scope="orders:read", lifetime=-120))):
        refused = apim.decide("GET", "/orders", headers)
        assert refused.status == 401 and refused.body["message"].startswith("Unauthorized"), headers
    # 30 s of clock skew from the issuer's leeway: a token expired 10 s ago still passes.
    assert apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", lifetime=-10))).allowed


def test_operation_rules_answer_403(apim, key):
    read_only = mint(key, scope="orders:read")
    refused = apim.decide("POST", "/orders", auth(read_only))
    assert (refused.status, refused.code) == (403, "claim_mismatch") and refused.body["message"].startswith("Forbidden")
    assert apim.decide("POST", "/orders", auth(mint(key, scope="orders:write orders:read"))).allowed
    assert apim.decide("GET", "/orders/9", auth(mint(key, scope="orders:read", tenant="globex"))).status == 403
    assert apim.decide("GET", "/orders/9", auth(mint(key, scope="orders:read", tenant="acme"))).allowed


def test_public_operation_needs_no_token_and_unknown_paths_are_404(apim):
    assert apim.decide("GET", "/health", {}).allowed
    assert apim.decide("GET", "/nowhere", {}).status == 404


@pytest.mark.parametrize("cnf", [{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
                                 {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, {"kid": "any"}])
def test_a_bound_token_is_refused_with_401_on_every_operation(apim, key, cnf):
    # validate-jwt checks neither a DPoP proof nor a client certificate: a bound token reaching it came without its
    # proof, which every authgate entry point refuses (a thief who dropped the proof must not pass here either).
    for method, path in (("GET", "/orders"), ("GET", "/orders/9"), ("POST", "/orders")):
        refused = apim.decide(method, path, auth(mint(key, scope="orders:read orders:write", tenant="acme",
                                                      cnf=cnf)))
        assert (refused.status, refused.code) == (401, "bound_token"), (method, path)
        assert "bound to a key or client certificate" in refused.body["message"]
        assert "when the token has claim cnf" in refused.checked
    assert apim.decide("GET", "/orders", auth(mint(key, scope="orders:read"))).allowed      # the same, unbound
    assert apim.decide("GET", "/health", {}).allowed                                       # public: no token read


def test_a_claim_condition_before_any_validate_jwt_is_refused():
    early = ('<policies><inbound><choose><when condition="@(((Jwt)context.Variables[&quot;jwt&quot;]).Claims.'
             'ContainsKey(&quot;cnf&quot;))"><return-response><set-status code="401" reason="Unauthorized" />'
             '</return-response></when></choose></inbound></policies>')
    with pytest.raises(ApimEmulationError, match="before a validate-jwt sets it"):
        ApimEmulator(early, OPERATIONS, {}).decide("GET", "/health", {})


def test_required_claim_matching():
    all_of = ClaimRule("scope", "all", " ", ("a", "b"))
    assert all_of.failure({"scope": "b c a"}) is None
    assert all_of.failure({"scope": "a"}) and all_of.failure({})
    any_of = ClaimRule("roles", "any", None, ("admin",))
    assert any_of.failure({"roles": ["reader", "admin"]}) is None
    assert any_of.failure({"roles": "admin reader"})   # no separator: the whole string is one value


def test_policies_the_emulator_cannot_interpret_are_refused():
    api = "<policies><inbound><base /><send-request mode='new' /></inbound></policies>"
    with pytest.raises(ApimEmulationError, match="send-request"):
        ApimEmulator(api, OPERATIONS, {})
    unsigned = ("<policies><inbound><validate-jwt header-name='Authorization' require-signed-tokens='false'>"
                "<audiences><audience>a</audience></audiences><issuers><issuer>https://i</issuer></issuers>"
                "</validate-jwt></inbound></policies>")
    with pytest.raises(ApimEmulationError, match="unsigned"):
        ApimEmulator(unsigned, OPERATIONS, {})
    with pytest.raises(Exception):   # defusedxml refuses entity declarations
        ApimEmulator('<!DOCTYPE p [<!ENTITY x "y">]><policies><inbound>&x;</inbound></policies>', OPERATIONS, {})


# ---- rate-limit-by-key: per caller on token operations, per client address on public ones --------------------------

class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(key, tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps(key.jwks()))
    text = POLICY.replace("  orders:\n    routes:",
                          "  orders:\n    rate_limit: {calls: 3, period_seconds: 10}\n    routes:")
    policy = load_policy_text(text, base_dir=tmp_path)
    clock = SteppedClock()
    return ApimEmulator(render_apim(policy, "orders"), OPERATIONS, render_apim_operations(policy, "orders"),
                        clock=clock), clock


def test_each_caller_gets_its_own_sliding_window(limited, key):
    apim, clock = limited
    app7 = auth(mint(key, scope="orders:read", azp="app-7"))
    for step in range(3):
        assert apim.decide("GET", "/orders", app7).allowed, step
        clock.now += 2
    refused = apim.decide("GET", "/orders", app7)                       # 4th call within 10 s of the first
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert refused.body["message"] == "Rate limit is exceeded. Try again in 4 seconds."
    assert "rate-limit-by-key 3 calls / 10 s" in refused.checked
    # Another application is counted apart; so is a caller identified by its subject alone.
    assert apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", azp="app-8"))).allowed
    assert apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", subject="user-9"))).allowed
    clock.now += 3                                                      # the refused call was not counted
    assert apim.decide("GET", "/orders", app7).status == 429
    clock.now += 1                                                      # the first call has left the window
    assert apim.decide("GET", "/orders", app7).allowed
    assert apim.decide("GET", "/orders", app7).status == 429


def test_rate_limit_comes_after_token_validation(limited, key):
    apim, _ = limited
    expired = auth(mint(key, scope="orders:read", azp="app-7", lifetime=-600))
    for _ in range(5):   # bad tokens are refused by validate-jwt before they can use up anyone's calls
        assert apim.decide("GET", "/orders", expired).status == 401
    assert apim.decide("GET", "/orders", auth(mint(key, scope="orders:read", azp="app-7"))).allowed


def test_public_operations_are_limited_per_client_address(limited):
    apim, _ = limited
    for _ in range(3):
        assert apim.decide("GET", "/health", {}, client_ip="198.51.100.7").allowed
    assert apim.decide("GET", "/health", {}, client_ip="198.51.100.7").status == 429
    assert apim.decide("GET", "/health", {}, client_ip="198.51.100.8").allowed


def test_rate_limit_shapes_the_emulator_cannot_interpret_are_refused():
    def api(attributes: str) -> str:
        return f"<policies><inbound><rate-limit-by-key {attributes} /></inbound></policies>"
    key = 'counter-key="@(&quot;ip:&quot; + context.Request.IpAddress)"'
    with pytest.raises(ApimEmulationError, match="increment-condition"):
        ApimEmulator(api(f'calls="1" renewal-period="1" {key} increment-condition="@(true)"'), OPERATIONS, {})
    with pytest.raises(ApimEmulationError, match="whole-number"):
        ApimEmulator(api(f'calls="many" renewal-period="1" {key}'), OPERATIONS, {})
    with pytest.raises(ApimEmulationError, match=">= 1"):
        ApimEmulator(api(f'calls="0" renewal-period="1" {key}'), OPERATIONS, {})
    unknown_key = ApimEmulator(api('calls="1" renewal-period="1" counter-key="@(context.Request.Url.Host)"'),
                               OPERATIONS, {})
    with pytest.raises(ApimEmulationError, match="not emulated|reads a token"):
        unknown_key.decide("GET", "/health", {})


def test_coalescing_binds_looser_than_concatenation_as_in_csharp(key, tmp_path):
    # C# reads `a ?? b + c` as `a ?? (b + c)`; `x + a ?? b` as `(x + a) ?? b`, which the emulator does not model.
    (tmp_path / "keys.json").write_text(json.dumps(key.jwks()))
    rendered = render_apim(load_policy_text(POLICY, base_dir=tmp_path), "orders")
    subject = 'return jwt.Subject ?? "";'
    assert subject in rendered

    def decide_with(expression: str):
        apim = ApimEmulator(rendered.replace(subject, f"return {expression};"), OPERATIONS, {})
        return apim.decide("GET", "/health", auth(mint(key, scope="orders:read", subject="svc-1")))

    assert decide_with('jwt.Subject ?? "" + "-suffix"').set_headers["x-authgate-subject"] == "svc-1"
    assert decide_with('"user:" + jwt.Subject').set_headers["x-authgate-subject"] == "user:svc-1"
    with pytest.raises(ApimEmulationError, match="unexpected"):
        decide_with('"user:" + jwt.Subject ?? "nobody"')


# ---- Two issuers on one API: per-issuer validate-jwt inside a <choose> on iss (issue 5) --------------------------

PARTNER_ISSUER = "https://login.microsoftonline.com/partner-tenant/v2.0"
TWO_ISSUERS = """
issuers:
  corp: {issuer: %s, audiences: [orders-api], jwks_file: corp.json}
  partners: {issuer: %s, profile: entra, audiences: [partner-api], jwks_file: partners.json}
apis:
  orders:
    routes:
      "GET /orders": {issuers: [corp, partners]}
      "POST /orders": {issuers: [corp, partners], scopes: [orders:write]}
      "GET /reports": {issuers: [partners]}
""" % (ISSUER, PARTNER_ISSUER)
TWO_ISSUER_OPERATIONS = [("GET /orders", "GET", "/orders"), ("POST /orders", "POST", "/orders"),
                         ("GET /reports", "GET", "/reports")]


@pytest.fixture(scope="module")
def partner_key():
    return SigningKey.generate()


@pytest.fixture(scope="module")
def two_issuer_policy(key, partner_key, tmp_path_factory):
    folder = tmp_path_factory.mktemp("apim-two")
    (folder / "corp.json").write_text(json.dumps(key.jwks()))
    (folder / "partners.json").write_text(json.dumps(partner_key.jwks()))
    return load_policy_text(TWO_ISSUERS, base_dir=folder)


@pytest.fixture(scope="module")
def two_issuers(two_issuer_policy):
    return ApimEmulator(render_apim(two_issuer_policy, "orders"), TWO_ISSUER_OPERATIONS,
                        render_apim_operations(two_issuer_policy, "orders"))


def test_a_token_with_another_issuers_audience_is_refused(two_issuers, key, partner_key):
    """Issuer corp's token carrying the partners API's audience: with one shared validate-jwt (both issuers, both
    audiences, checked as independent lists) it passed; the per-issuer check binds aud to corp's own audiences."""
    crossed = two_issuers.decide("GET", "/orders", auth(mint(key, audience="partner-api")))
    assert (crossed.status, crossed.code) == (401, "invalid_audience"), crossed
    assert "when iss == " + ISSUER in crossed.checked
    crossed_back = two_issuers.decide("GET", "/orders", auth(mint(partner_key, issuer=PARTNER_ISSUER,
                                                                  audience="orders-api")))
    assert (crossed_back.status, crossed_back.code) == (401, "invalid_audience")
    assert two_issuers.decide("GET", "/orders", auth(mint(key))).allowed
    assert two_issuers.decide("GET", "/orders", auth(mint(partner_key, issuer=PARTNER_ISSUER,
                                                          audience="partner-api"))).allowed


def test_the_shared_validate_jwt_shape_would_have_let_it_through(two_issuer_policy, key):
    """Why the change: the pre-issue-5 shape, one validate-jwt naming both issuers and both audiences, admits the
    crossed token in the same emulator, so the refusal above comes from the per-issuer rendering."""
    api = render_apim(two_issuer_policy, "orders")
    corp, partners = (f"<issuer>{ISSUER}</issuer>", f"<issuer>{PARTNER_ISSUER}</issuer>")
    start, end = api.index("<choose>"), api.index("</choose>") + len("</choose>")
    first = api[api.index("<validate-jwt", start):api.index("</validate-jwt>", start) + len("</validate-jwt>")]
    second_at = api.index("<validate-jwt", api.index("</validate-jwt>", start))
    second_keys = api[api.index("<key ", second_at):api.index("/>", api.index("<key ", second_at)) + 2]
    shared = (first.replace("<audience>orders-api</audience>",
                            "<audience>orders-api</audience><audience>partner-api</audience>")
              .replace(corp, corp + partners).replace("</issuer-signing-keys>", second_keys + "</issuer-signing-keys>"))
    old_shape = ApimEmulator(api[:start] + shared + api[end:], [("GET /orders", "GET", "/orders")], {})
    assert old_shape.decide("GET", "/orders", auth(mint(key, audience="partner-api"))).allowed


def test_tokens_from_no_listed_issuer_get_the_otherwise_answer(two_issuers, key):
    for headers in ({}, {"authorization": "Bearer not-a-jwt"}, {"authorization": "Basic abc"},
                    auth(mint(key, issuer="https://attacker.example.com")),
                    auth(mint(key, iss=["https://idp.example.com"]))):
        refused = two_issuers.decide("GET", "/orders", headers)
        assert (refused.status, refused.code) == (401, "unknown_issuer"), headers
        assert "issuer is not one of them" in refused.body["message"] and "otherwise" in refused.checked


def test_a_forged_iss_picks_a_branch_but_not_its_keys(two_issuers, key):
    """The iss read for dispatch is unverified; the branch it picks checks the signature with that issuer's keys."""
    forged = two_issuers.decide("GET", "/orders", auth(mint(key, issuer=PARTNER_ISSUER, audience="partner-api")))
    assert (forged.status, forged.code) == (401, "bad_signature")


def test_operation_checks_read_each_issuers_own_claims(two_issuers, key, partner_key):
    # corp (generic) carries scopes in scope, partners (Entra) in scp; each branch asks for its own claim.
    assert two_issuers.decide("POST", "/orders", auth(mint(key, scope="orders:write"))).allowed
    assert two_issuers.decide("POST", "/orders", auth(mint(partner_key, issuer=PARTNER_ISSUER, audience="partner-api",
                                                           scp="orders:write"))).allowed
    wrong_claim = two_issuers.decide("POST", "/orders", auth(mint(partner_key, issuer=PARTNER_ISSUER,
                                                                  audience="partner-api", scope="orders:write")))
    assert (wrong_claim.status, wrong_claim.code) == (403, "claim_mismatch")
    # A trusted issuer of the API that this operation does not name: single-issuer operation check, 403.
    narrower = two_issuers.decide("GET", "/reports", auth(mint(key)))
    assert narrower.status == 403 and narrower.body["message"].startswith("Forbidden")


def test_choose_shapes_the_emulator_cannot_interpret_are_refused():
    check = ("<validate-jwt header-name='Authorization'><issuer-signing-keys><key n='AQAB' e='AQAB' />"
             "</issuer-signing-keys><audiences><audience>a</audience></audiences>"
             "<issuers><issuer>https://i</issuer></issuers></validate-jwt>")
    cases = {
        "is not emulated (only the issuer dispatch": f"<choose><when condition='@(true)'>{check}</when></choose>",
        "at most one <otherwise>, last": "<choose><otherwise /><when condition='x' /></choose>",
        "without any <when>": "<choose />",
        "without set-status": "<choose><when condition='@(context.Request.Headers.GetValueOrDefault(\"Authorization\","
                              " \"\").AsJwt()?.Issuer == \"https://i\")'>" + check + "</when><otherwise>"
                              "<return-response><set-body>x</set-body></return-response></otherwise></choose>",
    }
    for expected, inner in cases.items():
        with pytest.raises(ApimEmulationError, match=re.escape(expected)):
            ApimEmulator(f"<policies><inbound>{inner}</inbound></policies>", OPERATIONS, {})
