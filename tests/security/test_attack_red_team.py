"""Issue 18's red-team findings that are not single hostile tokens for the catalogue: the backend guards' own header
parsing, API-level mistakes (a bare string where a collection of names belongs, an ID token's client), weak keys in
a JWKS, and policy values a gateway would evaluate. Each test failed on the code the review ran against.

The guards' identity headers (ALB x-amzn-oidc-data, GCP X-Apigateway-Api-Userinfo, EasyAuth X-MS-CLIENT-PRINCIPAL)
go through the same strict JSON decoder as tokens: no input raises anything but TokenRejected, and no header is read
in a way a token would not be.
"""
from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from lambdas.guards.alb import AlbOidcGuard, AlbPublicKeys
from lambdas.guards.easyauth import EasyAuthGuard
from lambdas.guards.gcp import GcpGatewayGuard
from lambdas.validation import IssuerConfig, StaticKeySource, TokenRejected, Verifier, verify_jws
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint, standard_claims

ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/orders-alb/50dc6c495c0c9188"
ALB_KID = "c2f4b8a0-1d3e-4f5a-9b6c-7d8e9f0a1b2c"


def padded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()  # keeps '=' padding, as the ALB does


@pytest.fixture(scope="module")
def alb_key() -> SigningKey:
    return SigningKey.generate("ES256", kid=ALB_KID)


@pytest.fixture
def alb_guard(http_server, alb_key):
    pem = alb_key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    http_server.serve(f"/{ALB_KID}", pem)
    return AlbOidcGuard(ALB_ARN, keys=AlbPublicKeys("eu-west-1", endpoint=http_server.url("/"),
                                                    allow_insecure_http=True))


def alb_header_text(**members) -> str:
    return json.dumps({"alg": "ES256", "kid": ALB_KID, "signer": ALB_ARN, "iss": ISSUER, "client": "orders-web",
                       "exp": int(time.time()) + 120, **members})


def alb_data(key: SigningKey, header: str | None = None, payload: str | None = None) -> str:
    header = header if header is not None else alb_header_text()
    payload = payload if payload is not None else json.dumps({"sub": "user-123", "exp": int(time.time()) + 120})
    signing_input = f"{padded(header.encode())}.{padded(payload.encode())}"
    return f"{signing_input}.{padded(key.sign(signing_input.encode(), 'ES256'))}"


def alb_refused(guard, data: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-amzn-oidc-data": data})
    return raised.value


# --- item 5: the ALB guard ---------------------------------------------------------------------------------------------

def test_alb_good_header_still_verifies(alb_guard, alb_key):
    assert alb_guard.authenticate({"x-amzn-oidc-data": alb_data(alb_key)}).subject == "user-123"


@pytest.mark.parametrize("where", ["header", "payload"])
def test_alb_deeply_nested_json_is_refused_not_raised(alb_guard, alb_key, where):
    nested = "[" * 5000 + "]" * 5000
    data = (alb_data(alb_key, header=alb_header_text()[:-1] + f', "x": {nested}}}') if where == "header" else
            alb_data(alb_key, payload=json.dumps({"sub": "user-123"})[:-1] + f', "x": {nested}}}'))
    assert alb_refused(alb_guard, data).code in ("malformed", "token_too_large")
    shallow = "[" * 300 + '"\\u0041"' + "]" * 300
    data = alb_data(alb_key, payload=json.dumps({"sub": "user-123"})[:-1] + f', "x": {shallow}}}')
    assert alb_refused(alb_guard, data).code == "malformed"


def test_alb_non_ascii_payload_segment_is_refused_not_raised(alb_guard, alb_key):
    head, _, signature = alb_data(alb_key).split(".")
    assert alb_refused(alb_guard, f"{head}.\u00e9\u00e9\u00e9\u00e9.{signature}").code == "malformed"


def test_alb_kid_with_a_trailing_newline_never_reaches_the_key_endpoint(alb_guard, alb_key, http_server):
    data = alb_data(alb_key, header=alb_header_text(kid=ALB_KID + "\n"))
    for _ in range(3):
        assert alb_refused(alb_guard, data).code == "unknown_kid"
    assert http_server.count(f"/{ALB_KID}\n") == 0 and http_server.count(f"/{ALB_KID}%0A") == 0


@pytest.mark.parametrize("header", [
    '{"alg": "ES256", "kid": "%s", "signer": "%s", "signer": "arn:other"}' % (ALB_KID, ALB_ARN),
    '{"alg": "ES256", "kid": "%s", "signer": "%s", "x": NaN}' % (ALB_KID, ALB_ARN),
    '{"alg": "ES256", "kid": "%s", "signer": "%s", "x": "\\ud800"}' % (ALB_KID, ALB_ARN),
], ids=["duplicate member", "NaN", "lone surrogate"])
def test_alb_header_json_is_read_as_strictly_as_a_token_header(alb_guard, alb_key, header):
    assert alb_refused(alb_guard, alb_data(alb_key, header=header)).code == "malformed"


def test_alb_payload_with_duplicate_sub_is_refused(alb_guard, alb_key):
    data = alb_data(alb_key, payload='{"sub": "user-123", "exp": %d, "sub": "admin"}' % (time.time() + 120))
    assert alb_refused(alb_guard, data).code == "malformed"


@pytest.mark.parametrize("exp", ['"%d"', "true", "1e400", "null"], ids=["string", "bool", "overflow", "null"])
def test_alb_exp_must_be_a_numeric_date(alb_guard, alb_key, exp):
    value = exp % (time.time() + 120) if "%d" in exp else exp
    data = alb_data(alb_key, payload='{"sub": "user-123", "exp": %s}' % value,
                    header=json.dumps({"alg": "ES256", "kid": ALB_KID, "signer": ALB_ARN}))
    assert alb_refused(alb_guard, data).code in ("malformed", "missing_claim")


def test_alb_arn_with_a_trailing_newline_is_refused():
    with pytest.raises(ValueError, match="application load balancer ARN"):
        AlbOidcGuard(ALB_ARN + "\n")


# --- the GCP and EasyAuth guards: identity headers through the strict decoder ---------------------------------------

def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


@pytest.mark.parametrize("userinfo,code", [
    ('{"iss": "%s", "sub": "u", "x": %s}' % (ISSUER, "[" * 5000 + "]" * 5000), "malformed"),
    ('{"iss": "%s", "sub": "u", "x": %s}' % (ISSUER, "[" * 400 + '"\\u0041"' + "]" * 400), "malformed"),
    ('{"iss": "%s", "sub": "attacker", "sub": "u"}' % ISSUER, "malformed"),
    ('{"iss": "%s", "sub": "u", "exp": Infinity}' % ISSUER, "malformed"),
], ids=["deep", "deep with escape", "duplicate sub", "Infinity"])
def test_gcp_userinfo_is_read_strictly(userinfo, code):
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-apigateway-api-userinfo": b64url(userinfo)})
    assert raised.value.code == code


def easyauth(document: str) -> str:
    return base64.b64encode(document.encode()).decode()


@pytest.mark.parametrize("document", [
    '{"claims": [], "x": %s}' % ("[" * 5000 + "]" * 5000),
    '{"claims": [{"typ": "oid", "val": "u"}], "x": %s}' % ("[" * 400 + '"\\u0041"' + "]" * 400),
    '{"claims": [{"typ": "oid", "val": "u"}], "claims": [{"typ": "oid", "val": "admin"}]}',
], ids=["deep", "deep with escape", "duplicate claims"])
def test_easyauth_client_principal_is_read_strictly(document):
    guard = EasyAuthGuard(insecure_accept_any_tenant=True, insecure_accept_any_audience=True)
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-ms-client-principal": easyauth(document)})
    assert raised.value.code == "malformed"


# --- item 6: a collection of names given as one string --------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.generate("RS256", kid="k1")


@pytest.fixture
def partner_verifier(rsa_key) -> Verifier:
    # Two issuers of one IdP, named so that one name is a substring of the other.
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=rsa_key.jwks(), name="partner"),
                     IssuerConfig(ISSUER + "/admin", [AUDIENCE], jwks=rsa_key.jwks(), name="partner-admin")])


@pytest.mark.parametrize("call", ["authenticate", "verify", "check_signature", "verify_id_token", "explain"])
def test_issuers_given_as_one_string_is_refused_not_matched_by_substring(partner_verifier, rsa_key, call):
    token = mint(rsa_key, standard_claims(issuer=ISSUER, scope="orders:read"), typ="JWT")
    with pytest.raises(ValueError, match=r"not one string.*issuers=\['partner-admin'\]"):
        getattr(partner_verifier, call)(token, issuers="partner-admin")


def test_issuers_as_a_collection_still_decides(partner_verifier, rsa_key):
    token = mint(rsa_key, standard_claims(issuer=ISSUER, scope="orders:read"))
    assert partner_verifier.verify(token, issuers=["partner"]).issuer_name == "partner"
    assert partner_verifier.verify(token, issuers=(name for name in ["partner"])).issuer_name == "partner"
    with pytest.raises(TokenRejected) as raised:
        partner_verifier.verify(token, issuers=["partner-admin"])
    assert raised.value.code == "unknown_issuer"
    partner_verifier.verify(token)  # now cached: the cache hit must apply the same rule
    with pytest.raises(TokenRejected):
        partner_verifier.verify(token, issuers=frozenset({"partner-admin"}))
    with pytest.raises(ValueError, match="not one string"):
        partner_verifier.verify(token, issuers="partner-admin")


def test_verify_jws_algorithms_given_as_one_string_is_refused(rsa_key):
    with pytest.raises(ValueError, match=r"algorithms=\['RS256'\]"):
        verify_jws(mint(rsa_key), StaticKeySource.from_jwks(rsa_key.jwks()), algorithms="RS256")


def test_gcp_guard_issuers_given_as_one_string_is_refused():
    # frozenset("https://idp...") is a set of characters: an iss of "h" would have been accepted.
    with pytest.raises(ValueError, match="not one string"):
        GcpGatewayGuard(issuers=ISSUER, private_ingress=True)
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-apigateway-api-userinfo": b64url('{"iss": "h", "sub": "u"}')})
    assert raised.value.code == "unknown_issuer"


# --- item 7: verify_id_token(client_id=...) requires the client among the audiences --------------------------------

@pytest.fixture
def two_client_verifier(rsa_key) -> Verifier:
    return Verifier([IssuerConfig(ISSUER, ["mobile-app", "web-app"], jwks=rsa_key.jwks(), token_use="id",
                                  name="corp")])


def id_token(key, **claims) -> str:
    return mint(key, standard_claims(nonce="n", **claims), typ="JWT")


def test_id_token_for_another_client_is_refused_without_azp(two_client_verifier, rsa_key):
    # OIDC Core 3.1.3.7 step 3: the aud claim must contain the client's own client_id.
    token = id_token(rsa_key, audience="mobile-app")
    assert two_client_verifier.verify_id_token(token, client_id="mobile-app").subject == "user-123"
    with pytest.raises(TokenRejected) as raised:
        two_client_verifier.verify_id_token(token, client_id="web-app")
    assert raised.value.code == "invalid_audience" and raised.value.expected == "web-app"


def test_id_token_naming_the_client_only_in_azp_is_refused(two_client_verifier, rsa_key):
    token = id_token(rsa_key, audience=["mobile-app", "other-api"], azp="web-app")
    with pytest.raises(TokenRejected) as raised:
        two_client_verifier.verify_id_token(token, client_id="web-app")
    assert raised.value.code == "invalid_audience"
    both = id_token(rsa_key, audience=["mobile-app", "web-app"], azp="web-app")
    assert two_client_verifier.verify_id_token(both, client_id="web-app").subject == "user-123"
