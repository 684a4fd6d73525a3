"""Project Wycheproof vectors through authgate's JWK parsing and verification path.

- JOSE JWS/JWK vectors (compact JWS) go through the full JWS layer: KeySet.from_jwks -> verify_jws (strict
  structure, header rules, alg allow-list, key selection by kid/alg, signature). Their payloads are not JWT claims
  sets ("foo"), so the claim rules cannot apply; the signature layer is the path under test.
- Raw RSA PKCS#1 v1.5, RSA-PSS, ECDSA P-256 (IEEE P1363) and Ed25519 vectors go through parse_jwk(publicKeyJwk)
  and JsonWebKey.verify.

Labels overridden (and why) - everything else must give exactly the labelled verdict:
- Every HMAC (HS256/384/512) vector labelled valid: authgate never accepts HMAC-signed tokens and refuses
  symmetric ("oct") keys outright (RFC 8725 3.1/3.2; DESIGN: asymmetric issuers only). Expected: invalid.
- json_web_signature tcId 346/350 (RFC 7520 Figure 20): the vector's key declares "alg": "PS256" but the JWS is
  PS384. A JWK's alg binds the key to that algorithm (RFC 7517 4.4, RFC 8725 3.1), so we refuse. The same signature
  verifies with the RFC's own key, which has no alg (test_rfc7520.py).
- json_web_signature tcId 347/351 (RFC 7520 Figure 27): the vector's key declares "alg": "ES521", which is not a
  JWS algorithm (RFC 7518 registers ES512 for P-521); a key declaring an unknown alg is refused. The signature
  verifies with the RFC's own key (test_rfc7520.py).
- "acceptable" raw vectors (RSA MissingNull DigestInfo): either verdict is allowed; we reject (exact DER encoding).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.validation.errors import TokenRejected
from lambdas.validation.jwk import KeySet, parse_jwk
from lambdas.validation.jws import verify_jws
from lambdas.validation.key_source import StaticKeySource
from tests.support.required import unavailable

WYCHEPROOF = Path(__file__).resolve().parents[3] / "shared/testdata/wycheproof"
ALL_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
OVERRIDDEN_TO_INVALID = {
    "json_web_signature_test.json": {346: "key alg PS256 binds it; JWS is PS384", 350: "same as 346",
                                     347: "key declares unregistered alg ES521", 351: "same as 347"},
}

if not WYCHEPROOF.is_dir():
    unavailable(f"Wycheproof vectors not found at {WYCHEPROOF} (they live in ../shared/testdata next to the repo)",
                module_level=True)


def _load(name: str) -> dict:
    return json.loads((WYCHEPROOF / name).read_text())


def _public_keyset(group: dict) -> dict:
    """The key set a verifier would hold: the group's public keys, or its private keys with private parts removed
    (what an issuer would publish)."""
    keys = group.get("public") or group.get("private")
    keys = keys["keys"] if "keys" in keys else [keys]
    return {"keys": [{k: v for k, v in key.items() if k not in PRIVATE_MEMBERS or key.get("kty") == "oct"}
                     for key in keys]}


def _jose_cases():
    for name in ("json_web_signature_test.json", "json_web_key_test.json"):
        overrides = OVERRIDDEN_TO_INVALID.get(name, {})
        for group in _load(name)["testGroups"]:
            for test in group["tests"]:
                expected = test["result"]
                if expected == "valid" and (_header_alg(test["jws"]).startswith("HS") or test["tcId"] in overrides):
                    expected = "invalid"
                yield pytest.param(group, test, expected, id=f"{name.split('_test')[0]}-{test['tcId']}")


def _header_alg(jws: str) -> str:
    """The alg a vector's header names (lenient, only to find the HMAC vectors to relabel)."""
    import base64
    segment = jws.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        return ""
    return str(header.get("alg", "")) if isinstance(header, dict) else ""


@pytest.mark.parametrize("group,test,expected", list(_jose_cases()))
def test_jose_vector(group, test, expected):
    key_set = KeySet.from_jwks(_public_keyset(group), source="wycheproof")
    try:
        verify_jws(test["jws"], StaticKeySource(key_set), algorithms=ALL_ALGS)
        verdict = "valid"
    except TokenRejected as exc:
        verdict = "invalid"
        assert exc.code in {"malformed", "unsupported_alg", "alg_not_allowed", "unknown_kid", "bad_signature",
                            "token_too_large"}
    assert verdict == expected, f"tcId {test['tcId']} {test['comment']}: {verdict}, expected {expected}"


RAW_FILES = {
    "rsa_signature_2048_sha256_test.json": ("keyJwk", "RS256"),
    "rsa_pss_2048_sha256_mgf1_32_test.json": ("publicKeyJwk", "PS256"),
    "ecdsa_secp256r1_sha256_p1363_test.json": ("publicKeyJwk", "ES256"),
    "ed25519_test.json": ("publicKeyJwk", "EdDSA"),
}


def _raw_cases():
    for name, (jwk_field, alg) in RAW_FILES.items():
        for group in _load(name)["testGroups"]:
            for test in group["tests"]:
                yield pytest.param(group.get(jwk_field) or _ec_jwk(group["publicKey"]), alg, test, id=f"{name.split('_test')[0]}-{test['tcId']}")


def _ec_jwk(public_key: dict) -> dict:
    """A P-256 JWK from the group's hex coordinates (a few ECDSA groups carry no publicKeyJwk)."""
    from tests.support.tokens import b64url
    assert public_key["curve"] == "secp256r1"
    coordinate = lambda h: b64url(int(h, 16).to_bytes(32, "big"))  # noqa: E731
    return {"kty": "EC", "crv": "P-256", "x": coordinate(public_key["wx"]), "y": coordinate(public_key["wy"])}


@pytest.mark.parametrize("jwk,alg,test", list(_raw_cases()))
def test_raw_signature_vector(jwk, alg, test):
    jwk = {k: v for k, v in jwk.items() if k != "alg" or v == alg}
    key = parse_jwk(jwk)
    verdict = key.verify(alg, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
    if test["result"] == "acceptable":
        assert verdict is False, "we accept only the exact DER DigestInfo encoding"
    else:
        assert verdict == (test["result"] == "valid"), f"tcId {test['tcId']} {test['comment']} {test['flags']}"


def test_every_vector_file_is_exercised():
    counts = {name: sum(len(g["tests"]) for g in _load(name)["testGroups"])
              for name in [*RAW_FILES, "json_web_signature_test.json", "json_web_key_test.json"]}
    assert all(counts.values()), counts
    assert sum(counts.values()) > 1000
