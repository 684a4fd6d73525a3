"""Verifier claim rules, issuer configuration, the verified-token cache and route-table construction."""
from __future__ import annotations

import pytest

from lambdas.validation import IssuerConfig, Principal, Requirement, TokenRejected, Verifier
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint, standard_claims

NOW = 1_800_000_000


def make(key, clock=lambda: NOW, **config):
    config.setdefault("jwks", key.jwks())
    return Verifier([IssuerConfig(config.pop("issuer", ISSUER), config.pop("audiences", [AUDIENCE]), **config)],
                    clock=clock)


def claims(**overrides):
    return standard_claims(now=NOW, **overrides)


def code_of(verifier, token, **kwargs):
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token, **kwargs)
    return info.value.code


def test_a_good_token_gives_a_principal(key):
    principal = make(key).verify(mint(key, claims(scope="a b", roles=["admin"], groups=["eng"], client_id="cli")))
    assert isinstance(principal, Principal)
    assert principal.subject == "user-123" and principal.issuer == ISSUER and principal.issuer_name == ISSUER
    assert principal.scopes == ("a", "b") and principal.roles == ("admin",) and principal.groups == ("eng",)
    assert principal.client_id == "cli" and principal.audience == (AUDIENCE,) and principal.token_use == "access"
    assert principal.expires_at == NOW + 300 and principal.claims["scope"] == "a b"
    with pytest.raises(TypeError):
        principal.claims["scope"] = "admin"  # read-only view: a cached principal cannot be poisoned
    with pytest.raises(AttributeError):
        principal.subject = "root"
    assert principal.as_dict()["scopes"] == ["a", "b"]


def test_issuer_must_match_exactly(key):
    v = make(key)
    for iss in (ISSUER + "/", ISSUER.upper(), ISSUER + " ", "http://idp.example.test"):
        assert code_of(v, mint(key, claims(issuer=iss))) == "unknown_issuer"
    assert code_of(v, mint(key, claims(issuer=None))) == "missing_claim"
    assert code_of(v, mint(key, claims(issuer=["x"]))) == "malformed"


@pytest.mark.parametrize("aud,ok", [(AUDIENCE, True), ([AUDIENCE], True), (["x", AUDIENCE], True), ("x", False),
                                    (["x", "y"], False), ([], False), (None, False), (7, False), ([AUDIENCE, 7], False)])
def test_audience_is_any_of(key, aud, ok):
    token = mint(key, claims(audience=aud))
    if ok:
        make(key).verify(token)
    else:
        assert code_of(make(key), token) in {"invalid_audience", "missing_claim", "malformed"}


def test_audience_rejection_explains_what_to_request(key):
    with pytest.raises(TokenRejected) as info:
        make(key).verify(mint(key, claims(audience="billing-api")))
    exc = info.value
    assert exc.code == "invalid_audience" and exc.found == ["billing-api"] and exc.expected == [AUDIENCE]
    assert "billing-api" in exc.message and AUDIENCE in exc.hint


def test_no_configured_audience_accepts_nothing(key):
    v = make(key, audiences=[])
    assert code_of(v, mint(key, claims())) == "invalid_audience"


def test_optional_exp_and_required_claims(key):
    v = make(key, require_exp=False, required_claims=["tenant"])
    assert code_of(v, mint(key, claims(exp=None))) == "missing_claim"
    principal = v.verify(mint(key, claims(exp=None, tenant="acme")))
    assert principal.expires_at == 0


def test_max_token_age(key):
    v = make(key, max_token_age_seconds=600)
    v.verify(mint(key, standard_claims(now=NOW - 600, lifetime=3600)))
    assert code_of(v, mint(key, standard_claims(now=NOW - 661, lifetime=3600))) == "token_too_old"
    assert code_of(v, mint(key, claims(iat=None, lifetime=3600))) == "missing_claim"


def test_subject_is_required(key):
    assert code_of(make(key), mint(key, claims(subject=None))) == "missing_claim"
    assert code_of(make(key), mint(key, claims(subject=""))) == "malformed"
    assert code_of(make(key), mint(key, claims(subject=12))) == "malformed"


def test_scope_claim_of_wrong_type_is_malformed(key):
    assert code_of(make(key), mint(key, claims(scope={"a": 1}))) == "malformed"
    assert code_of(make(key), mint(key, claims(roles=[1, 2]))) == "malformed"


def test_token_use_none_accepts_both(key):
    v = make(key, token_use=None)
    assert v.verify(mint(key, claims(nonce="n"), typ="JWT")).token_use == "id"
    assert v.verify(mint(key, claims())).token_use == "access"


def test_authorization_keyword_arguments(key):
    v = make(key)
    token = mint(key, claims(scope="orders:read orders:write", roles=["admin"], groups=["eng", "ops"], tier="gold"))
    v.verify(token, scopes=("orders:read", "nope"), scopes_all=("orders:read", "orders:write"), roles=["admin"],
             groups_all=["eng", "ops"], claims={"tier": ["gold", "platinum"]})
    assert code_of(v, token, scopes=["orders:delete"]) == "insufficient_scope"
    assert code_of(v, token, scopes_all=["orders:read", "orders:delete"]) == "insufficient_scope"
    assert code_of(v, token, roles=["root"]) == "insufficient_role"
    assert code_of(v, token, groups=["hr"]) == "insufficient_group"
    assert code_of(v, token, claims={"tier": ["silver"]}) == "claim_mismatch"
    assert code_of(v, token, requirement=Requirement(roles_all=["admin", "root"])) == "insufficient_role"


def test_issuers_filter_by_name(key):
    other = SigningKey.generate("ES256", kid="k2")
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), name="corp"),
                  IssuerConfig("https://partner.example", [AUDIENCE], jwks=other.jwks(), name="partner",
                               algorithms=["ES256"])], clock=lambda: NOW)
    corp_token = mint(key, claims())
    assert v.verify(corp_token, issuers=["corp"]).issuer_name == "corp"
    assert code_of(v, corp_token, issuers=["partner"]) == "unknown_issuer"  # also on a cache hit
    partner_token = mint(other, claims(issuer="https://partner.example"))
    assert v.verify(partner_token).issuer_name == "partner"


def test_two_entries_for_one_issuer_pick_the_matching_audience(key):
    v = Verifier([IssuerConfig(ISSUER, ["orders-api"], jwks=key.jwks(), name="orders"),
                  IssuerConfig(ISSUER, ["billing-api"], jwks=key.jwks(), name="billing")], clock=lambda: NOW)
    assert v.verify(mint(key, claims(audience="billing-api"))).issuer_name == "billing"
    assert v.verify(mint(key, claims(audience="orders-api"))).issuer_name == "orders"
    assert code_of(v, mint(key, claims(audience="billing-api")), issuers=["orders"]) == "invalid_audience"


def test_verified_token_cache_is_bounded_and_rechecks_authorization(key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks())], clock=lambda: NOW, verified_cache_size=3)
    tokens = [mint(key, claims(scope="s")) for _ in range(5)]
    for token in tokens:
        v.verify(token)
    assert len(v._cache) == 3
    assert v.verify(tokens[-1]) is v.verify(tokens[-1])  # a hit returns the remembered principal
    assert code_of(v, tokens[-1], scopes=["other"]) == "insufficient_scope"


def test_verified_token_cache_evicts_the_oldest_first_and_stays_bounded(key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks())], clock=lambda: NOW, verified_cache_size=16)
    tokens = [mint(key, claims(scope="s")) for _ in range(40)]
    for token in tokens:
        v.verify(token)
        assert len(v._cache) <= 16
    assert tokens[-1] in v._cache and tokens[0] not in v._cache
    assert list(v._cache) == [t for t in tokens if t in v._cache]  # insertion order kept: the oldest go first
    assert len(v._cache) >= 16 - 16 // 8  # at most an eighth is dropped at once


def test_cache_disabled(key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks())], clock=lambda: NOW, verified_cache_size=0)
    token = mint(key, claims())
    assert v.verify(token) is not v.verify(token)


def test_cache_respects_max_token_age(key):
    now = [NOW]
    v = make(key, clock=lambda: now[0], max_token_age_seconds=100)
    token = mint(key, claims(lifetime=3600))
    v.verify(token)
    now[0] = NOW + 161
    assert code_of(v, token) == "token_too_old"


@pytest.mark.parametrize("kwargs,message", [
    ({"issuer": ""}, "issuer"),
    ({"profile": "ldap"}, "unknown profile"),
    ({"algorithms": ["HS256"]}, "none and HMAC"),
    ({"algorithms": ["none"]}, "none and HMAC"),
    ({"algorithms": []}, "at least one"),
    ({"leeway_seconds": 3600}, "leeway_seconds"),
    ({"leeway_seconds": -1}, "leeway_seconds"),
    ({"max_token_age_seconds": 0}, "max_token_age_seconds"),
    ({"token_use": "refresh"}, "token_use"),
    ({"jwks": {"keys": []}, "jwks_uri": "https://x"}, "at most one"),
    ({"audiences": [""]}, "non-empty"),
    ({"issuer": "https://a/{tenantid}/v2.0", "jwks": {"keys": []}}, "entra"),
    ({"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0", "profile": "entra"}, "jwks_uri"),
    ({"issuer": "https://example.com/pool", "profile": "cognito"}, "cognito"),
])
def test_issuer_config_refuses_bad_settings(kwargs, message):
    kwargs.setdefault("issuer", ISSUER)
    with pytest.raises(ValueError, match=message):
        IssuerConfig(**kwargs)


def test_issuer_config_normalises():
    c = IssuerConfig(ISSUER, "orders-api", algorithms="RS256, ES256", profile="firebase")
    assert c.audiences == ("orders-api",) and c.algorithms == ("RS256", "ES256") and c.profile == "google"
    assert c.token_use == "id" and IssuerConfig(ISSUER).token_use == "access"
    pool = IssuerConfig("eu-west-1_AbC123", ["c"], profile="cognito")
    assert pool.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    assert pool.accepted_issuers[1] == "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"


def test_verifier_refuses_duplicate_names_and_empty_lists(key):
    with pytest.raises(ValueError, match="at least one"):
        Verifier([])
    with pytest.raises(ValueError, match="named"):
        Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks()), IssuerConfig(ISSUER, ["b"], jwks=key.jwks())])


def test_verifier_of_a_route_table(key, tmp_path):
    import json

    from lambdas.validation.route_table import RouteTable, RouteTableError
    jwks_file = tmp_path / "corp.jwks.json"
    jwks_file.write_text(json.dumps(key.jwks()))
    table = {"format": "authgate.routes/v1", "issuers": {
        "corp": {"issuer": ISSUER, "audiences": [AUDIENCE], "profile": "generic", "algorithms": ["RS256"],
                 "jwks_uri": None, "jwks": key.jwks(), "token_use": "access", "leeway_seconds": 30,
                 "max_token_age_seconds": None, "allow_insecure_http": False},
        "filed": {"issuer": "https://filed.example", "audiences": [AUDIENCE], "jwks_file": str(jwks_file),
                  "token_use": None}}, "apis": {}}
    v = RouteTable.load(table).verifier(clock=lambda: NOW)
    assert v.verify(mint(key, claims())).issuer_name == "corp"
    assert v.verify(mint(key, claims(issuer="https://filed.example"))).issuer_name == "filed"
    assert {c.display_name: c.token_use for c in v.issuers} == {"corp": "access", "filed": None}
    with pytest.raises(RouteTableError, match="issuers must be a JSON object"):
        RouteTable.load({"format": "authgate.routes/v1", "apis": {}})


def test_remote_key_sources_are_shared_and_lazy():
    v = Verifier([IssuerConfig("https://a.example", ["x"], jwks_uri="https://keys.example/jwks", name="a"),
                  IssuerConfig("https://b.example", ["y"], jwks_uri="https://keys.example/jwks", name="b"),
                  IssuerConfig("https://c.example", ["z"], name="c")])
    assert v.key_source("a") is v.key_source("b")
    assert type(v.key_source("c")).__name__ == "DiscoveredKeySource"
    with pytest.raises(ValueError):
        Verifier([IssuerConfig("https://a.example", ["x"], jwks_uri="http://keys.example/jwks")])


def test_check_signature_only_ignores_claims(key):
    v = make(key)
    expired = mint(key, claims(lifetime=-1000, audience="someone-else"))
    assert v.check_signature(expired)["kid"] == key.kid
    head, body, sig = expired.split(".")
    with pytest.raises(TokenRejected) as info:
        v.check_signature(f"{head}.{mint(key, claims(sub='x')).split('.')[1]}.{sig}")
    assert info.value.code == "bad_signature"


def test_bytes_tokens_are_accepted(key):
    assert make(key).verify(mint(key, claims()).encode()).subject == "user-123"
    assert code_of(make(key), 12345) == "malformed"
    assert code_of(make(key), None) == "malformed"


def test_every_code_raised_is_documented():
    import re
    from pathlib import Path

    from lambdas.validation.errors import AUTHORIZATION_CODES, CODES
    source = "".join(p.read_text() for p in Path("lambdas").rglob("*.py"))
    raised = set(re.findall(r'TokenRejected\(\s*"([a-z_]+)"', source))
    assert raised <= set(CODES), raised - set(CODES)
    assert AUTHORIZATION_CODES <= set(CODES)


def test_scopes_only_verify_accepts_any_of_and_names_what_was_missing(key):
    v = make(key)
    token = mint(key, claims(scope="orders:read"))
    for _ in range(2):  # the second time from the cached scope set
        assert v.verify(token, ("orders:write", "orders:read")).scopes == ("orders:read",)
        with pytest.raises(TokenRejected) as refused:
            v.verify(token, ("orders:write", "admin"))
        assert refused.value.code == "insufficient_scope" and refused.value.expected == ["admin", "orders:write"]
    with pytest.raises(ValueError, match="non-empty strings"):
        v.verify(token, ("",))  # the names are still checked when the scope set is first built


def test_accepted_audiences_are_shared_tuples_and_other_shapes_take_the_full_check(key):
    v = make(key, audiences=[AUDIENCE, "other-api"])
    one = v.verify(mint(key, claims(audience="other-api")))
    two = v.verify(mint(key, claims(audience="other-api")))
    assert one.audience == ("other-api",) and one.audience is two.audience
    assert v.verify(mint(key, claims(audience=["x", AUDIENCE]))).audience == ("x", AUDIENCE)
    assert code_of(v, mint(key, claims(audience="x"))) == "invalid_audience"
