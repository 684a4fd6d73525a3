"""Hostile tokens: every one must be refused with the right code, and no error may echo the token or signature.

Checklist: issue 7's attack list, item by item, and where each is tested. "catalogue G" is every entry named "G:..."
in tests/security/hostile_tokens.py: test_catalogued_attack_is_refused_with_its_code runs each through a Verifier
here, and tests/security/test_attack_corpus_authorizers.py through the HTTP API and REST authorizers. test_* names
are tests in tests/security/test_attack*.py. test_checklist_names_only_what_exists keeps the list and the code in step.

- alg none in every casing, with and without signature -> catalogue alg-none
- alg outside the allow-list -> catalogue alg-not-allowed, alg-unknown;
  test_rsa_key_with_alg_member_refuses_other_rsa_algorithms
- RS/ES/EdDSA to HS confusion, the public key as PEM, DER, JWK and SSH text -> catalogue hs-confusion;
  test_hmac_is_refused_even_where_a_caller_allows_it
- null and truncated signatures -> catalogue null-signature, truncated-signature
- ECDSA r=s=0 (P1363 and DER), r or s >= n, DER where P1363 is expected -> catalogue ecdsa-zero, ecdsa-over-order,
  ecdsa-der, eddsa-over-order; test_curve_orders_are_the_orders_of_the_curves
- embedded jwk, jku, x5u, x5c, and no network fetch happens -> catalogue key-in-header;
  test_key_locations_named_by_the_token_are_never_fetched
- kid with path traversal, SQL, shell text, non-string, empty and huge values -> catalogue kid-injection, kid-type
- unknown-kid floods -> test_an_unknown_kid_flood_costs_one_fetch_per_cooldown,
  test_a_concurrent_unknown_kid_flood_shares_one_fetch
- 2 or 4+ segments, empty segments -> catalogue segments
- JSON serialization -> catalogue json-serialization
- whitespace -> catalogue whitespace; test_whitespace_around_a_header_value_is_not_part_of_the_token
- padding -> catalogue padding
- non-base64url characters -> catalogue alphabet
- header not an object -> catalogue header-not-object, claims-not-object
- duplicate members -> catalogue duplicate-members
- unknown crit, b64=false -> catalogue crit, b64
- a JWE where a JWS is expected -> catalogue jwe
- non-UTF-8 JSON -> catalogue non-utf8
- deep nesting -> catalogue nesting
- huge numbers -> catalogue huge-numbers
- exp / nbf / iat missing, strings, floats, far future, at the leeway boundary -> catalogue time-claims;
  test_exp_edges, test_nbf_edges, test_iat_edges, test_float_times_are_accepted_like_integers,
  test_nbf_and_iat_are_optional_unless_a_maximum_age_needs_iat, test_far_future_exp_is_bounded_only_by_a_maximum_age,
  test_cached_token_expires_on_the_clock, test_real_clock_default_refuses_an_old_token
- iss prefix, suffix and trailing-slash variants -> catalogue iss-variants;
  test_cross_tenant_issuer_and_tid_mismatch_is_refused, test_multi_tenant_refuses_non_guid_tenants,
  test_multi_tenant_requires_tid, test_single_tenant_issuer_refuses_other_tenants
- aud missing, wrong type, untrusted extras -> catalogue aud;
  test_audience_list_with_the_trusted_one_among_extras_is_accepted
- ID token presented as access token and the reverse -> catalogue id-as-access, typ;
  test_access_token_where_an_id_token_is_required_is_refused, test_typ_at_jwt_token_is_not_an_id_token,
  test_keycloak_refresh_and_id_tokens_are_not_access_tokens, test_entra_id_token_is_not_an_access_token
- Cognito id vs access token_use -> test_cognito_id_token_is_not_an_access_token,
  test_cognito_access_token_is_not_an_id_token, test_cognito_token_use_must_be_access_or_id
- scope of the wrong type -> catalogue scope-type
- oversized tokens -> catalogue oversize; test_size_limits_are_exact
- (beyond the list) a token altered after signing -> catalogue altered; test_tenant_restriction_by_route_claims
- (issue 18) weak keys in a JWKS: Ed25519 of small order, non-canonical, a prime RSA modulus, and a refused key named
  by a token's kid -> test_small_order_ed25519_key_is_refused_and_cannot_verify_a_forgery,
  test_non_canonical_ed25519_encoding_is_refused, test_rsa_key_with_a_prime_modulus_is_refused_and_cannot_verify_a_forgery,
  test_a_token_naming_a_refused_1024_bit_key_says_the_key_exists_and_why
- (issue 18) guards' identity headers: deep nesting, non-ASCII, strict JSON, a kid or ARN with a final newline ->
  test_alb_deeply_nested_json_is_refused_not_raised, test_alb_non_ascii_payload_segment_is_refused_not_raised,
  test_alb_kid_with_a_trailing_newline_never_reaches_the_key_endpoint,
  test_alb_header_json_is_read_as_strictly_as_a_token_header, test_gcp_userinfo_is_read_strictly,
  test_easyauth_client_principal_is_read_strictly
- (issue 18) one string where a collection of names belongs -> test_issuers_given_as_one_string_is_refused_not_matched_by_substring,
  test_verify_jws_algorithms_given_as_one_string_is_refused, test_gcp_guard_issuers_given_as_one_string_is_refused
- (issue 18) an ID token issued for another client of the issuer -> test_id_token_for_another_client_is_refused_without_azp,
  test_id_token_naming_the_client_only_in_azp_is_refused
- (issue 18) policy values a gateway would evaluate, split or widen (APIM `@(`/`@{` expressions, NGINX `;` and quotes,
  a comma in x-google-audiences, Istio `*` wildcards) -> test_apim_refuses_policy_values_it_would_evaluate_as_expressions,
  test_nginx_refuses_a_path_segment_that_would_end_or_quote_a_directive,
  test_openapi_refuses_an_audience_the_gateway_would_split_at_its_comma,
  test_istio_never_writes_a_scope_with_a_star_as_a_native_condition, test_istio_refuses_a_path_with_a_literal_star
- (issue 18) whole-string checks that let a final newline through (`$`) -> test_no_pattern_in_the_code_uses_dollar_as_the_end_of_the_string,
  test_a_scope_or_role_ending_in_a_newline_is_refused, test_a_route_path_ending_in_a_newline_is_refused,
  test_an_issuer_name_ending_in_a_newline_is_refused, test_a_cognito_issuer_ending_in_a_newline_is_refused
"""
from __future__ import annotations

import ast
import hashlib
import hmac
import json
import re
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from lambdas.validation import IssuerConfig, Requirement, StaticKeySource, TokenRejected, Verifier, verify_jws
from lambdas.validation.compact import MAX_HEADER_CHARS, MAX_KID_CHARS, MAX_TOKEN_CHARS
from tests.security.hostile_tokens import (ALGORITHMS, ATTACKS, CURVE_ORDERS, LEEWAY, Forge, Keyring, groups,
                                           issuer_config)
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, mint, standard_claims

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return Keyring.generate()


@pytest.fixture(scope="module")
def rsa_key(keys) -> SigningKey:
    return keys.rsa


@pytest.fixture
def forge(keys) -> Forge:
    return Forge(keys, NOW)


@pytest.fixture
def verifier(keys) -> Verifier:
    return Verifier([issuer_config(keys)], clock=lambda: NOW)


def claims(**overrides):
    return standard_claims(now=NOW, **overrides)


def refused(call, token, code, **kwargs) -> TokenRejected:
    """`call(token, **kwargs)` raises TokenRejected with `code`, and nothing it says contains the token or its
    signature."""
    with pytest.raises(TokenRejected) as info:
        call(token, **kwargs)
    exc = info.value
    assert exc.code == code, f"expected {code}, got {exc.code}: {exc.message}"
    text = json.dumps(exc.as_dict(), default=str) + str(exc) + repr(exc)
    if isinstance(token, str) and len(token) > 16:
        assert token not in text
        signature = token.rsplit(".", 1)[-1]
        if len(signature) > 16:
            assert signature not in text, "a rejection must never echo the signature"
    return exc


def rejected(verifier, token, code, **kwargs) -> TokenRejected:
    return refused(verifier.verify, token, code, **kwargs)


# --- the catalogue ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key_name", ["rsa", "p256", "p384", "p521", "ed"])
def test_the_forge_mints_tokens_the_issuer_accepts(verifier, forge, keys, key_name):
    """The control: without its attack every catalogue token would be accepted, so each refusal is the attack's."""
    principal = verifier.verify(forge.good(getattr(keys, key_name)), scopes=("orders:read",))
    assert principal.subject == "user-123"


@pytest.mark.parametrize("name", ATTACKS)
def test_catalogued_attack_is_refused_with_its_code(verifier, forge, name):
    exc = rejected(verifier, ATTACKS[name].build(forge), ATTACKS[name].code)
    assert exc.status == 401


def test_curve_orders_are_the_orders_of_the_curves():
    """The catalogue's n: n - 1 is the largest private scalar (its point is -G) and n itself is refused."""
    curves = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
    for alg, n in CURVE_ORDERS.items():
        generator = ec.derive_private_key(1, curves[alg]()).public_key().public_numbers()
        minus_generator = ec.derive_private_key(n - 1, curves[alg]()).public_key().public_numbers()
        assert minus_generator.x == generator.x and minus_generator.y != generator.y
        with pytest.raises(ValueError):
            ec.derive_private_key(n, curves[alg]())


# --- algorithms -------------------------------------------------------------------------------------------------------

def test_hmac_is_refused_even_where_a_caller_allows_it(keys, forge):
    """HS* is refused by the header rules before any allow-list or key is consulted, and cannot be configured."""
    signing_input = f"{b64url_json(forge.header(alg='HS256'))}.{b64url_json(forge.claims())}"
    secret = json.dumps(keys.rsa.jwk()).encode()
    token = f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"
    exc = refused(lambda t: verify_jws(t, StaticKeySource.from_jwks(keys.jwks()), algorithms=["HS256", "RS256"]),
                  token, "unsupported_alg")
    assert "HMAC" in exc.hint
    with pytest.raises(ValueError, match="HMAC"):
        IssuerConfig(ISSUER, [AUDIENCE], jwks=keys.jwks(), algorithms=("HS256",))
    oct_key = {"kty": "oct", "k": b64url(secret), "kid": "legit", "alg": "HS256"}
    assert not StaticKeySource.from_jwks({"keys": [oct_key]}).key_set.keys  # a symmetric JWK is never a key


def test_rsa_key_with_alg_member_refuses_other_rsa_algorithms(rsa_key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks(), algorithms=("RS256", "PS256"))],
                 clock=lambda: NOW)
    rejected(v, mint(rsa_key, claims(), alg="PS256"), "alg_not_allowed")


# --- size limits, exactly ---------------------------------------------------------------------------------------------

def test_size_limits_are_exact(verifier, forge):
    at_limit = forge.token_of_length(MAX_TOKEN_CHARS)
    assert len(at_limit) == MAX_TOKEN_CHARS
    verifier.verify(at_limit)
    rejected(verifier, forge.token_of_length(MAX_TOKEN_CHARS + 1), "token_too_large")
    header = forge.header_of_length(MAX_HEADER_CHARS)
    verifier.verify(forge.signed(forge.keys.rsa, header, forge.claims()))
    # base64url cannot spell MAX_HEADER_CHARS + 1 characters (4k + 1); + 2 is the shortest header over the limit.
    rejected(verifier, forge.signed(forge.keys.rsa, forge.header_of_length(MAX_HEADER_CHARS + 2), forge.claims()),
             "token_too_large")
    long_kid = SigningKey.generate("ES256", kid="k" * MAX_KID_CHARS)
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=long_kid.jwks(), algorithms=("ES256",))], clock=lambda: NOW)
    v.verify(forge.good(long_kid))
    rejected(v, forge.signed(long_kid, forge.header(long_kid, kid="k" * (MAX_KID_CHARS + 1)), forge.claims()),
             "malformed")


# --- the HTTP boundary ------------------------------------------------------------------------------------------------

def test_whitespace_around_a_header_value_is_not_part_of_the_token(verifier, forge):
    """The Verifier refuses a token with whitespace around it (catalogue whitespace); an authorizer reads the token
    from a header, whose value never carries that whitespace (RFC 9110 5.5), so it trims it, and what remains is the
    good token: the only catalogue entries test_attack_corpus_authorizers.py leaves out are these."""
    from lambdas.validation.route_decision import bearer_token
    trimmed = [name for name, attack in ATTACKS.items() if attack.trimmed_by_http]
    assert trimmed and all(name.startswith("whitespace:") for name in trimmed)
    for name in trimmed:
        token = ATTACKS[name].build(forge)
        bare = bearer_token("Bearer " + token)
        assert bare == token.strip() != token
        verifier.verify(bare)


# --- token confusion --------------------------------------------------------------------------------------------------

def test_access_token_where_an_id_token_is_required_is_refused(verifier, forge, keys):
    refused(verifier.verify_id_token, forge.good(), "wrong_token_use")  # typ at+jwt (RFC 9068)
    plain = forge.signed(keys.rsa, forge.header(typ="JWT"), forge.claims())  # no nonce/at_hash/c_hash: access
    refused(verifier.verify_id_token, plain, "wrong_token_use")
    id_token = forge.signed(keys.rsa, forge.header(typ="JWT"), forge.claims(nonce="n-1"))
    assert verifier.verify_id_token(id_token, nonce="n-1").token_use == "id"


def test_typ_at_jwt_token_is_not_an_id_token(rsa_key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks(), token_use="id")], clock=lambda: NOW)
    rejected(v, mint(rsa_key, claims()), "wrong_token_use")


COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"


def cognito(rsa_key, token_use="access") -> Verifier:
    return Verifier([IssuerConfig(COGNITO_ISSUER, ["client-1"], jwks=rsa_key.jwks(), profile="cognito",
                                  token_use=token_use)], clock=lambda: NOW)


def cognito_token(rsa_key, **claim_values) -> str:
    return mint(rsa_key, claims(issuer=COGNITO_ISSUER, **claim_values), typ=None)


def test_cognito_id_token_is_not_an_access_token(rsa_key):
    v = cognito(rsa_key)
    rejected(v, cognito_token(rsa_key, audience="client-1", token_use="id"), "wrong_token_use")
    access = cognito_token(rsa_key, audience=None, token_use="access", client_id="client-1")
    assert v.verify(access).client_id == "client-1"


def test_cognito_access_token_is_not_an_id_token(rsa_key):
    v = cognito(rsa_key, token_use="id")
    rejected(v, cognito_token(rsa_key, audience=None, token_use="access", client_id="client-1"), "wrong_token_use")
    assert v.verify(cognito_token(rsa_key, audience="client-1", token_use="id")).token_use == "id"


@pytest.mark.parametrize("token_use,code", [(None, "missing_claim"), ("refresh", "wrong_token_use"),
                                            ("ACCESS", "wrong_token_use"), ("access ", "wrong_token_use"),
                                            (1, "wrong_token_use"), (["access"], "wrong_token_use"),
                                            ({"use": "access"}, "wrong_token_use")])
def test_cognito_token_use_must_be_access_or_id(rsa_key, token_use, code):
    token = cognito_token(rsa_key, audience=None, client_id="client-1", token_use=token_use)
    rejected(cognito(rsa_key), token, code)


def test_keycloak_refresh_and_id_tokens_are_not_access_tokens(rsa_key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks(), profile="keycloak")], clock=lambda: NOW)
    rejected(v, mint(rsa_key, claims(typ="ID"), typ="JWT"), "wrong_token_use")
    rejected(v, mint(rsa_key, claims(typ="Refresh"), typ="JWT"), "wrong_token_use")


def test_entra_id_token_is_not_an_access_token(rsa_key):
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    issuer = f"https://login.microsoftonline.com/{tenant}/v2.0"
    v = Verifier([IssuerConfig(issuer, ["api://orders"], jwks=rsa_key.jwks(), profile="entra")], clock=lambda: NOW)
    id_token = mint(rsa_key, claims(issuer=issuer, audience="api://orders", tid=tenant, nonce="n"), typ="JWT")
    rejected(v, id_token, "wrong_token_use")


# --- audience ---------------------------------------------------------------------------------------------------------

def test_audience_list_with_the_trusted_one_among_extras_is_accepted(verifier, forge, keys):
    """aud is any-of (RFC 7519 4.1.3): a token for several APIs, one of them this one, is this API's token. Accepted
    on purpose; an ID token with several audiences must then name its client in azp (OIDC Core 3.1.3.7)."""
    audiences = ["billing-api", AUDIENCE, "https://attacker.example"]
    principal = verifier.verify(forge.good(audience=audiences))
    assert principal.audience == tuple(audiences)
    id_token = forge.signed(keys.rsa, forge.header(typ="JWT"), forge.claims(audience=audiences, nonce="n"))
    assert refused(verifier.verify_id_token, id_token, "invalid_azp").found is None


# --- cross-tenant Entra -----------------------------------------------------------------------------------------------

TENANT_A = "11111111-1111-1111-1111-111111111111"
TENANT_B = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def multi_tenant(rsa_key):
    config = IssuerConfig("https://login.microsoftonline.com/{tenantid}/v2.0", ["api://orders"],
                          jwks=rsa_key.jwks(), profile="entra", name="entra-any")
    return Verifier([config], clock=lambda: NOW)


def entra_access(key, iss_tenant, tid, **extra):
    return mint(key, claims(issuer=f"https://login.microsoftonline.com/{iss_tenant}/v2.0", audience="api://orders",
                            tid=tid, azp="client-app", azpacr="0", **extra), typ="JWT")


def test_multi_tenant_accepts_a_consistent_token(multi_tenant, rsa_key):
    principal = multi_tenant.verify(entra_access(rsa_key, TENANT_A, TENANT_A))
    assert principal.tenant == TENANT_A


def test_cross_tenant_issuer_and_tid_mismatch_is_refused(multi_tenant, rsa_key):
    rejected(multi_tenant, entra_access(rsa_key, TENANT_A, TENANT_B), "unknown_issuer")


@pytest.mark.parametrize("tid", ["common", "organizations", "x" * 36, "", TENANT_A.upper() + "/"])
def test_multi_tenant_refuses_non_guid_tenants(multi_tenant, rsa_key, tid):
    rejected(multi_tenant, entra_access(rsa_key, tid, tid), "unknown_issuer")


def test_multi_tenant_requires_tid(multi_tenant, rsa_key):
    token = mint(rsa_key, claims(issuer=f"https://login.microsoftonline.com/{TENANT_A}/v2.0",
                                 audience="api://orders", azpacr="0"), typ="JWT")
    rejected(multi_tenant, token, "missing_claim")


def test_single_tenant_issuer_refuses_other_tenants(rsa_key):
    v = Verifier([IssuerConfig(f"https://login.microsoftonline.com/{TENANT_A}/v2.0", ["api://orders"],
                               jwks=rsa_key.jwks(), profile="entra")], clock=lambda: NOW)
    rejected(v, entra_access(rsa_key, TENANT_B, TENANT_B), "unknown_issuer")


def test_tenant_restriction_by_route_claims(multi_tenant, rsa_key):
    only_a = Requirement(claims={"tid": [TENANT_A]})
    multi_tenant.verify(entra_access(rsa_key, TENANT_A, TENANT_A), requirement=only_a)
    exc = rejected(multi_tenant, entra_access(rsa_key, TENANT_B, TENANT_B), "claim_mismatch", requirement=only_a)
    assert exc.status == 403


# --- time edges -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exp_offset,ok", [(-LEEWAY - 1, False), (-LEEWAY, False), (-LEEWAY + 1, True), (0, True)])
def test_exp_edges(verifier, rsa_key, exp_offset, ok):
    token = mint(rsa_key, claims(exp=NOW + exp_offset, iat=NOW - 600, nbf=NOW - 600))
    if ok:
        verifier.verify(token)
    else:
        rejected(verifier, token, "expired")


@pytest.mark.parametrize("nbf_offset,ok", [(LEEWAY, True), (LEEWAY + 1, False)])
def test_nbf_edges(verifier, rsa_key, nbf_offset, ok):
    token = mint(rsa_key, claims(nbf=NOW + nbf_offset, iat=NOW))
    if ok:
        verifier.verify(token)
    else:
        rejected(verifier, token, "not_yet_valid")


@pytest.mark.parametrize("iat_offset,ok", [(LEEWAY, True), (LEEWAY + 1, False)])
def test_iat_edges(verifier, rsa_key, iat_offset, ok):
    token = mint(rsa_key, claims(iat=NOW + iat_offset, nbf=None))
    if ok:
        verifier.verify(token)
    else:
        rejected(verifier, token, "issued_in_future")


def test_float_times_are_accepted_like_integers(verifier, rsa_key):
    verifier.verify(mint(rsa_key, claims(exp=NOW + 10.5, iat=NOW - 0.5, nbf=NOW - 0.5)))
    rejected(verifier, mint(rsa_key, claims(exp=NOW - 60.5)), "expired")
    rejected(verifier, mint(rsa_key, claims(nbf=NOW + 60.5)), "not_yet_valid")


def test_nbf_and_iat_are_optional_unless_a_maximum_age_needs_iat(verifier, forge, keys):
    token = forge.good(nbf=None, iat=None)
    verifier.verify(token)
    bounded = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=keys.jwks(), algorithms=ALGORITHMS,
                                     max_token_age_seconds=3600)], clock=lambda: NOW)
    rejected(bounded, token, "missing_claim")


@pytest.mark.parametrize("exp", [253402300799, 2 ** 53 - 1])  # 9999-12-31T23:59:59Z; the largest NumericDate taken
def test_far_future_exp_is_bounded_only_by_a_maximum_age(forge, keys, exp):
    """How long its tokens live is the issuer's to decide; a far-future exp is accepted unless the issuer is given a
    maximum token age, which then bounds the token (also when it sits in the verified-token cache). An exp at or
    beyond 2**53 is malformed (catalogue huge-numbers)."""
    now = [NOW]
    token = forge.good(exp=exp)
    assert Verifier([issuer_config(keys)], clock=lambda: now[0]).verify(token).expires_at == exp
    bounded = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=keys.jwks(), algorithms=ALGORITHMS,
                                     max_token_age_seconds=3600)], clock=lambda: now[0])
    bounded.verify(token)
    now[0] = NOW + 3600 + LEEWAY
    bounded.verify(token)  # from the cache, at the bound
    now[0] += 1
    rejected(bounded, token, "token_too_old")


def test_cached_token_expires_on_the_clock(rsa_key):
    now = [NOW]
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks())], clock=lambda: now[0])
    token = mint(rsa_key, claims(lifetime=100))
    v.verify(token)
    now[0] = NOW + 100 + LEEWAY - 1
    v.verify(token)  # served from the cache, still inside exp + leeway
    now[0] = NOW + 100 + LEEWAY
    rejected(v, token, "expired")
    rejected(v, token, "expired")


def test_real_clock_default_refuses_an_old_token(rsa_key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks())])
    rejected(v, mint(rsa_key, standard_claims(now=time.time() - 3600, lifetime=60)), "expired")


# --- the checklist above ----------------------------------------------------------------------------------------------

def checklist_items(doc: str) -> list[str]:
    """The checklist's items, each with its continuation lines joined."""
    items: list[str] = []
    for line in doc.split("Checklist:", 1)[1].splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def test_checklist_names_only_what_exists():
    items = checklist_items(__doc__)
    assert len(items) >= 25
    security = Path(__file__).parent
    tests = {node.name for path in security.glob("test_attack*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    named_groups: set[str] = set()
    for item in items:
        assert " -> " in item, item
        covered_by = item.split(" -> ", 1)[1]
        group_names = re.findall(r"(?:catalogue |, )([a-z0-9-]+)(?=[,;]|$)", covered_by)
        test_names = re.findall(r"\btest_\w+", covered_by)
        assert group_names or test_names, f"nothing covers: {item}"
        assert set(test_names) <= tests, f"no such test: {sorted(set(test_names) - tests)}"
        named_groups.update(group_names)
    assert named_groups == groups(), (f"not in the catalogue: {sorted(named_groups - groups())}; "
                                      f"not in the checklist: {sorted(groups() - named_groups)}")
