"""Differential tests: lambdas.validation against npm aws-jwt-verify (the reference verifier) on one token corpus.

Every token in the corpus goes through both verifiers: ours (`Verifier.verify`) and aws-jwt-verify 5.2.1
(`JwtRsaVerifier` / `CognitoJwtVerifier`, keys loaded with `cacheJwks`, one Node process for the whole module). Each
case pins both verdicts (our TokenRejected code, aws-jwt-verify's error class), so neither side can drift silently.
Where the two verdicts differ (one accepts, the other refuses) the case must say why, and the reason is a
deliberate rule of ours or a documented limit of aws-jwt-verify; an unexplained disagreement is a failing test.

Both sides read the real clock (aws-jwt-verify has no clock injection), so every time claim sits far from the
acceptance edges. aws-jwt-verify's `graceSeconds` defaults to 0 where our leeway defaults to 60 s: the corpus sets
`graceSeconds: 60` to compare the rules, and one setup keeps aws-jwt-verify's default to show that difference.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.support.reference_node import ReferenceVerifier, reference_available
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, mint

ACCEPT = "accept"
GRACE = 60
ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA")
KEYS = {alg: SigningKey.generate(alg, kid=f"kid-{alg.lower()}") for alg in ALGS}
PSS_KEY = SigningKey.generate("PS256", kid="kid-ps256")
WEAK_KEY = SigningKey.generate("RS256", kid="kid-rsa-1024", rsa_bits=1024)  # below RFC 7518 3.3's 2048 bits
ENC_KEY = SigningKey.generate("RS256", kid="kid-enc")                        # published for encryption only
ATTACKER = SigningKey.generate("RS256", kid="kid-rs256")                     # same kid as the real RS256 key
GENERIC_JWKS = {"keys": [k.jwk() for k in KEYS.values()] + [WEAK_KEY.jwk(), ENC_KEY.jwk(use="enc")]}
PSS_JWKS = {"keys": [PSS_KEY.jwk()]}

POOL_ID = "eu-west-1_AbCdEf123"
POOL_ISSUER = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL_ID}"
CLIENT_ID = "7hx3kq2client"
COGNITO_KEY = SigningKey.generate("RS256", kid="cognito-kid-1")
COGNITO_JWKS = COGNITO_KEY.jwks()


@dataclass(frozen=True)
class Setup:
    """One verifier configuration, expressed for both sides."""

    ours: dict                                 # IssuerConfig keyword arguments
    reference: dict                            # aws-jwt-verify spec (see reference_verify.mjs)
    requirement: dict = field(default_factory=dict)   # Verifier.verify keyword arguments


SETUPS = {
    "generic": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS, leeway_seconds=GRACE),
        {"kind": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks": GENERIC_JWKS, "graceSeconds": GRACE}),
    "generic_default_grace": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS),
        {"kind": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks": GENERIC_JWKS}),
    "generic_scope": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS, leeway_seconds=GRACE),
        {"kind": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks": GENERIC_JWKS, "graceSeconds": GRACE,
         "scope": ["orders:read"]},
        {"scopes": ("orders:read",)}),
    "generic_pss": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=PSS_JWKS, algorithms=("PS256",), leeway_seconds=GRACE),
        {"kind": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks": PSS_JWKS, "graceSeconds": GRACE}),
    "cognito_access": Setup(
        dict(issuer=POOL_ID, audiences=[CLIENT_ID], jwks=COGNITO_JWKS, profile="cognito", token_use="access"),
        {"kind": "cognito", "userPoolId": POOL_ID, "clientId": CLIENT_ID, "tokenUse": "access", "jwks": COGNITO_JWKS,
         "graceSeconds": GRACE}),
    "cognito_id": Setup(
        dict(issuer=POOL_ID, audiences=[CLIENT_ID], jwks=COGNITO_JWKS, profile="cognito", token_use="id"),
        {"kind": "cognito", "userPoolId": POOL_ID, "clientId": CLIENT_ID, "tokenUse": "id", "jwks": COGNITO_JWKS,
         "graceSeconds": GRACE}),
    "cognito_admins": Setup(
        dict(issuer=POOL_ID, audiences=[CLIENT_ID], jwks=COGNITO_JWKS, profile="cognito", token_use="access"),
        {"kind": "cognito", "userPoolId": POOL_ID, "clientId": CLIENT_ID, "tokenUse": "access", "jwks": COGNITO_JWKS,
         "graceSeconds": GRACE, "groups": ["admins"]},
        {"groups": ("admins",)}),
}


@dataclass(frozen=True)
class Case:
    name: str
    setup: str
    token: str
    ours: str                  # ACCEPT or our TokenRejected code
    reference: str             # ACCEPT or aws-jwt-verify's error class name
    why_different: str = ""    # required when exactly one side accepts
    why_claims_differ: str = ""  # when both accept but read different claims

    def __post_init__(self) -> None:
        differ = (self.ours == ACCEPT) != (self.reference == ACCEPT)
        if differ and not self.why_different:
            raise AssertionError(f"case {self.name}: the verdicts differ, so the case must say why")
        if not differ and self.why_different:
            raise AssertionError(f"case {self.name}: the verdicts agree, so why_different must be empty")


# --- building hostile tokens from raw parts ------------------------------------------------------------------------

def signed(key: SigningKey, header_segment: str, payload_segment: str, alg: str | None = None) -> str:
    """A token whose header/payload segments are given verbatim (padding, odd bytes) and correctly signed."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii'), alg))}"


def segment(obj: Any) -> str:
    return b64url_json(obj)


def header_for(key: SigningKey, **extra: Any) -> dict:
    return {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **extra}


def claims(now: int, **overrides: Any) -> dict:
    body = {"iss": ISSUER, "sub": "user-123", "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600,
            "jti": "j-1", "scope": "orders:read orders:write"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def flip_middle(text: str) -> str:
    i = len(text) // 2
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]


def hs256_with_public_key(key: SigningKey, now: int) -> str:
    """The classic confusion: HMAC keyed with the verifier's own public key (PEM), hoping it is used as a secret."""
    secret = key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{segment({'alg': 'HS256', 'kid': key.kid, 'typ': 'at+jwt'})}.{segment(claims(now))}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def es256_der_signature(key: SigningKey, now: int) -> str:
    """An ES256 token whose signature is ASN.1 DER (what OpenSSL emits) instead of JWS's fixed-size r||s."""
    signing_input = f"{segment(header_for(key))}.{segment(claims(now))}"
    der = key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{signing_input}.{b64url(der)}"


def padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def padded_segments(key: SigningKey, now: int) -> str:
    """Header and payload with base64 '=' padding (RFC 7515 2 forbids it), signed over the padded text."""
    header = header_for(key)
    while len(segment(header)) % 4 == 0:
        header["x"] = header.get("x", "") + "p"
    body = claims(now)
    while len(segment(body)) % 4 == 0:
        body["pad"] = body.get("pad", "") + "p"
    return signed(key, padded(segment(header)), padded(segment(body)))


def non_canonical_signature(key: SigningKey, now: int) -> str:
    """A valid RS256 token whose last signature character has its unused low bits set: the same bytes, another
    string. 256 signature bytes leave 4 unused bits in the last of 342 characters."""
    token = mint(key, claims(now))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    assert last & 0b1111 == 0, "a canonical 2048-bit RSA signature leaves the last character's low 4 bits clear"
    return token[:-1] + alphabet[last | 0b0001]


def duplicate_aud(key: SigningKey, now: int) -> str:
    """Two `aud` members: parsers that keep the last one see AUDIENCE, parsers that keep the first see evil."""
    body = json.dumps(claims(now), separators=(",", ":"))
    body = body.replace('"aud":"orders-api"', '"aud":"evil-api","aud":"orders-api"')
    assert body.count('"aud"') == 2
    return signed(key, segment(header_for(key)), b64url(body.encode()))


def raw_payload(key: SigningKey, now: int, payload: bytes) -> str:
    return signed(key, segment(header_for(key)), b64url(payload))


def invalid_utf8(key: SigningKey, now: int) -> bytes:
    body = json.dumps(claims(now), separators=(",", ":")).encode()
    return body[:-1] + b',"name":"caf\xe9"}'  # Latin-1 byte: not UTF-8 (RFC 7519 7.2 step 8 requires UTF-8)


def lone_surrogate(key: SigningKey, now: int) -> bytes:
    body = json.dumps(claims(now), separators=(",", ":")).encode()
    return body[:-1] + b',"name":"\\ud800"}'  # an escaped unpaired surrogate: no Unicode string (RFC 8259 8.2)


def cognito_access(now: int, **overrides: Any) -> dict:
    body = {"sub": "5b9c7f2e-user", "iss": POOL_ISSUER, "client_id": CLIENT_ID, "origin_jti": "o-1",
            "event_id": "e-1", "token_use": "access", "scope": "aws.cognito.signin.user.admin",
            "auth_time": now, "exp": now + 3600, "iat": now, "jti": "j-2", "username": "alice",
            "cognito:groups": ["admins"]}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def cognito_id(now: int, **overrides: Any) -> dict:
    body = {"sub": "5b9c7f2e-user", "iss": POOL_ISSUER, "aud": CLIENT_ID, "token_use": "id", "auth_time": now,
            "exp": now + 3600, "iat": now, "jti": "j-3", "cognito:username": "alice", "email": "alice@example.test",
            "email_verified": True, "origin_jti": "o-1", "event_id": "e-1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def cognito(body: dict) -> str:
    # Cognito's token header carries kid and alg only: no typ.
    return mint(COGNITO_KEY, body, typ=None)


def corpus() -> list[Case]:
    now = int(time.time())
    rs = KEYS["RS256"]
    cases = [Case(f"valid_{alg}", "generic", mint(KEYS[alg], claims(now)), ACCEPT, ACCEPT) for alg in ALGS]
    cases += [
        Case("aud_array_containing_ours", "generic", mint(rs, claims(now, aud=["other", AUDIENCE])), ACCEPT, ACCEPT),
        Case("typ_JWT", "generic", mint(rs, claims(now), typ="JWT"), ACCEPT, ACCEPT),
        Case("no_typ", "generic", mint(rs, claims(now), typ=None), ACCEPT, ACCEPT),
        Case("expired_within_leeway", "generic", mint(rs, claims(now, exp=now - 20)), ACCEPT, ACCEPT),
        Case("nbf_within_leeway", "generic", mint(rs, claims(now, nbf=now + 20)), ACCEPT, ACCEPT),
        Case("scope_present", "generic_scope", mint(rs, claims(now)), ACCEPT, ACCEPT),
        Case("jku_header_ignored", "generic",
             mint(rs, claims(now), header={"jku": "https://attacker.example/jwks.json"}), ACCEPT, ACCEPT),
        # both refuse
        Case("expired", "generic", mint(rs, claims(now, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
             "expired", "JwtExpiredError"),
        Case("nbf_in_future", "generic", mint(rs, claims(now, nbf=now + 3600)), "not_yet_valid", "JwtNotBeforeError"),
        Case("wrong_iss", "generic", mint(rs, claims(now, iss="https://evil.example")), "unknown_issuer",
             "JwtInvalidIssuerError"),
        Case("iss_trailing_slash", "generic", mint(rs, claims(now, iss=ISSUER + "/")), "unknown_issuer",
             "JwtInvalidIssuerError"),
        Case("wrong_aud", "generic", mint(rs, claims(now, aud="billing-api")), "invalid_audience",
             "JwtInvalidAudienceError"),
        Case("aud_array_without_ours", "generic", mint(rs, claims(now, aud=["a", "b"])), "invalid_audience",
             "JwtInvalidAudienceError"),
        Case("no_aud", "generic", mint(rs, claims(now, aud=None)), "missing_claim", "JwtInvalidAudienceError"),
        Case("tampered_payload", "generic",
             ".".join([mint(rs, claims(now)).split(".")[0], segment(claims(now, sub="admin")),
                       mint(rs, claims(now)).split(".")[2]]), "bad_signature", "JwtInvalidSignatureError"),
        Case("tampered_signature", "generic", ".".join(
            (lambda p: [p[0], p[1], flip_middle(p[2])])(mint(rs, claims(now)).split("."))), "bad_signature",
            "JwtInvalidSignatureError"),
        Case("signed_by_attacker_with_real_kid", "generic", mint(ATTACKER, claims(now)), "bad_signature",
             "JwtInvalidSignatureError"),
        Case("embedded_jwk_header", "generic",
             mint(ATTACKER, claims(now), header={"jwk": ATTACKER.jwk()}), "bad_signature", "JwtInvalidSignatureError"),
        Case("alg_none_empty_signature", "generic",
             f"{segment({'alg': 'none', 'typ': 'at+jwt'})}.{segment(claims(now))}.", "malformed", "JwtParseError"),
        Case("alg_none_with_kid", "generic",
             f"{segment({'alg': 'none', 'kid': rs.kid})}.{segment(claims(now))}.AAAA", "unsupported_alg",
             "JwtInvalidSignatureAlgorithmError"),
        Case("hs256_with_public_key", "generic", hs256_with_public_key(rs, now), "unsupported_alg",
             "JwtInvalidSignatureAlgorithmError"),
        Case("es256_header_on_rsa_key", "generic",
             mint(KEYS["ES256"], claims(now), header={"kid": rs.kid}), "alg_not_allowed",
             "JwtInvalidSignatureAlgorithmError"),
        Case("rs384_header_on_rs256_key", "generic",
             mint(KEYS["RS384"], claims(now), header={"kid": rs.kid}), "alg_not_allowed",
             "JwtInvalidSignatureAlgorithmError"),
        # aws-jwt-verify lets Node's own "Malformed signature" Error through here rather than a JwtBaseError.
        Case("es256_der_signature", "generic", es256_der_signature(KEYS["ES256"], now), "bad_signature", "Error"),
        Case("unknown_kid", "generic", mint(rs, claims(now), header={"kid": "no-such-kid"}), "unknown_kid",
             "KidNotFoundInJwksError"),
        Case("key_published_for_encryption", "generic", mint(ENC_KEY, claims(now)), "unknown_kid",
             "JwkInvalidUseError"),
        Case("scope_missing", "generic_scope", mint(rs, claims(now, scope="orders:write")), "insufficient_scope",
             "JwtInvalidScopeError"),
        Case("scope_array_element_with_a_space", "generic_scope",
             mint(rs, claims(now, scope=["orders:write orders:read"])), "insufficient_scope", "JwtParseError"),
        Case("exp_is_a_string", "generic", mint(rs, claims(now, exp=str(now + 600))), "malformed", "JwtParseError"),
        Case("payload_is_an_array", "generic", raw_payload(rs, now, b'["not","an","object"]'), "malformed",
             "JwtParseError"),
        Case("two_segments", "generic", ".".join(mint(rs, claims(now)).split(".")[:2]), "malformed",
             "JwtParseError"),
        Case("trailing_newline", "generic", mint(rs, claims(now)) + "\n", "malformed", "JwtParseError"),
        Case("header_is_an_array", "generic", signed(rs, b64url(b'["RS256"]'), segment(claims(now))), "malformed",
             "JwtParseError"),
        Case("kid_is_a_number", "generic", mint(rs, claims(now), header={"kid": 5}), "malformed", "JwtParseError"),
        Case("exp_is_boolean", "generic", mint(rs, claims(now, exp=True)), "malformed", "JwtParseError"),
        Case("exp_negative", "generic", mint(rs, claims(now, exp=-1)), "malformed", "JwtExpiredError"),
        Case("iss_is_a_number", "generic", mint(rs, claims(now, iss=5)), "malformed", "JwtParseError"),
        Case("sub_is_a_number", "generic", mint(rs, claims(now, sub=7)), "malformed", "JwtParseError"),
        Case("jti_is_a_number", "generic", mint(rs, claims(now, jti=7)), "malformed", "JwtParseError"),
        Case("aud_empty_array", "generic", mint(rs, claims(now, aud=[])), "malformed", "JwtInvalidAudienceError"),
        Case("aud_array_with_a_number", "generic", mint(rs, claims(now, aud=[AUDIENCE, 5])), "malformed",
             "JwtParseError"),
        Case("exp_fractional", "generic", mint(rs, claims(now, exp=now + 600.5)), ACCEPT, ACCEPT),
        Case("typ_media_type_form", "generic", mint(rs, claims(now), typ="application/at+jwt"), ACCEPT, ACCEPT),
        Case("proto_member", "generic",
             raw_payload(rs, now, json.dumps(claims(now), separators=(",", ":")).encode()[:-1]
                         + b',"__proto__":{"admin":true}}'), ACCEPT, ACCEPT,
             why_claims_differ="aws-jwt-verify deletes __proto__ members (prototype pollution guard); Python dicts "
                               "have no prototype, so we keep it as an ordinary claim nobody reads"),
        # one side accepts: each a deliberate rule of ours or a documented limit of aws-jwt-verify
        Case("no_exp", "generic", mint(rs, claims(now, exp=None)), "missing_claim", ACCEPT,
             "we require exp by default (issue 2, RFC 8725 3.10 spirit: a token must expire); aws-jwt-verify checks "
             "exp only when present"),
        Case("iat_in_future", "generic", mint(rs, claims(now, iat=now + 3600, nbf=None)), "issued_in_future", ACCEPT,
             "we bound iat by the leeway (a token minted by a clock an hour ahead); aws-jwt-verify does not read iat"),
        Case("no_sub", "generic", mint(rs, claims(now, sub=None)), "missing_claim", ACCEPT,
             "every Principal names its subject, so we require sub; aws-jwt-verify does not"),
        Case("typ_logout_jwt", "generic", mint(rs, claims(now), typ="logout+jwt"), "wrong_typ", ACCEPT,
             "explicit typing (RFC 8725 3.11): a logout/SET token is no bearer token; aws-jwt-verify ignores typ"),
        Case("id_token_markers_on_generic_access", "generic", mint(rs, claims(now, nonce="n-1"), typ=None),
             "wrong_token_use", ACCEPT,
             "a nonce marks an OIDC ID token (OIDC Core 2) and ID tokens never pass as access tokens; "
             "aws-jwt-verify's generic verifier has no notion of token use"),
        Case("crit_header", "generic", mint(rs, claims(now), header={"crit": ["urn:example:ext"],
                                                                       "urn:example:ext": 1}),
             "malformed", ACCEPT,
             "RFC 7515 4.1.11: a recipient MUST reject a JWS whose crit lists an extension it does not understand; "
             "aws-jwt-verify ignores crit"),
        Case("duplicate_member_names", "generic", duplicate_aud(rs, now), "malformed", ACCEPT,
             "RFC 7515 5.2 / RFC 8259: duplicate member names are ambiguous (first-wins and last-wins parsers "
             "disagree on the audience); we refuse them, JSON.parse keeps the last"),
        Case("padded_base64url", "generic", padded_segments(rs, now), "malformed", ACCEPT,
             "RFC 7515 2: base64url without padding; aws-jwt-verify's regex allows '='"),
        Case("non_canonical_signature_encoding", "generic", non_canonical_signature(rs, now), "malformed", ACCEPT,
             "strict base64url: two spellings of one signature would make tokens malleable (replay caches and "
             "verified-token caches key on the string); Node's base64 decoder drops the unused bits"),
        Case("invalid_utf8_payload", "generic", raw_payload(rs, now, invalid_utf8(rs, now)), "malformed", ACCEPT,
             "RFC 7519 7.2: the payload must be UTF-8; Node decodes invalid bytes to U+FFFD"),
        Case("lone_surrogate_in_payload", "generic", raw_payload(rs, now, lone_surrogate(rs, now)), "malformed",
             ACCEPT, "RFC 8259 8.2: an unpaired surrogate is no Unicode string; JSON.parse accepts it"),
        Case("exp_beyond_2_pow_53", "generic", mint(rs, claims(now, exp=10 ** 20)), "malformed", ACCEPT,
             "NumericDates are bounded below 2**53 (beyond it floats lose whole seconds); aws-jwt-verify takes any "
             "finite number, so a token with exp 1e20 never expires there"),
        Case("scope_as_array", "generic_scope", mint(rs, claims(now, scope=["orders:read"])), ACCEPT,
             "JwtParseError",
             "RFC 9068 2.2.3 defines scope as a space-separated string, which aws-jwt-verify insists on; we also "
             "read an array of strings, as some authorization servers emit it (each element one scope, never split, "
             "so an array cannot smuggle extra scopes)"),
        Case("token_larger_than_16KiB", "generic", mint(rs, claims(now, blob="x" * 17000)), "token_too_large",
             ACCEPT, "we bound the token size before decoding (DoS); aws-jwt-verify has no size limit"),
        Case("no_kid_single_candidate_key", "generic", mint(rs, claims(now), header={"kid": None}), ACCEPT,
             "JwtWithoutValidKidError",
             "without kid we use the one key that can verify the alg, when exactly one can (README rule); "
             "aws-jwt-verify requires kid whenever it holds a JWKS"),
        Case("rsa_1024_bit_key", "generic", mint(WEAK_KEY, claims(now)), "unknown_kid", ACCEPT,
             "RFC 7518 3.3: RSA keys must be at least 2048 bits, so we skip the 1024-bit key when loading the JWKS; "
             "aws-jwt-verify uses any RSA key"),
        Case("ps256", "generic_pss", mint(PSS_KEY, claims(now)), ACCEPT, "JwtInvalidSignatureAlgorithmError",
             "aws-jwt-verify 5.2.1 supports no RSA-PSS (its supportedSignatureAlgorithms lists RS*, ES*, EdDSA)"),
        Case("expired_20s_default_leeway", "generic_default_grace", mint(rs, claims(now, exp=now - 20)), ACCEPT,
             "JwtExpiredError", "defaults: our leeway is 60 s (issue 2), aws-jwt-verify's graceSeconds is 0"),
        # Cognito user pool tokens
        Case("cognito_access_token", "cognito_access", cognito(cognito_access(now)), ACCEPT, ACCEPT),
        Case("cognito_id_token", "cognito_id", cognito(cognito_id(now)), ACCEPT, ACCEPT),
        Case("cognito_global_issuer_format", "cognito_access",
             cognito(cognito_access(now, iss=POOL_ISSUER.replace("https://cognito-idp.", "https://issuer-cognito-idp."))),
             ACCEPT, ACCEPT),
        Case("cognito_in_group", "cognito_admins", cognito(cognito_access(now)), ACCEPT, ACCEPT),
        Case("cognito_id_token_as_access", "cognito_access", cognito(cognito_id(now)), "wrong_token_use",
             "CognitoJwtInvalidTokenUseError"),
        Case("cognito_access_token_as_id", "cognito_id", cognito(cognito_access(now)), "wrong_token_use",
             "CognitoJwtInvalidTokenUseError"),
        Case("cognito_access_wrong_client", "cognito_access", cognito(cognito_access(now, client_id="other-client")),
             "invalid_audience", "CognitoJwtInvalidClientIdError"),
        Case("cognito_access_aud_instead_of_client_id", "cognito_access",
             cognito(cognito_access(now, client_id=None, aud=CLIENT_ID)), "missing_claim",
             "CognitoJwtInvalidClientIdError"),
        Case("cognito_id_wrong_aud", "cognito_id", cognito(cognito_id(now, aud="other-client")), "invalid_audience",
             "CognitoJwtInvalidClientIdError"),
        Case("cognito_no_token_use", "cognito_access", cognito(cognito_access(now, token_use=None)), "missing_claim",
             "CognitoJwtInvalidTokenUseError"),
        Case("cognito_token_use_refresh", "cognito_access", cognito(cognito_access(now, token_use="refresh")),
             "wrong_token_use", "CognitoJwtInvalidTokenUseError"),
        Case("cognito_other_pool", "cognito_access",
             cognito(cognito_access(now, iss=POOL_ISSUER.replace("AbCdEf123", "Zz9Other"))), "unknown_issuer",
             "ParameterValidationError"),
        Case("cognito_expired", "cognito_access",
             cognito(cognito_access(now, iat=now - 7200, auth_time=now - 7200, exp=now - 3600)), "expired",
             "JwtExpiredError"),
        Case("cognito_not_in_group", "cognito_admins", cognito(cognito_access(now, **{"cognito:groups": ["users"]})),
             "insufficient_group", "CognitoJwtInvalidGroupError"),
        Case("cognito_no_groups", "cognito_admins", cognito(cognito_access(now, **{"cognito:groups": None})),
             "insufficient_group", "CognitoJwtInvalidGroupError"),
        Case("cognito_signed_by_other_key", "cognito_access",
             mint(SigningKey.generate("RS256", kid=COGNITO_KEY.kid), cognito_access(now), typ=None),
             "bad_signature", "JwtInvalidSignatureError"),
    ]
    return cases


# Collected once for the test ids and the coverage test; the tokens the verdict test uses are minted again when the
# module's first test runs (fresh_corpus), because several cases sit within seconds of the leeway edge and pytest
# may collect this module a minute or more before it runs it.
CORPUS = corpus()
_VERIFIERS: dict[str, Verifier] = {}


def our_verdict(setup_name: str, token: str) -> tuple[str, Any]:
    if setup_name not in _VERIFIERS:
        _VERIFIERS[setup_name] = Verifier([IssuerConfig(**SETUPS[setup_name].ours)], verified_cache_size=0)
    try:
        principal = _VERIFIERS[setup_name].verify(token, **SETUPS[setup_name].requirement)
    except TokenRejected as exc:
        return exc.code, None
    return ACCEPT, principal


@pytest.fixture(scope="module")
def reference():
    reference_available()
    with ReferenceVerifier() as verifier:
        yield verifier


@pytest.fixture(scope="module")
def fresh_corpus() -> dict[str, Case]:
    return {case.name: case for case in corpus()}


@pytest.mark.parametrize("name", [c.name for c in CORPUS])
def test_verdicts_match_the_reference(name: str, fresh_corpus: dict[str, Case], reference: ReferenceVerifier):
    case = fresh_corpus[name]
    ours, principal = our_verdict(case.setup, case.token)
    theirs = reference.verify(SETUPS[case.setup].reference, case.token)
    their_verdict = ACCEPT if theirs["valid"] else theirs["error"]
    assert (ours, their_verdict) == (case.ours, case.reference), (
        f"{case.name}: expected ours={case.ours} reference={case.reference}, got ours={ours} "
        f"reference={their_verdict} ({theirs.get('message', '')})")
    if ours == ACCEPT and their_verdict == ACCEPT:
        same = dict(principal.claims) == theirs["payload"]
        assert same != bool(case.why_claims_differ), (
            f"{case.name}: both accept, so both must read the same claims unless the case says why not")


def test_corpus_covers_agreement_and_documented_differences():
    agree_accept = [c for c in CORPUS if c.ours == ACCEPT and c.reference == ACCEPT]
    agree_reject = [c for c in CORPUS if c.ours != ACCEPT and c.reference != ACCEPT]
    differ = [c for c in CORPUS if c.why_different]
    assert len({c.name for c in CORPUS}) == len(CORPUS), "case names must be unique"
    assert len(agree_accept) >= 10 and len(agree_reject) >= 20 and differ
    # Every difference where the reference accepts and we refuse is a rule of ours; where we accept and the
    # reference refuses, a limit of the reference or a documented default. Neither may be an authorization check.
    assert not [c.name for c in differ if c.ours in ("insufficient_scope", "insufficient_group", "invalid_audience",
                                                     "unknown_issuer", "bad_signature", "expired")]


# --- random agreement where the rules coincide ----------------------------------------------------------------------

# Offsets from now, at least 10 s from every edge (+-GRACE and 0): both sides read the real clock.
_offsets = st.one_of(st.integers(-5000, -GRACE - 10), st.integers(-GRACE + 10, -10), st.integers(10, GRACE - 10),
                     st.integers(GRACE + 10, 5000))


@st.composite
def random_tokens(draw):
    alg = draw(st.sampled_from(ALGS))
    now = int(time.time())
    body = {"iss": draw(st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example"])), "sub": "user-1",
            "aud": draw(st.sampled_from([AUDIENCE, "other-api", [AUDIENCE, "x"], ["x", "y"]])),
            "exp": now + draw(_offsets), "iat": now - 10}
    if draw(st.booleans()):
        body["nbf"] = now + draw(_offsets)
    token = mint(KEYS[alg], body)
    head, payload, sig = token.split(".")
    tamper = draw(st.sampled_from(["none", "none", "signature", "payload", "kid", "alg"]))
    if tamper == "signature":
        i = draw(st.integers(0, len(sig) - 2))  # not the last character: its unused bits are a separate case
        sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    elif tamper == "payload":
        payload = segment(dict(body, sub="user-2"))
    elif tamper == "kid":
        head = segment({"alg": alg, "kid": KEYS[draw(st.sampled_from([a for a in ALGS if a != alg]))].kid,
                        "typ": "at+jwt"})
    elif tamper == "alg":
        head = segment({"alg": draw(st.sampled_from([a for a in ALGS if a != alg])), "kid": KEYS[alg].kid,
                        "typ": "at+jwt"})
    return f"{head}.{payload}.{sig}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(token=random_tokens())
def test_random_tokens_same_verdict(token: str, reference: ReferenceVerifier):
    ours, _ = our_verdict("generic", token)
    theirs = reference.verify(SETUPS["generic"].reference, token)
    assert (ours == ACCEPT) == theirs["valid"], f"ours={ours} reference={theirs.get('error', ACCEPT)}"
