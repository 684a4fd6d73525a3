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
from lambdas.validation.jwk import parse_jwk
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.route_tables import route, table_document
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

@pytest.fixture
def partner_verifier(signing_key) -> Verifier:
    # Two issuers of one IdP, named so that one name is a substring of the other.
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=signing_key.jwks(), name="partner"),
                     IssuerConfig(ISSUER + "/admin", [AUDIENCE], jwks=signing_key.jwks(), name="partner-admin")])


@pytest.mark.parametrize("call", ["authenticate", "verify", "check_signature", "verify_id_token", "explain"])
def test_issuers_given_as_one_string_is_refused_not_matched_by_substring(partner_verifier, signing_key, call):
    token = mint(signing_key, standard_claims(issuer=ISSUER, scope="orders:read"), typ="JWT")
    with pytest.raises(ValueError, match=r"not one string.*issuers=\['partner-admin'\]"):
        getattr(partner_verifier, call)(token, issuers="partner-admin")


def test_issuers_as_a_collection_still_decides(partner_verifier, signing_key):
    token = mint(signing_key, standard_claims(issuer=ISSUER, scope="orders:read"))
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


def test_verify_jws_algorithms_given_as_one_string_is_refused(signing_key):
    with pytest.raises(ValueError, match=r"algorithms=\['RS256'\]"):
        verify_jws(mint(signing_key), StaticKeySource.from_jwks(signing_key.jwks()), algorithms="RS256")


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
def two_client_verifier(signing_key) -> Verifier:
    return Verifier([IssuerConfig(ISSUER, ["mobile-app", "web-app"], jwks=signing_key.jwks(), token_use="id",
                                  name="corp")])


def id_token(key, **claims) -> str:
    return mint(key, standard_claims(nonce="n", **claims), typ="JWT")


def test_id_token_for_another_client_is_refused_without_azp(two_client_verifier, signing_key):
    # OIDC Core 3.1.3.7 step 3: the aud claim must contain the client's own client_id.
    token = id_token(signing_key, audience="mobile-app")
    assert two_client_verifier.verify_id_token(token, client_id="mobile-app").subject == "user-123"
    with pytest.raises(TokenRejected) as raised:
        two_client_verifier.verify_id_token(token, client_id="web-app")
    assert raised.value.code == "invalid_audience" and raised.value.expected == "web-app"


def test_id_token_naming_the_client_only_in_azp_is_refused(two_client_verifier, signing_key):
    token = id_token(signing_key, audience=["mobile-app", "other-api"], azp="web-app")
    with pytest.raises(TokenRejected) as raised:
        two_client_verifier.verify_id_token(token, client_id="web-app")
    assert raised.value.code == "invalid_audience"
    both = id_token(signing_key, audience=["mobile-app", "web-app"], azp="web-app")
    assert two_client_verifier.verify_id_token(both, client_id="web-app").subject == "user-123"


# --- item 3: weak keys in a JWKS; issue 16: a refused key is named, not reported as an unknown kid -----------------

# The eight points of small order on edwards25519 (order 1, 2, 4 and 8), in their canonical encodings: with any of
# them as the public key, R = that point and S = 0 is a "signature" of every message under cofactorless checks.
SMALL_ORDER_POINTS = {
    "identity": "01" + "00" * 31,
    "order-2": "ec" + "ff" * 30 + "7f",
    "order-4": "00" * 32,
    "order-4-negated": "00" * 31 + "80",
    "order-8-a": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "order-8-b": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "order-8-c": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "order-8-d": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
}


def raw_b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forged_token(alg: str, kid: str, signature: bytes, **claims) -> str:
    header = raw_b64url(json.dumps({"alg": alg, "kid": kid, "typ": "at+jwt"}).encode())
    payload = raw_b64url(json.dumps(standard_claims(scope="orders:read", **claims)).encode())
    return f"{header}.{payload}.{raw_b64url(signature)}"


@pytest.mark.parametrize("name", SMALL_ORDER_POINTS)
def test_small_order_ed25519_key_is_refused_and_cannot_verify_a_forgery(name):
    point = bytes.fromhex(SMALL_ORDER_POINTS[name])
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": raw_b64url(point), "kid": "weak-ed"}
    with pytest.raises(ValueError, match="small order"):
        parse_jwk(jwk)
    verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks={"keys": [jwk]}, algorithms=("EdDSA",))])
    forgery = forged_token("EdDSA", "weak-ed", point + bytes(32), subject="admin")
    with pytest.raises(TokenRejected) as raised:
        verifier.verify(forgery)
    assert raised.value.code == "unknown_kid"
    assert "refused" in raised.value.message and "small order" in raised.value.message


def test_non_canonical_ed25519_encoding_is_refused():
    # y = p + 1 is the identity's y written beyond the field: RFC 8032 5.1.3 decoding must fail.
    y = (2 ** 255 - 19) + 1
    with pytest.raises(ValueError, match="canonical"):
        parse_jwk({"kty": "OKP", "crv": "Ed25519", "x": raw_b64url(y.to_bytes(32, "little"))})


def test_ordinary_ed25519_keys_are_accepted():
    for _ in range(20):
        assert parse_jwk(SigningKey.generate("EdDSA").jwk()).crv == "Ed25519"


@pytest.fixture(scope="module")
def prime_2048() -> int:
    # RSA key generation makes 1024-bit primes; a 2048-bit one is searched for from a fixed odd start.
    import random
    from math import gcd
    rng = random.Random(18)
    candidate = rng.getrandbits(2048) | (1 << 2047) | 1
    while True:
        if gcd(candidate, 3 * 5 * 7 * 11 * 13 * 17 * 19 * 23) == 1 and all(
                pow(a, candidate - 1, candidate) == 1 for a in (2, 3, 5, 7)):
            return candidate
        candidate += 2


def test_rsa_key_with_a_prime_modulus_is_refused_and_cannot_verify_a_forgery(prime_2048):
    n, e = prime_2048, 65537
    d = pow(e, -1, n - 1)  # anyone can compute the private exponent of a prime modulus
    jwk = {"kty": "RSA", "kid": "prime-n", "n": raw_b64url(n.to_bytes(256, "big")),
           "e": raw_b64url(e.to_bytes(3, "big"))}
    with pytest.raises(ValueError, match="prime"):
        parse_jwk(jwk)
    import hashlib
    header = raw_b64url(json.dumps({"alg": "RS256", "kid": "prime-n", "typ": "at+jwt"}).encode())
    payload = raw_b64url(json.dumps(standard_claims(scope="orders:read", subject="admin")).encode())
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(
        f"{header}.{payload}".encode()).digest()
    encoded = b"\x00\x01" + b"\xff" * (256 - 3 - len(digest_info)) + b"\x00" + digest_info
    signature = pow(int.from_bytes(encoded, "big"), d, n).to_bytes(256, "big")
    verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks={"keys": [jwk]})])
    with pytest.raises(TokenRejected) as raised:
        verifier.verify(f"{header}.{payload}.{raw_b64url(signature)}")
    assert raised.value.code == "unknown_kid" and "prime" in raised.value.message


def test_a_prime_modulus_bundled_in_a_table_is_left_out_of_the_vetted_record_and_refused_at_a_cold_start(
        prime_2048, tmp_path, monkeypatch):
    # The builder's record lets a cold start skip the prime-modulus test for the moduli it names; a key that fails
    # the test must never get into it, however the table lists it.
    from lambdas.authorizers.runtime import AuthorizerRuntime
    from lambdas.validation import jwk as jwk_module
    from lambdas.validation.vetted_keys import VETTED_KEYS_FILE, write_vetted_keys
    from tests.support.route_tables import table_document
    monkeypatch.setattr(jwk_module, "_build_tested_moduli", set())
    good = SigningKey.generate("RS256", kid="good")
    prime = {"kty": "RSA", "kid": "prime-n", "n": raw_b64url(prime_2048.to_bytes(256, "big")), "e": "AQAB"}
    document = table_document(good)
    document["issuers"]["corp"]["jwks"] = {"keys": [prime, good.jwk()]}
    (tmp_path / "routes.json").write_text(json.dumps(document))
    write_vetted_keys(tmp_path, document)
    assert len(json.loads((tmp_path / VETTED_KEYS_FILE).read_text())["rsa_moduli_sha256"]) == 1
    runtime = AuthorizerRuntime.from_env({"AUTHGATE_POLICY": str(tmp_path / "routes.json"), "AUTHGATE_API": "orders"})
    with pytest.raises(TokenRejected) as raised:
        runtime.verifier.verify(forged_token("RS256", "prime-n", bytes(256)))
    assert raised.value.code == "unknown_kid" and "prime" in raised.value.message


def test_ordinary_rsa_keys_are_accepted(signing_key):
    assert parse_jwk(signing_key.jwk()).key_size == 2048


def test_a_token_naming_a_refused_1024_bit_key_says_the_key_exists_and_why(http_server):
    from cryptography.hazmat.primitives.asymmetric import rsa
    weak = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "old-1024", "n": raw_b64url(weak.n.to_bytes(128, "big")), "e": "AQAB"}
    good = SigningKey.generate("RS256", kid="current")
    for source in ("static", "remote"):
        if source == "static":
            config = IssuerConfig(ISSUER, [AUDIENCE], jwks={"keys": [jwk, good.jwk()]})
        else:
            http_server.serve("/jwks", json.dumps({"keys": [jwk, good.jwk()]}).encode())
            config = IssuerConfig(ISSUER, [AUDIENCE], jwks_uri=http_server.url("/jwks"), allow_insecure_http=True)
        verifier = Verifier([config])
        with pytest.raises(TokenRejected) as raised:
            verifier.verify(forged_token("RS256", "old-1024", bytes(128)))
        message = raised.value.message
        assert raised.value.code == "unknown_kid", source
        assert "old-1024" in message and "refused" in message and "1024 bits" in message, message
        assert "rotated out" not in (raised.value.hint or "")
        with pytest.raises(TokenRejected) as raised:
            verifier.verify(forged_token("RS256", "never-published", bytes(256)))
        assert "no key with kid" in raised.value.message


@pytest.mark.parametrize("text", ['{"keys": [], "x": ' + "[" * 5000 + "]" * 5000 + "}",
                                  '{"keys": [], "keys": [%s]}'], ids=["deep", "duplicate keys"])
def test_a_bundled_jwks_file_is_read_as_strictly_as_a_fetched_one(tmp_path, signing_key, text):
    # One JSON reader for key documents: the file used json.loads (RecursionError on deep nesting; a duplicate
    # "keys" member read last-wins) where a fetched JWKS is refused.
    path = tmp_path / "jwks.json"
    path.write_text(text.replace("%s", json.dumps(signing_key.jwk())) if "%s" in text else text)
    with pytest.raises(ValueError, match="JWKS file"):
        StaticKeySource.from_file(str(path))


@pytest.mark.parametrize("iss", ["[]", '["%s"]' % ISSUER, "{}", "1", "null"])
def test_gcp_userinfo_whose_iss_is_not_a_string_is_refused(iss):
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-apigateway-api-userinfo": b64url('{"iss": %s, "sub": "u"}' % iss)})
    assert raised.value.code == "unknown_issuer"


# --- item 1 at the entry points: the ASGI middleware answers, it does not raise ----------------------------------

def test_asgi_middleware_answers_a_deeply_nested_token_on_protected_and_public_routes(signing_key):
    import asyncio

    from lambdas.guards.asgi import AuthgateMiddleware
    from lambdas.guards.require import BearerGuard

    table = table_document(signing_key, [route("GET /orders/{id}", scopes=["orders:read"]),
                                     route("GET /health", public=True)])
    guard = BearerGuard.from_route_table(table, "orders")

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(path, token):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)
        await AuthgateMiddleware(app, check=guard.check)(
            {"type": "http", "method": "GET", "path": path,
             "headers": [(b"authorization", f"Bearer {token}".encode())]}, receive, send)
        return sent[0]["status"]

    header = raw_b64url(json.dumps({"alg": "RS256", "kid": signing_key.kid}).encode())
    claims = json.dumps(standard_claims(scope="orders:read"))[:-1] + ', "x": ' + "[" * 400 + '"\\u0041"' + "]" * 400 + "}"
    token = f"{header}.{raw_b64url(claims.encode())}.{raw_b64url(bytes(256))}"
    assert asyncio.run(call("/orders/1", token)) == 401
    assert asyncio.run(call("/health", token)) in (200, 401)


def test_a_deeply_nested_route_table_file_is_a_route_table_error(tmp_path):
    from lambdas.validation.route_table import RouteTable, RouteTableError
    path = tmp_path / "routes.json"
    path.write_text('{"format": "authgate.routes/v1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(RouteTableError, match="nested too deeply"):
        RouteTable.load(str(path))
