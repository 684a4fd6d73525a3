"""Requirement (route authorization), explain() and the OIDC ID-token extras."""
from __future__ import annotations

import pytest

from lambdas.validation import Check, IssuerConfig, Requirement, TokenRejected, Verifier
from lambdas.validation.id_token import access_token_hash
from lambdas.validation.principal import build_principal
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint, standard_claims

NOW = 1_800_000_000


def principal(**claims):
    return build_principal("u", ISSUER, "corp", None, (AUDIENCE,), tuple(claims.pop("scopes", ())),
                           tuple(claims.pop("roles", ())), tuple(claims.pop("groups", ())), None, "access", None,
                           0, claims)


# --- Requirement --------------------------------------------------------------------------------------------------

def test_empty_requirement_allows_everyone():
    assert Requirement().is_empty and Requirement().is_satisfied_by(principal())
    Requirement.from_route({"scopes": [], "claims": {}}).check(principal())


def test_any_of_and_all_of():
    p = principal(scopes=["a", "b"], roles=["r1"], groups=["g1", "g2"])
    assert Requirement(scopes_any=["x", "a"], scopes_all=["a", "b"], roles_any=["r1"],
                       groups_all=["g1", "g2"]).is_satisfied_by(p)
    assert not Requirement(scopes_all=["a", "c"]).is_satisfied_by(p)
    assert not Requirement(groups_any=["g3"]).is_satisfied_by(p)
    assert Requirement(scopes_any="a x").scopes_any == ("a", "x")


def test_failures_list_every_unmet_condition_with_403_codes():
    p = principal(scopes=["a"], roles=[], groups=["g"])
    failures = Requirement(scopes_all=["a", "b"], roles_any=["admin"], groups_any=["other"],
                           claims={"tier": ["gold"]}).failures(p)
    assert [f.code for f in failures] == ["insufficient_scope", "insufficient_role", "insufficient_group",
                                          "claim_mismatch"]
    assert all(f.status == 403 for f in failures)
    assert "b" in failures[0].message


@pytest.mark.parametrize("value,allowed,ok", [
    ("acme", ["acme"], True), ("acme", ["other"], False), (["x", "acme"], ["acme"], True), (True, [True], True),
    (True, ["true"], True), (True, [1], False), (1, [True], False), (5, ["5"], True), (5, [5], True),
    ({"a": 1}, ["a"], False), (None, [None], True),
])
def test_claim_values(value, allowed, ok):
    assert Requirement(claims={"c": allowed}).is_satisfied_by(principal(c=value)) is ok


def test_missing_claim_and_json_pointer():
    assert not Requirement(claims={"tenant": ["a"]}).is_satisfied_by(principal())
    p = principal(**{"kubernetes.io": {"namespace": "payments"}, "a/b": {"c~d": "x"}})
    assert Requirement(claims={"/kubernetes.io/namespace": ["payments"]}).is_satisfied_by(p)
    assert Requirement(claims={"/a~1b/c~0d": ["x"]}).is_satisfied_by(p)
    assert not Requirement(claims={"/kubernetes.io/missing": ["x"]}).is_satisfied_by(p)


@pytest.mark.parametrize("kwargs", [{"scopes_any": [""]}, {"roles_all": [1]}, {"claims": {"t": []}},
                                    {"claims": {"": ["x"]}}])
def test_bad_requirements_are_refused(kwargs):
    with pytest.raises(ValueError):
        Requirement(**kwargs)


def test_requirement_is_immutable_and_comparable():
    r = Requirement(scopes_any=["a"])
    with pytest.raises(AttributeError):
        r.scopes_any = ("b",)
    assert r == Requirement.from_route({"scopes": ["a"]}) and hash(r) == hash(Requirement(scopes_any=["a"]))


# --- explain ------------------------------------------------------------------------------------------------------

@pytest.fixture
def verifier(key):
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), name="corp")], clock=lambda: NOW)


def by_name(checks):
    assert all(isinstance(c, Check) for c in checks)
    return {c.name: c for c in checks}


def test_explain_a_good_token_passes_everything(verifier, key):
    token = mint(key, standard_claims(now=NOW, scope="orders:read"))
    checks = by_name(verifier.explain(token, Requirement(scopes_any=["orders:read"])))
    assert all(c.passed for c in checks.values()), [c for c in checks.values() if not c.passed]
    assert {"signature", "audience", "expiry", "scopes"} <= set(checks)


def test_explain_reports_every_failure_with_its_fix(verifier, key):
    token = mint(key, standard_claims(now=NOW - 4000, audience="billing-api", scope="x"))
    checks = by_name(verifier.explain(token, Requirement(scopes_any=["orders:read"], claims={"tier": ["gold"]})))
    failed = {name for name, c in checks.items() if c.passed is False}
    assert {"audience", "expiry", "scopes", "claim tier"} <= failed
    assert checks["signature"].passed is True
    assert checks["audience"].code == "invalid_audience" and "billing-api" in checks["audience"].detail
    assert checks["expiry"].fix and checks["scopes"].fix
    assert token.split(".")[2] not in repr(checks)
    assert checks["audience"].as_dict()["passed"] is False


def test_explain_continues_past_a_bad_signature_and_unknown_issuer(verifier, key):
    forged = mint(SigningKey.generate("RS256", kid=key.kid), standard_claims(now=NOW))  # the trusted kid, another key
    checks = by_name(verifier.explain(forged))
    assert checks["signature"].passed is False and checks["signature"].code == "bad_signature"
    assert checks["audience"].passed is True
    stranger = mint(key, standard_claims(now=NOW, issuer="https://stranger.example"))
    checks = by_name(verifier.explain(stranger, Requirement(scopes_any=["a"])))
    assert checks["issuer"].passed is False
    assert checks["signature and claim rules"].passed is None
    assert checks["scopes"].passed is None


def test_explain_garbage_never_raises(verifier):
    for token in ("", "a.b", "not a token at all", "eyJhbGciOiJub25lIn0.e30.", 42, "a" * 20000):
        checks = verifier.explain(token)
        assert checks and checks[0].passed is False or any(c.passed is False for c in checks)


# --- ID tokens ----------------------------------------------------------------------------------------------------

@pytest.fixture
def id_verifier(key):
    return Verifier([IssuerConfig(ISSUER, ["spa-client"], jwks=key.jwks(), token_use="id")], clock=lambda: NOW)


def id_token(key, access_token="at-123", audience="spa-client", **extra):
    claims = standard_claims(now=NOW, audience=audience, nonce="n-1",
                             at_hash=access_token_hash(access_token, "RS256"), **extra)
    return mint(key, {k: v for k, v in claims.items() if v is not None}, typ="JWT")


def test_id_token_with_nonce_azp_and_at_hash(id_verifier, key):
    p = id_verifier.verify_id_token(id_token(key, azp="spa-client"), nonce="n-1", access_token="at-123")
    assert p.token_use == "id" and p.subject == "user-123" and p.claims["nonce"] == "n-1"


@pytest.mark.parametrize("kwargs,extra,code", [
    ({"nonce": "other"}, {}, "invalid_nonce"),
    ({"access_token": "at-999"}, {}, "invalid_at_hash"),
    ({"access_token": "at-12\u00e9"}, {}, "invalid_at_hash"),    # not ASCII: cannot be what the issuer hashed
    ({"access_token": b"at-123"}, {}, "invalid_at_hash"),        # bytes, not the token string
    ({"nonce": "n-\ud800"}, {}, "invalid_nonce"),               # a lone surrogate from the caller's session
    ({"client_id": "spa-client"}, {"azp": "another-client"}, "invalid_azp"),
    ({}, {"audience": ["spa-client", "api"]}, "invalid_azp"),
])
def test_id_token_extras_are_enforced(id_verifier, key, kwargs, extra, code):
    with pytest.raises(TokenRejected) as info:
        id_verifier.verify_id_token(id_token(key, **extra), **kwargs)
    assert info.value.code == code


def test_access_token_is_not_an_id_token(id_verifier, key):
    with pytest.raises(TokenRejected) as info:
        id_verifier.verify_id_token(mint(key, standard_claims(now=NOW, audience="spa-client")))
    assert info.value.code == "wrong_token_use"


def test_missing_nonce_when_one_was_sent(id_verifier, key):
    token = mint(key, standard_claims(now=NOW, audience="spa-client", at_hash="x"), typ="JWT")
    with pytest.raises(TokenRejected) as info:
        id_verifier.verify_id_token(token, nonce="n-1")
    assert info.value.code == "invalid_nonce"


def test_at_hash_matches_the_oidc_definition():
    # OpenID Connect Core 3.2.2.9 example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" -> at_hash
    # "77QmUPtjPfzWtF2AnpK9RQ" (RS256, left half of SHA-256).
    assert access_token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"
