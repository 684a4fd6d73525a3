"""Verifier with remote keys end to end: real tokens checked against a JWKS (and a discovery document) served by a real
HTTP server on 127.0.0.1, through the cache, including rotation, outages and token-supplied key locations."""
from __future__ import annotations

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from lambdas.validation.jwks_cache import JwksCache
from tests.support.http_server import http_server  # noqa: F401 (fixture)
from tests.support.tokens import AUDIENCE, SigningKey, mint

PATH = "/jwks.json"


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate("RS256", kid="live-1")


@pytest.fixture(scope="module")
def next_signer() -> SigningKey:
    return SigningKey.generate("RS256", kid="live-2")


def rejection(call) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        call()
    return info.value


def test_verifies_tokens_against_a_remote_jwks(http_server, signer):
    issuer = http_server.base_url
    http_server.serve_json(PATH, signer.jwks())
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url(PATH), allow_insecure_http=True)])
    verifier.hydrate()
    for n in range(5):
        principal = verifier.verify(mint(signer, issuer=issuer, subject=f"user-{n}"))
        assert principal.subject == f"user-{n}"
    assert http_server.count(PATH) == 1


def test_verifies_tokens_through_oidc_discovery(http_server, signer):
    issuer = http_server.base_url
    http_server.serve_json("/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": http_server.url(PATH)})
    http_server.serve_json(PATH, signer.jwks())
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], allow_insecure_http=True)])
    assert verifier.verify(mint(signer, issuer=issuer)).issuer == issuer
    assert http_server.count("/.well-known/openid-configuration") == 1


def test_rotated_key_is_accepted_after_one_refetch_and_forgeries_are_not(http_server, signer, next_signer):
    issuer = http_server.base_url
    http_server.serve_json(PATH, signer.jwks())
    now = [0.0]
    config = IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url(PATH), allow_insecure_http=True, name="corp")
    cache = JwksCache(http_server.url(PATH), allow_insecure_http=True, clock=lambda: now[0])
    verifier = Verifier([config], key_sources={"corp": cache})
    verifier.verify(mint(signer, issuer=issuer))

    now[0] += 60  # past the refetch cooldown; the issuer publishes its next key and starts signing with it
    http_server.serve_json(PATH, {"keys": [signer.jwk(), next_signer.jwk()]})
    assert verifier.verify(mint(next_signer, issuer=issuer)).subject == "user-123"
    assert http_server.count(PATH) == 2

    forger = SigningKey.generate("RS256", kid="live-2")  # claims the new kid, signs with its own key
    assert rejection(lambda: verifier.verify(mint(forger, issuer=issuer))).code == "bad_signature"
    assert http_server.count(PATH) == 2


def test_issuer_down_at_cold_start_fails_closed(http_server, signer):
    issuer = http_server.base_url
    http_server.fail(PATH, status=503)
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url(PATH), allow_insecure_http=True)])
    err = rejection(lambda: verifier.verify(mint(signer, issuer=issuer)))
    assert err.code == "jwks_unavailable" and err.status == 401


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_token_supplied_key_locations_are_never_fetched(http_server, signer, member):
    issuer = http_server.base_url
    attacker = SigningKey.generate("RS256", kid="live-1")
    http_server.serve_json(PATH, signer.jwks())
    http_server.serve_json("/attacker-keys", attacker.jwks())
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url(PATH), allow_insecure_http=True)])
    token = mint(attacker, issuer=issuer, header={member: http_server.url("/attacker-keys")})
    with pytest.raises(TokenRejected):
        verifier.verify(token)
    assert http_server.count("/attacker-keys") == 0
