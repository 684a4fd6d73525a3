"""DPoP proofs (RFC 9449) and JWK thumbprints (RFC 7638): the RFCs' examples as known answers, then real proofs
signed with fresh keys, each rule broken once."""
from __future__ import annotations

import time

import pytest

from lambdas.validation.dpop import (access_token_hash, check_dpop_proof, jwk_thumbprint, normalise_htu,
                                     www_authenticate_dpop)
from lambdas.validation.dpop_nonce import DpopNonceRequired, DpopNonces
from lambdas.validation.errors import TokenRejected
from lambdas.validation.replay import MemoryReplayStore
from tests.support.dpop import (NOW, RFC7638_JWK, RFC7638_THUMBPRINT, RFC9449_ACCESS_TOKEN, RFC9449_ATH, RFC9449_JKT,
                                RFC9449_JWK, RFC9449_PROOF_IAT, RFC9449_RESOURCE_PROOF, RFC9449_RESOURCE_URI,
                                at_test_time, make_proof, thumbprint)
from tests.support.tokens import SigningKey, b64url, b64url_json

ALGS = ("ES256", "PS256", "RS256", "EdDSA")
URI = "https://api.example.com/orders"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"  # only hashed (ath), never verified here


@pytest.fixture(scope="module")
def client_key() -> SigningKey:
    return SigningKey.generate("ES256")


def check(proof, key=None, *, method="GET", uri=URI, token=TOKEN, jkt=None, now=None, replay=None, **kw):
    return check_dpop_proof(proof, method=method, uri=uri, access_token=token,
                            expected_thumbprint=jkt or thumbprint(key), algorithms=kw.pop("algorithms", ALGS),
                            max_age_seconds=kw.pop("max_age_seconds", 60), now=time.time() if now is None else now,
                            replay=MemoryReplayStore() if replay is None else replay, **kw)


def test_rfc7638_thumbprint_known_answer():
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_rfc9449_thumbprint_and_access_token_hash_known_answers():
    assert jwk_thumbprint(RFC9449_JWK) == RFC9449_JKT
    assert access_token_hash(RFC9449_ACCESS_TOKEN) == RFC9449_ATH


def test_rfc9449_figure_13_proof_is_accepted_once_then_refused_as_replay():
    replay = MemoryReplayStore(clock=lambda: RFC9449_PROOF_IAT)
    proof = check(RFC9449_RESOURCE_PROOF, method="GET", uri=RFC9449_RESOURCE_URI, token=RFC9449_ACCESS_TOKEN,
                  jkt=RFC9449_JKT, now=RFC9449_PROOF_IAT + 5, replay=replay)
    assert (proof.thumbprint, proof.jti, proof.issued_at) == (RFC9449_JKT, "e1j3V_bKic8-LAEB", RFC9449_PROOF_IAT)
    with pytest.raises(TokenRejected, match="already used") as info:
        check(RFC9449_RESOURCE_PROOF, method="GET", uri=RFC9449_RESOURCE_URI, token=RFC9449_ACCESS_TOKEN,
              jkt=RFC9449_JKT, now=RFC9449_PROOF_IAT + 6, replay=replay)
    assert info.value.code == "invalid_dpop_proof"


def test_rfc9449_figure_13_proof_for_another_token_is_refused():
    with pytest.raises(TokenRejected, match="ath is not the hash"):
        check(RFC9449_RESOURCE_PROOF, method="GET", uri=RFC9449_RESOURCE_URI, token=RFC9449_ACCESS_TOKEN + "x",
              jkt=RFC9449_JKT, now=RFC9449_PROOF_IAT)


@pytest.mark.parametrize("alg", ALGS)
def test_a_fresh_proof_of_every_allowed_algorithm_passes(alg):
    key = SigningKey.generate(alg)
    assert check(make_proof(key, "GET", URI, TOKEN), key).thumbprint == thumbprint(key)


@pytest.mark.parametrize("given, seen", [
    ("https://API.Example.com:443/orders", "https://api.example.com/orders"),
    ("https://api.example.com/orders?page=2#top", "https://api.example.com/orders"),
    ("https://api.example.com/a/./b/../orders", "https://api.example.com/a/orders"),
    ("https://api.example.com/%7Eme/%2f", "https://api.example.com/~me/%2F"),
    ("http://localhost:80", "http://localhost/"),
])
def test_htu_is_compared_after_rfc3986_normalisation(given, seen):
    assert normalise_htu(given) == normalise_htu(seen)


@pytest.mark.parametrize("uri", ["ftp://api.example.com/x", "/orders", "https://:443/x", "https://api.example.com:x/"])
def test_htu_that_is_not_an_http_uri_is_refused(uri):
    with pytest.raises(ValueError):
        normalise_htu(uri)


def test_query_of_the_request_is_ignored(client_key):
    check(make_proof(client_key, "GET", URI, TOKEN), client_key, uri=URI + "?page=2")


REFUSALS = {
    "typ missing": ({"header": {"typ": None}}, "has no typ header"),
    "typ of a JWT": ({"header": {"typ": "JWT"}}, "typ is 'JWT'"),
    "alg none": ({"header": {"alg": "none"}}, "not a well-formed JWT"),
    "alg HS256": ({"header": {"alg": "HS256"}}, "not a well-formed JWT"),
    "alg not in the issuer's list": ({"header": {"alg": "ES384"}}, "do not allow"),
    "no jwk": ({"header": {"jwk": None}}, 'no "jwk" object'),
    "symmetric jwk": ({"header": {"jwk": {"kty": "oct", "k": "c2VjcmV0"}}}, "symmetric"),
    "method": ({"claims": {"htm": "POST"}}, "is for method 'POST'"),
    "uri": ({"claims": {"htu": "https://api.example.com/admin"}}, "htu is not this request's URI"),
    "other host": ({"claims": {"htu": "https://evil.example.com/orders"}}, "htu is not this request's URI"),
    "no htu": ({"claims": {"htu": None}}, "htu is not this request's URI"),
    "iat old": ({"claims": {"iat": NOW - 600}}, "more than 60 s from now"),
    "iat future": ({"claims": {"iat": NOW + 600}}, "more than 60 s from now"),
    "iat string": ({"claims": {"iat": "now"}}, "iat is missing"),
    "no jti": ({"claims": {"jti": None}}, "no jti"),
    "no ath": ({"claims": {"ath": None}}, "ath is not the hash"),
    "ath of another token": ({"claims": {"ath": access_token_hash("another")}}, "ath is not the hash"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_each_broken_rule_is_refused(client_key, name):
    overrides, message = REFUSALS[name]
    proof = make_proof(client_key, "GET", URI, TOKEN, **at_test_time(overrides))
    with pytest.raises(TokenRejected, match=message) as info:
        check(proof, client_key)
    assert info.value.code == "invalid_dpop_proof" and info.value.hint


def test_private_key_in_the_header_is_refused(client_key):
    private = dict(client_key.jwk(include_alg=False, use=None), d=b64url(b"\x01" * 32))
    with pytest.raises(TokenRejected, match="private key member"):
        check(make_proof(client_key, "GET", URI, TOKEN, header={"jwk": private}), client_key)


def test_proof_signed_by_another_key_than_the_header_names(client_key):
    other = SigningKey.generate("ES256")
    forged = make_proof(other, "GET", URI, TOKEN, header={"jwk": make_jwk(client_key)})
    with pytest.raises(TokenRejected, match="signature does not verify"):
        check(forged, client_key)


def make_jwk(key):
    from tests.support.dpop import public_jwk
    return public_jwk(key)


def test_proof_by_a_key_the_token_is_not_bound_to(client_key):
    other = SigningKey.generate("ES256")
    with pytest.raises(TokenRejected, match="another key than the one the access token is bound to"):
        check(make_proof(other, "GET", URI, TOKEN), jkt=thumbprint(client_key))


def test_altered_proof_claims_break_the_signature(client_key):
    header, _, signature = make_proof(client_key, "GET", URI, TOKEN).split(".")
    body = b64url_json({"jti": "x", "htm": "DELETE", "htu": URI, "iat": int(time.time()),
                        "ath": access_token_hash(TOKEN)})
    with pytest.raises(TokenRejected, match="signature does not verify"):
        check(f"{header}.{body}.{signature}", client_key)


@pytest.mark.parametrize("proof, message", [(None, "no DPoP proof"), ("", "no DPoP proof"),
                                            (("a", "b"), "more than one DPoP header"),
                                            ("x" * 5000, "more than 4096"), ("a.b", "not a well-formed JWT")])
def test_missing_doubled_oversized_or_garbled_header(client_key, proof, message):
    with pytest.raises(TokenRejected, match=message):
        check(proof, client_key)


def test_a_refused_proof_does_not_spend_its_jti(client_key):
    replay = MemoryReplayStore()
    proof = make_proof(client_key, "GET", URI, TOKEN)
    with pytest.raises(TokenRejected):
        check(proof, client_key, method="POST", replay=replay)
    check(proof, client_key, replay=replay)
    assert len(replay) == 1


NONCE_KEY = DpopNonces(b"k" * 32)


@pytest.mark.parametrize("nonce", [None, "", "stale-or-made-up", 7, DpopNonces(b"o" * 32).current()])
def test_nonce_required_by_the_route_is_asked_for_with_a_fresh_one(client_key, nonce):
    replay = MemoryReplayStore()
    proof = make_proof(client_key, "GET", URI, TOKEN, claims={"nonce": nonce})
    with pytest.raises(DpopNonceRequired) as info:
        check(proof, client_key, nonces=NONCE_KEY, replay=replay)
    assert info.value.code == "use_dpop_nonce" and info.value.dpop_nonce == NONCE_KEY.current()
    assert len(replay) == 0   # the retry is a new proof; the refused one spent nothing
    retry = make_proof(client_key, "GET", URI, TOKEN, claims={"nonce": info.value.dpop_nonce})
    assert check(retry, client_key, nonces=NONCE_KEY, replay=replay).jti
    assert len(replay) == 1


def test_nonce_is_checked_only_after_the_signature(client_key):
    # A proof signed by another key never learns anything from its nonce: it is refused as the wrong key.
    other = SigningKey.generate("ES256")
    with pytest.raises(TokenRejected) as info:
        check(make_proof(other, "GET", URI, TOKEN), client_key, nonces=NONCE_KEY)
    assert info.value.code == "invalid_dpop_proof"


def test_full_replay_store_fails_closed(client_key):
    replay = MemoryReplayStore(max_entries=1)
    check(make_proof(client_key, "GET", URI, TOKEN), client_key, replay=replay)
    with pytest.raises(TokenRejected) as info:
        check(make_proof(client_key, "GET", URI, TOKEN), client_key, replay=replay)
    assert info.value.code == "replay_store_unavailable"


def test_www_authenticate_challenge_names_the_error_and_algs():
    rejection = TokenRejected("invalid_dpop_proof", "x")
    assert www_authenticate_dpop(rejection, ALGS) == 'DPoP error="invalid_dpop_proof", algs="ES256 PS256 RS256 EdDSA"'
    assert www_authenticate_dpop(TokenRejected("expired", "x"), ("ES256",)) == 'DPoP error="invalid_token", algs="ES256"'
    assert www_authenticate_dpop(None, ("ES256",)) == 'DPoP algs="ES256"'
