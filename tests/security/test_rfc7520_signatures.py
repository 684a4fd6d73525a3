"""RFC 7520 section 4 signature examples verify through verify_jws with the RFC's own keys (which carry no "alg").

The figures and keys are read from the Wycheproof JOSE file, which reproduces them verbatim (tcId 345-348: Figure
13 RS256, Figure 20 PS384, Figure 27 ES512, Figure 35 HS256). RS256 is deterministic, so the signature bytes are also
re-derived from the RFC's private key; PS384 and ES512 signatures are randomised, so only verification can be checked.
Section 4.4 (HMAC-SHA2) is a known answer the other way round: the figure's MAC is recomputed from the RFC's shared
key to show the example is intact, and authgate must refuse both the key and the token (never HMAC, RFC 8725 3.1).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.validation.errors import TokenRejected
from lambdas.validation.jwk import KeySet, b64url_decode, parse_jwk
from lambdas.validation.jws import verify_jws
from lambdas.validation.key_source import StaticKeySource
from tests.support.required import unavailable

WYCHEPROOF = Path(__file__).resolve().parents[3] / "shared/testdata/wycheproof"
RFC7520_PAYLOAD_START = "It\u2019s a dangerous business, Frodo, going out your door."
FIGURES = {345: ("RS256", "4.1"), 346: ("PS384", "4.2"), 347: ("ES512", "4.3")}
HMAC_FIGURE = 348  # 4.4, HS256

if not WYCHEPROOF.is_dir():
    unavailable(f"Wycheproof vectors not found at {WYCHEPROOF} (they live in ../shared/testdata next to the repo)",
                module_level=True)


def _figures() -> dict[int, tuple[dict, str]]:
    doc = json.loads((WYCHEPROOF / "json_web_signature_test.json").read_text())
    out = {}
    for group in doc["testGroups"]:
        for test in group["tests"]:
            if test["tcId"] in FIGURES or test["tcId"] == HMAC_FIGURE:
                out[test["tcId"]] = (group, test["jws"])
    return out


FOUND = _figures()


def _rfc_public_key(group: dict) -> dict:
    """The RFC's published key: public members only, and no "alg" (RFC 7520 3.2/3.3/3.4 do not set one)."""
    key = group.get("public") or group["private"]
    return {k: v for k, v in key.items() if k not in ("alg", "d", "p", "q", "dp", "dq", "qi")}


@pytest.mark.parametrize("tc_id", sorted(FIGURES))
def test_rfc7520_signature_example_verifies(tc_id):
    alg, section = FIGURES[tc_id]
    group, jws = FOUND[tc_id]
    keys = StaticKeySource(KeySet.from_jwks({"keys": [_rfc_public_key(group)]}, source=f"RFC 7520 {section}"))
    header, payload = verify_jws(jws, keys, algorithms=[alg])
    assert header == {"alg": alg, "kid": "bilbo.baggins@hobbiton.example"}
    assert payload.decode("utf-8").startswith(RFC7520_PAYLOAD_START)
    # The same figure with one payload byte changed must fail.
    head, body, sig = jws.split(".")
    altered = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(TokenRejected) as rejected:
        verify_jws(f"{head}.{altered}.{sig}", keys, algorithms=[alg])
    assert rejected.value.code == "bad_signature"


def test_rfc7520_rs256_signature_bytes_are_reproduced():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    group, jws = FOUND[345]
    private = group["private"]
    number = lambda name: int.from_bytes(b64url_decode(private[name].encode()), "big")  # noqa: E731
    public_numbers = rsa.RSAPublicNumbers(number("e"), number("n"))
    key = rsa.RSAPrivateNumbers(number("p"), number("q"), number("d"), number("dp"), number("dq"), number("qi"),
                                public_numbers).private_key()
    signing_input, _, signature = jws.rpartition(".")
    again = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert again == b64url_decode(signature.encode())


def test_rfc7520_key_is_bound_to_its_alg_when_it_declares_one():
    group, jws = FOUND[346]  # Figure 20 is PS384; a key declaring alg PS256 must not verify it
    declared = dict(_rfc_public_key(group), alg="PS256")
    keys = StaticKeySource(KeySet.from_jwks({"keys": [declared]}, source="PS256-bound key"))
    with pytest.raises(TokenRejected) as rejected:
        verify_jws(jws, keys, algorithms=["PS256", "PS384"])
    assert rejected.value.code == "alg_not_allowed"


def test_rfc7520_hmac_example_is_intact_and_refused():
    import hashlib
    import hmac

    group, jws = FOUND[HMAC_FIGURE]
    secret = group.get("private") or group["public"]
    assert secret["kty"] == "oct"
    signing_input, _, mac = jws.rpartition(".")
    expected = hmac.new(b64url_decode(secret["k"].encode()), signing_input.encode(), hashlib.sha256).digest()
    assert expected == b64url_decode(mac.encode()), "the figure no longer matches RFC 7520 4.4"
    with pytest.raises(ValueError, match="symmetric"):
        parse_jwk(secret)
    assert not KeySet.from_jwks({"keys": [secret]}, source="RFC 7520 4.4").keys  # skipped, never a verifier
    # Even with an asymmetric key under the same kid and HS256 asked for, the token is refused.
    rsa_group, _ = FOUND[345]
    decoy = dict(_rfc_public_key(rsa_group), kid=secret.get("kid"))
    keys = StaticKeySource(KeySet.from_jwks({"keys": [decoy]}, source="RFC 7520 RSA key"))
    with pytest.raises(TokenRejected) as rejected:
        verify_jws(jws, keys, algorithms=["RS256", "HS256"])
    assert rejected.value.code == "unsupported_alg"
