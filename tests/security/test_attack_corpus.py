"""Hostile tokens: every one must be refused with the right code, and no error may echo the token or signature."""
from __future__ import annotations

import base64
import json
import time

import pytest

from lambdas.validation import IssuerConfig, Requirement, TokenRejected, Verifier
from lambdas.validation.compact import MAX_HEADER_CHARS, MAX_TOKEN_CHARS
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, mint, standard_claims

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def rsa_key():
    return SigningKey.generate("RS256", kid="legit")


@pytest.fixture(scope="module")
def attacker_key():
    return SigningKey.generate("RS256", kid="legit")  # same kid, different key


@pytest.fixture
def verifier(rsa_key):
    ec = SigningKey.generate("ES256", kid="ec-key")
    jwks = {"keys": [rsa_key.jwk(), ec.jwk()]}
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=jwks, algorithms=("RS256", "ES256"))],
                    clock=lambda: NOW)


def claims(**overrides):
    return standard_claims(now=NOW, **overrides)


def rejected(verifier, token, code, **kwargs):
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token, **kwargs)
    exc = info.value
    assert exc.code == code, f"expected {code}, got {exc.code}: {exc.message}"
    text = json.dumps(exc.as_dict(), default=str) + str(exc) + repr(exc)
    if isinstance(token, str) and token.count(".") >= 2:
        assert token not in text
        signature = token.rsplit(".", 1)[1]
        if len(signature) > 16:
            assert signature not in text, "a rejection must never echo the signature"
    return exc


def forge(header: dict, body, signature: bytes = b"sig") -> str:
    payload = b64url_json(body) if not isinstance(body, (bytes, str)) else b64url(
        body.encode() if isinstance(body, str) else body)
    return f"{b64url_json(header)}.{payload}.{b64url(signature)}"


def signed_raw(key: SigningKey, header_json: str, payload_json: str) -> str:
    signing_input = f"{b64url(header_json.encode())}.{b64url(payload_json.encode())}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


# --- algorithm attacks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"x"])
def test_alg_none_is_refused(verifier, alg, signature):
    token = forge({"alg": alg, "kid": "legit"}, claims(), signature)
    if not signature:
        token = token.rstrip(".") + "."
    exc = rejected(verifier, token, "unsupported_alg" if signature else "malformed")
    assert exc.status == 401


@pytest.mark.parametrize("secret_form", ["pem", "jwk_n", "jwk_json"])
def test_hs256_signed_with_the_public_key_is_refused(verifier, rsa_key, secret_form):
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization
    public = rsa_key.private_key.public_key()
    secret = {"pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
              "jwk_n": rsa_key.jwk()["n"].encode(), "jwk_json": json.dumps(rsa_key.jwk()).encode()}[secret_form]
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': 'legit'})}.{b64url_json(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    exc = rejected(verifier, f"{signing_input}.{b64url(mac)}", "unsupported_alg")
    assert "HMAC" in exc.hint


def test_alg_not_matching_the_key_type_is_refused(verifier, rsa_key):
    ec_attacker = SigningKey.generate("ES256", kid="legit")  # claims the RSA key's kid
    rejected(verifier, mint(ec_attacker, claims(), alg="ES256"), "alg_not_allowed")


def test_alg_outside_the_issuer_allow_list_is_refused(verifier, rsa_key):
    rejected(verifier, mint(rsa_key, claims(), alg="PS256"), "alg_not_allowed")


def test_rsa_key_with_alg_member_refuses_other_rsa_algorithms(rsa_key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks(), algorithms=("RS256", "PS256"))],
                 clock=lambda: NOW)
    rejected(v, mint(rsa_key, claims(), alg="PS256"), "alg_not_allowed")


# --- key-location headers and kid -----------------------------------------------------------------------------

@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_token_supplied_keys_are_never_used(verifier, attacker_key, member):
    value = {"jwk": attacker_key.jwk(), "jku": "https://attacker.example/jwks.json",
             "x5u": "https://attacker.example/cert.pem", "x5c": ["MIIBIjANBgkq"]}[member]
    token = mint(attacker_key, claims(), header={member: value})
    rejected(verifier, token, "bad_signature")
    token = mint(attacker_key, claims(), header={member: value, "kid": "attacker"})
    rejected(verifier, token, "unknown_kid")


@pytest.mark.parametrize("kid", ["../../../../etc/passwd", "' OR '1'='1", "legit\u0000", "legit\n", "${jndi:ldap://x}",
                                 "<script>alert(1)</script>", "A" * 250, "%00", "\u202elegit"])
def test_kid_injection_strings_are_just_unknown_kids(verifier, rsa_key, kid):
    exc = rejected(verifier, mint(rsa_key, claims(), header={"kid": kid}), "unknown_kid")
    assert len(exc.message) < 200


def test_oversized_or_non_string_kid_is_malformed(verifier, rsa_key):
    rejected(verifier, mint(rsa_key, claims(), header={"kid": "k" * 300}), "malformed")
    rejected(verifier, mint(rsa_key, claims(), header={"kid": ["legit"]}), "malformed")
    rejected(verifier, mint(rsa_key, claims(), header={"kid": {"$ne": None}}), "malformed")


@pytest.mark.parametrize("member", ["kid", "typ"])
def test_header_string_members_present_as_null_are_malformed(verifier, rsa_key, member):
    # RFC 7515 4.1.4/4.1.9: when present these members are strings; null is not "absent".
    header = {"alg": "RS256", "kid": "legit", "typ": "at+jwt", member: None}
    rejected(verifier, signed_raw(rsa_key, json.dumps(header), json.dumps(claims())), "malformed")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "exp", [1]])
def test_crit_is_refused(verifier, rsa_key, crit):
    header = {"crit": crit}
    if crit == ["b64"]:
        header["b64"] = False
    rejected(verifier, mint(rsa_key, claims(), header=header), "malformed")


def test_unencoded_payload_option_is_refused(verifier, rsa_key):
    rejected(verifier, mint(rsa_key, claims(), header={"b64": False}), "malformed")


# --- size and encoding ---------------------------------------------------------------------------------------

def test_huge_tokens_are_refused_before_decoding(verifier, rsa_key):
    big = mint(rsa_key, claims(padding="x" * MAX_TOKEN_CHARS))
    rejected(verifier, big, "token_too_large")
    rejected(verifier, "A" * (MAX_TOKEN_CHARS + 1), "token_too_large")
    big_header = mint(rsa_key, claims(), header={"pad": "y" * MAX_HEADER_CHARS})
    rejected(verifier, big_header, "token_too_large")


@pytest.mark.parametrize("mutate", [
    lambda h, p, s: f"{h}.{p}=.{s}",
    lambda h, p, s: f"{h}.{p}.{s}==",
    lambda h, p, s: f"{h}.{p.replace('-', '+').replace('_', '/')}x.{s}",
    lambda h, p, s: f"{h}.{p[:5]} {p[5:]}.{s}",
    lambda h, p, s: f"{h}.{p[:5]}\n{p[5:]}.{s}",
    lambda h, p, s: f"{h}.{p}.{s[:-1]}",
    lambda h, p, s: f"{h}.{p}.{s}!",
    lambda h, p, s: f"{h}.{p}.{s}.",
    lambda h, p, s: f"{h}.{p}",
    lambda h, p, s: f"{h}..{s}",
    lambda h, p, s: f".{p}.{s}",
    lambda h, p, s: f"Bearer {h}.{p}.{s}",
    lambda h, p, s: f"{h}.{p}.{s}.{s}.{s}",
    lambda h, p, s: f"{h}.{p}.\u00e9{s}",
], ids=["pad-payload", "pad-sig", "std-alphabet", "space", "newline", "truncated-sig", "bang",
        "4-segments", "2-segments", "empty-payload", "empty-header", "bearer-prefix", "jwe-shape", "non-ascii"])
def test_bad_base64_and_shapes_are_refused(verifier, rsa_key, mutate):
    h, p, s = mint(rsa_key, claims()).split(".")
    exc = rejected(verifier, mutate(h, p, s), "malformed")
    assert exc.status == 401


def test_altered_signature_is_a_bad_signature(verifier, rsa_key):
    h, p, s = mint(rsa_key, claims()).split(".")
    altered = s[:100] + ("A" if s[100] != "A" else "B") + s[101:]
    rejected(verifier, f"{h}.{p}.{altered}", "bad_signature")
    other = mint(rsa_key, claims(sub="someone-else")).split(".")[1]
    rejected(verifier, f"{h}.{other}.{s}", "bad_signature")


def test_non_canonical_trailing_bits_are_refused(verifier, rsa_key):
    h, p, s = mint(rsa_key, claims()).split(".")
    # 256-byte signature -> 342 chars, the last carrying 4 spare bits; setting one keeps the decoded bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(s) % 4 == 2
    tweaked = s[:-1] + alphabet[alphabet.index(s[-1]) | 1]
    assert base64.urlsafe_b64decode(tweaked + "==") == base64.urlsafe_b64decode(s + "==")
    rejected(verifier, f"{h}.{p}.{tweaked}", "malformed")


@pytest.mark.parametrize("payload_json", [
    '{"iss":"%s","aud":"orders-api","aud":"other","sub":"u","exp":%d}',
    '{"iss":"%s","aud":"orders-api","sub":"u","exp":%d,"exp":9999999999}',
    '{"iss" : "%s","iss":"https://evil","aud":"orders-api","sub":"u","exp":%d}',
    '{"iss":"%s","aud":"orders-api","sub":"u","exp":%d,"x":{"a":1,"a":2}}',
    '{"iss":"%s","aud":"orders-api","sub":"u","exp":%d,"x":[{"a":1,"a":2}]}',
    '{"iss":"%s",\n"aud":"orders-api","sub":"u","exp":%d,"sub" :"v"}',
    '{"iss":"%s","aud":"orders-api","sub":"u","exp":%d,"s\\u0075b":"v"}',
])
def test_duplicate_claim_names_are_refused(verifier, rsa_key, payload_json):
    token = signed_raw(rsa_key, '{"alg":"RS256","kid":"legit"}', payload_json % (ISSUER, NOW + 300))
    exc = rejected(verifier, token, "malformed")
    assert "duplicate" in exc.message


def test_duplicate_header_members_are_refused(verifier, rsa_key):
    token = signed_raw(rsa_key, '{"alg":"RS256","kid":"legit","alg":"none"}', json.dumps(claims()))
    rejected(verifier, token, "malformed")


@pytest.mark.parametrize("body", ["[]", '"a string"', "123", "null", "true", "", "{", '{"a":1} {"b":2}', "NaN"])
def test_non_object_claims_sets_are_refused(verifier, rsa_key, body):
    rejected(verifier, signed_raw(rsa_key, '{"alg":"RS256","kid":"legit"}', body), "malformed")


@pytest.mark.parametrize("bomb", ['{"a":' * 1800 + "1" + "}" * 1800, "[" * 5000 + "]" * 5000])
def test_nested_json_bombs_are_refused(verifier, rsa_key, bomb):
    rejected(verifier, signed_raw(rsa_key, '{"alg":"RS256","kid":"legit"}', bomb), "malformed")


def test_nested_header_bomb_is_bounded_by_the_header_size_limit(verifier, rsa_key):
    rejected(verifier, signed_raw(rsa_key, '{"alg":"RS256","x":' + "[" * 900 + "]" * 900 + "}",
                                  json.dumps(claims())), "token_too_large")


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800x", "\\udc00\\ud800"])
def test_lone_surrogates_are_refused(verifier, rsa_key, escape):
    body = json.dumps(claims())[:-1] + f',"name":"{escape}"' + "}"
    rejected(verifier, signed_raw(rsa_key, '{"alg":"RS256","kid":"legit"}', body), "malformed")


def test_invalid_utf8_is_refused(verifier, rsa_key):
    body = b'{"sub":"\xff\xfe"}'
    signing_input = b64url_json({"alg": "RS256", "kid": "legit"}) + "." + b64url(body)
    token = f"{signing_input}.{b64url(rsa_key.sign(signing_input.encode()))}"
    rejected(verifier, token, "malformed")


@pytest.mark.parametrize("exp", ["NaN", "Infinity", "-Infinity", "1e400", '"9999999999"', "true", "null", "[1]",
                                 "-5", "1" + "0" * 5000])
def test_exotic_exp_values_are_refused(verifier, rsa_key, exp):
    body = f'{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"u","exp":{exp}}}'
    exc = rejected(verifier, signed_raw(rsa_key, '{"alg":"RS256","kid":"legit"}', body),
                   "missing_claim" if exp == "null" else "malformed")
    assert exc.status == 401


# --- token confusion --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("marker", ["nonce", "at_hash", "c_hash"])
def test_generic_id_token_is_not_an_access_token(verifier, rsa_key, marker):
    rejected(verifier, mint(rsa_key, claims(**{marker: "abc"}), typ="JWT"), "wrong_token_use")


def test_typ_at_jwt_token_is_not_an_id_token(rsa_key):
    v = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks(), token_use="id")], clock=lambda: NOW)
    rejected(v, mint(rsa_key, claims()), "wrong_token_use")


@pytest.mark.parametrize("typ", ["logout+jwt", "dpop+jwt", "secevent+jwt", "JWE", "application/jwk+json"])
def test_other_token_types_are_refused(verifier, rsa_key, typ):
    rejected(verifier, mint(rsa_key, claims(), typ=typ), "wrong_typ")


def test_cognito_id_token_is_not_an_access_token(rsa_key):
    issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
    v = Verifier([IssuerConfig(issuer, ["client-1"], jwks=rsa_key.jwks(), profile="cognito")], clock=lambda: NOW)
    id_token = mint(rsa_key, claims(issuer=issuer, audience="client-1", token_use="id"), typ=None)
    rejected(v, id_token, "wrong_token_use")
    access = mint(rsa_key, claims(issuer=issuer, audience=None, token_use="access", client_id="client-1"), typ=None)
    assert v.verify(access).client_id == "client-1"


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


# --- cross-tenant Entra -----------------------------------------------------------------------------------------

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


# --- time edges ---------------------------------------------------------------------------------------------------

LEEWAY = 60


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


def test_missing_exp_is_refused_by_default(verifier, rsa_key):
    rejected(verifier, mint(rsa_key, claims(exp=None)), "missing_claim")


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
