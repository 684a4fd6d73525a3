"""Differential-testing setups shared by the reference-verifier tests: keys, each verifier configuration expressed for
both sides (lambdas.validation and npm aws-jwt-verify), claim builders, hostile-token builders and our verdict.

tests/security/test_reference_verifier.py (hand-written cases) and tests/security/test_reference_corpus.py (the
generated corpus) both build on this, so a setup or a hostile construction exists once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lambdas.validation import IssuerConfig, Principal, TokenRejected, Verifier
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, mint

ACCEPT = "accept"
GRACE = 60
ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA")
PSS_ALGS = ("PS256", "PS384", "PS512")
KEYS = {alg: SigningKey.generate(alg, kid=f"kid-{alg.lower()}") for alg in ALGS}
PSS_KEYS = {alg: SigningKey.generate(alg, kid=f"kid-{alg.lower()}") for alg in PSS_ALGS}
WEAK_KEY = SigningKey.generate("RS256", kid="kid-rsa-1024", rsa_bits=1024)  # below RFC 7518 3.3's 2048 bits
ENC_KEY = SigningKey.generate("RS256", kid="kid-enc")                        # published for encryption only
ATTACKER = SigningKey.generate("RS256", kid="kid-rs256")                     # same kid as the real RS256 key
GENERIC_JWKS = {"keys": [k.jwk() for k in KEYS.values()] + [WEAK_KEY.jwk(), ENC_KEY.jwk(use="enc")]}
PSS_JWKS = {"keys": [k.jwk() for k in PSS_KEYS.values()]}

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

    @property
    def profile(self) -> str:
        return self.ours.get("profile", "generic")


_GENERIC_REFERENCE = {"kind": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks": GENERIC_JWKS,
                      "graceSeconds": GRACE}

SETUPS = {
    "generic": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS, leeway_seconds=GRACE),
        _GENERIC_REFERENCE),
    "generic_default_grace": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS),
        {"kind": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks": GENERIC_JWKS}),
    "generic_scope": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS, leeway_seconds=GRACE),
        {**_GENERIC_REFERENCE, "scope": ["orders:read"]},
        {"scopes": ("orders:read",)}),
    # aws-jwt-verify has no algorithm allow-list (the JWK's alg is its only pin), so its side is plain "generic".
    "generic_rs256_only": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=("RS256",), leeway_seconds=GRACE),
        _GENERIC_REFERENCE),
    # aws-jwt-verify's generic verifier has no notion of token use, so its side is plain "generic".
    "generic_id": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=GENERIC_JWKS, algorithms=ALGS, leeway_seconds=GRACE,
             token_use="id"),
        _GENERIC_REFERENCE),
    "generic_pss": Setup(
        dict(issuer=ISSUER, audiences=[AUDIENCE], jwks=PSS_JWKS, algorithms=PSS_ALGS, leeway_seconds=GRACE),
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

_VERIFIERS: dict[str, Verifier] = {}


def our_verdict(setup_name: str, token: str) -> tuple[str, Principal | None]:
    """(ACCEPT, principal) or (our TokenRejected code, None) for `token` under SETUPS[setup_name]."""
    if setup_name not in _VERIFIERS:
        _VERIFIERS[setup_name] = Verifier([IssuerConfig(**SETUPS[setup_name].ours)], verified_cache_size=0)
    try:
        principal = _VERIFIERS[setup_name].verify(token, **SETUPS[setup_name].requirement)
    except TokenRejected as exc:
        return exc.code, None
    return ACCEPT, principal


# --- claims ---------------------------------------------------------------------------------------------------------

def claims(now: int, **overrides: Any) -> dict:
    """A generic access token's claims; an override of None removes the claim."""
    body = {"iss": ISSUER, "sub": "user-123", "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600,
            "jti": "j-1", "scope": "orders:read orders:write"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


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


# --- building hostile tokens from raw parts ------------------------------------------------------------------------

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def segment(obj: Any) -> str:
    return b64url_json(obj)


def json_text(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def header_for(key: SigningKey, **extra: Any) -> dict:
    return {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **extra}


def signed(key: SigningKey, header_segment: str, payload_segment: str, alg: str | None = None) -> str:
    """A token whose header/payload segments are given verbatim (padding, odd bytes) and correctly signed."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii'), alg))}"


def raw_payload(key: SigningKey, payload: bytes, header: dict | None = None) -> str:
    """A correctly signed token whose claims set is exactly `payload` (any bytes)."""
    return signed(key, segment(header or header_for(key)), b64url(payload))


def with_signature(token: str, signature: bytes) -> str:
    """`token` with its signature replaced by `signature` (encoded canonically)."""
    return f"{token.rsplit('.', 1)[0]}.{b64url(signature)}"


def signature_bytes(token: str) -> bytes:
    import base64
    sig = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))


def public_key_text(key: SigningKey, form: str) -> bytes:
    """The verifier's own public key as an attacker would find it published: PEM, DER, JWK JSON or OpenSSH text."""
    public = key.private_key.public_key()
    if form == "pem":
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if form == "der":
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if form == "jwk":
        return json_text(key.jwk()).encode()
    if form == "ssh":
        return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    raise ValueError(f"no public key form {form!r}")


def hmac_with_public_key(key: SigningKey, body: dict, *, form: str = "pem", hs_alg: str = "HS256",
                         kid: str | None = None) -> str:
    """The classic confusion: HMAC keyed with the verifier's own public key, hoping it is used as a shared secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[hs_alg]
    header = {"alg": hs_alg, "kid": kid or key.kid, "typ": "at+jwt"}
    signing_input = f"{segment(header)}.{segment(body)}"
    mac = hmac.new(public_key_text(key, form), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def ecdsa_der_signature(key: SigningKey, body: dict) -> str:
    """An ECDSA token whose signature is ASN.1 DER (what OpenSSL emits) instead of JWS's fixed-size r||s."""
    signing_input = f"{segment(header_for(key))}.{segment(body)}"
    der = key.private_key.sign(signing_input.encode(), ec.ECDSA(getattr(hashes, f"SHA{key.alg[2:]}")()))
    return f"{signing_input}.{b64url(der)}"


def padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def padded_segments(key: SigningKey, body: dict) -> str:
    """Header and payload with base64 '=' padding (RFC 7515 2 forbids it), signed over the padded text."""
    header = header_for(key)
    while len(segment(header)) % 4 == 0:
        header["x"] = header.get("x", "") + "p"
    body = dict(body)
    while len(segment(body)) % 4 == 0:
        body["pad"] = body.get("pad", "") + "p"
    return signed(key, padded(segment(header)), padded(segment(body)))


def spare_bits(text: str) -> int:
    """How many low bits of the last base64url character encode nothing (0 when the length is a multiple of 4)."""
    return {0: 0, 2: 4, 3: 2}[len(text) % 4]


def non_canonical_last_char(text: str) -> str:
    """`text` with one unused low bit of its last character set: the same bytes, another string."""
    assert spare_bits(text), "a segment whose length is a multiple of 4 has no unused bits"
    last = B64URL_ALPHABET.index(text[-1])
    assert last & ((1 << spare_bits(text)) - 1) == 0, "canonical base64url leaves the unused bits clear"
    return text[:-1] + B64URL_ALPHABET[last | 0b1]


def non_canonical_signature(token: str) -> str:
    """A valid token whose signature's last character has an unused low bit set (e.g. RS256: 256 bytes leave 4
    unused bits in the last of 342 characters)."""
    head, sig = token.rsplit(".", 1)
    return f"{head}.{non_canonical_last_char(sig)}"


def invalid_utf8(body: dict) -> bytes:
    """The claims set with a Latin-1 byte added: not UTF-8 (RFC 7519 7.2 step 8 requires UTF-8)."""
    return json_text(body).encode()[:-1] + b',"name":"caf\xe9"}'


def lone_surrogate(body: dict) -> bytes:
    """The claims set with an escaped unpaired surrogate: no Unicode string (RFC 8259 8.2)."""
    return json_text(body).encode()[:-1] + b',"name":"\\ud800"}'
