"""JWK parsing, key/algorithm compatibility and key sets, with real keys and real signatures."""
from __future__ import annotations

import pytest

from lambdas.validation.errors import TokenRejected
from lambdas.validation.jwk import KeySet, b64url_decode, parse_jwk
from lambdas.validation.key_source import KeySource, StaticKeySource
from tests.support.tokens import SigningKey, b64url

ALL_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_every_algorithm_verifies_its_own_signature_and_rejects_a_tampered_one(alg):
    key = SigningKey.generate(alg)
    jwk = parse_jwk(key.jwk())
    message = b"header.payload"
    signature = key.sign(message)
    assert jwk.supports(alg)
    assert jwk.verify(alg, message, signature)
    assert not jwk.verify(alg, message + b"x", signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not jwk.verify(alg, message, tampered)


def test_rsa_key_without_alg_supports_every_rsa_algorithm_but_no_other(signing_key):
    jwk = parse_jwk(signing_key.jwk(include_alg=False))
    assert set(jwk.algorithms) == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    for alg in ("ES256", "EdDSA", "HS256", "none"):
        assert not jwk.supports(alg)
        assert not jwk.verify(alg, b"m", b"s")


def test_a_jwk_alg_member_narrows_the_key_to_that_algorithm(signing_key):
    jwk = parse_jwk(signing_key.jwk())
    assert jwk.algorithms == ("RS256",)
    ps_signature = signing_key.sign(b"m", "PS256")
    assert not jwk.verify("PS256", b"m", ps_signature)


@pytest.mark.parametrize("alg,other", [("ES256", "ES384"), ("ES384", "ES512"), ("ES512", "ES256")])
def test_ec_curve_fixes_the_algorithm(alg, other):
    jwk = parse_jwk(SigningKey.generate(alg).jwk(include_alg=False))
    assert jwk.algorithms == (alg,)
    assert not jwk.supports(other)


def test_ecdsa_signature_of_wrong_length_is_invalid_not_an_error():
    key = SigningKey.generate("ES256")
    jwk = parse_jwk(key.jwk())
    signature = key.sign(b"m")
    assert not jwk.verify("ES256", b"m", signature[:-1])
    assert not jwk.verify("ES256", b"m", signature + b"\x00")
    assert not jwk.verify("ES256", b"m", b"")


def test_rsa_alg_member_incompatible_with_key_type_is_refused(signing_key):
    jwk = signing_key.jwk()
    jwk["alg"] = "ES256"
    with pytest.raises(ValueError, match="cannot verify"):
        parse_jwk(jwk)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi"])
def test_private_rsa_members_are_refused(signing_key, member):
    jwk = dict(signing_key.jwk(), **{member: "AQAB"})
    with pytest.raises(ValueError, match="private key member"):
        parse_jwk(jwk)


def test_private_ec_and_okp_members_are_refused():
    for alg in ("ES256", "EdDSA"):
        jwk = dict(SigningKey.generate(alg).jwk(), d="AQAB")
        with pytest.raises(ValueError, match="private"):
            parse_jwk(jwk)


def test_symmetric_keys_are_refused():
    with pytest.raises(ValueError, match="symmetric"):
        parse_jwk({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"})


def test_short_rsa_keys_are_refused():
    small = SigningKey.generate("RS256", rsa_bits=1024)
    with pytest.raises(ValueError, match="at least 2048"):
        parse_jwk(small.jwk())


@pytest.mark.parametrize("jwk,message", [
    ("not a dict", "JSON object"),
    ({}, "kty"),
    ({"kty": "RSA", "e": "AQAB"}, '"n"'),
    ({"kty": "RSA", "n": "a+b/", "e": "AQAB"}, "base64url"),
    ({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}, "not supported"),
    ({"kty": "OKP", "crv": "X25519", "x": "AA"}, "not supported"),
    ({"kty": "DSA"}, "unsupported kty"),
    ({"kty": "RSA", "kid": 7}, "must be a string"),
])
def test_malformed_jwks_raise_a_clear_value_error(jwk, message):
    with pytest.raises(ValueError, match=message):
        parse_jwk(jwk)


def test_ec_point_not_on_the_curve_is_refused():
    jwk = SigningKey.generate("ES256").jwk()
    y = bytearray(b64url_decode(jwk["y"].encode()))
    y[-1] ^= 1
    jwk["y"] = b64url(bytes(y))
    with pytest.raises(ValueError, match="not a point"):
        parse_jwk(jwk)


def test_ec_coordinates_must_be_full_length():
    jwk = SigningKey.generate("ES256").jwk()
    jwk["x"] = b64url(b64url_decode(jwk["x"].encode())[1:])
    with pytest.raises(ValueError, match="exactly 32 octets"):
        parse_jwk(jwk)


def test_keys_are_immutable(signing_key):
    jwk = parse_jwk(signing_key.jwk())
    with pytest.raises(AttributeError):
        jwk.alg = "PS256"


@pytest.mark.parametrize("text,ok", [
    (b"", True), (b"AQAB", True), (b"AQ", True), (b"AQA", True),
    (b"AQ==", False), (b"A", False), (b"AR", False), (b"AQB", False), (b"a+b/", False), (b"a b", False),
    (b"AQ\n", False), (b"-_-_", True),
])
def test_base64url_is_strict_and_canonical(text, ok):
    if ok:
        b64url_decode(text)
    else:
        with pytest.raises(ValueError):
            b64url_decode(text)


def test_key_set_skips_and_explains_unusable_keys(signing_key):
    enc = dict(signing_key.jwk(), kid="enc", use="enc")
    wrap = dict(signing_key.jwk(), kid="wrap", key_ops=["wrapKey"])
    weird = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    good = signing_key.jwk()
    ks = KeySet.from_jwks({"keys": [enc, wrap, weird, good, "junk"]}, source="test")
    assert ks.kids == (signing_key.kid,)
    assert len(ks.skipped) == 4
    assert any("use is 'enc'" in s for s in ks.skipped)
    assert any("key_ops" in s for s in ks.skipped)
    assert any("symmetric" in s for s in ks.skipped)


@pytest.mark.parametrize("doc", [None, [], {"keys": {}}, {"key": []}, "{}"])
def test_key_set_requires_a_keys_array(doc):
    with pytest.raises(ValueError, match='"keys" array'):
        KeySet.from_jwks(doc, source="test")


def test_find_by_kid_and_alg():
    rsa = SigningKey.generate("RS256", kid="a")
    ec = SigningKey.generate("ES256", kid="b")
    ks = KeySet.from_jwks({"keys": [rsa.jwk(), ec.jwk()]}, source="test")
    assert ks.find("a", "RS256").kid == "a"
    assert ks.find("b", "ES256").kid == "b"
    assert ks.find("a", "ES256") is None
    assert ks.find("zzz", "RS256") is None
    # No kid: only when exactly one key can verify that algorithm.
    assert ks.find(None, "ES256").kid == "b"
    two = KeySet.from_jwks({"keys": [rsa.jwk(), SigningKey.generate("RS256", kid="c").jwk()]}, source="t")
    assert two.find(None, "RS256") is None


def test_same_kid_for_two_key_types_picks_the_one_matching_alg():
    rsa = SigningKey.generate("RS256", kid="same")
    ec = SigningKey.generate("ES256", kid="same")
    ks = KeySet.from_jwks({"keys": [rsa.jwk(), ec.jwk()]}, source="test")
    assert ks.find("same", "ES256").kty == "EC"
    assert ks.find("same", "RS256").kty == "RSA"


def test_static_key_source_raises_unknown_kid_and_alg_mismatch():
    rsa = SigningKey.generate("RS256", kid="a")
    source = StaticKeySource.from_jwks({"keys": [rsa.jwk()]})
    assert isinstance(source, KeySource)
    source.hydrate()
    assert source.get_key("a", "RS256").kid == "a"
    with pytest.raises(TokenRejected) as unknown:
        source.get_key("../../etc/passwd" * 20, "RS256")
    assert unknown.value.code == "unknown_kid"
    assert len(unknown.value.message) < 200
    with pytest.raises(TokenRejected) as mismatch:
        source.get_key("a", "ES256")
    assert mismatch.value.code == "alg_not_allowed"


def test_static_key_source_from_file(tmp_path):
    import json
    rsa = SigningKey.generate("RS256", kid="file-key")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(rsa.jwks()))
    assert StaticKeySource.from_file(str(path)).get_key("file-key", "RS256").kid == "file-key"
    with pytest.raises(ValueError, match="cannot read JWKS file"):
        StaticKeySource.from_file(str(tmp_path / "missing.json"))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not UTF-8|not valid JSON"):
        StaticKeySource.from_file(str(path))
