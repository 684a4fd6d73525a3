"""The Verifier wired to remote key sources over a real HTTP server on 127.0.0.1: jwks_uri, OIDC discovery, key
rotation, hydrate(), and failing closed when the issuer's keys cannot be had."""
from __future__ import annotations

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.tokens import AUDIENCE, SigningKey, mint, standard_claims


@pytest.fixture(scope="module")
def keys():
    return SigningKey.generate("RS256", kid="old"), SigningKey.generate("ES256", kid="new")


def test_jwks_uri_verifies_from_the_cache(http_server, keys):  # noqa: F811
    old, _ = keys
    issuer = http_server.url("/issuer")
    http_server.serve_json("/keys", {"keys": [old.jwk()]})
    v = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url("/keys"), allow_insecure_http=True)])
    v.hydrate()
    assert http_server.count("/keys") == 1
    for _ in range(3):
        assert v.verify(mint(old, standard_claims(issuer=issuer))).issuer == issuer
    assert http_server.count("/keys") == 1


def test_a_rotated_key_is_picked_up_after_the_refetch_cooldown(http_server, keys):  # noqa: F811
    from lambdas.validation.jwks_cache import JwksCache
    old, new = keys
    issuer = http_server.url("/rotating")
    http_server.serve_json("/rotating/keys", {"keys": [old.jwk()]})
    monotonic = [1000.0]
    source = JwksCache(http_server.url("/rotating/keys"), allow_insecure_http=True, clock=lambda: monotonic[0],
                       refetch_cooldown=30)
    v = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url("/rotating/keys"),
                               allow_insecure_http=True, algorithms=["RS256", "ES256"], name="rotating")],
                 key_sources={"rotating": source})
    assert v.verify(mint(old, standard_claims(issuer=issuer))).subject == "user-123"
    http_server.serve_json("/rotating/keys", {"keys": [old.jwk(), new.jwk()]})
    with pytest.raises(TokenRejected) as info:  # inside the cooldown: no refetch for a kid never seen
        v.verify(mint(new, standard_claims(issuer=issuer)))
    assert info.value.code == "unknown_kid"
    monotonic[0] += 31
    assert v.verify(mint(new, standard_claims(issuer=issuer))).subject == "user-123"
    assert http_server.count("/rotating/keys") == 2


def test_discovery_finds_the_jwks(http_server, keys):  # noqa: F811
    old, _ = keys
    issuer = http_server.url("/realm")
    http_server.serve_json("/realm/.well-known/openid-configuration",
                           {"issuer": issuer, "jwks_uri": http_server.url("/realm/certs")})
    http_server.serve_json("/realm/certs", {"keys": [old.jwk()]})
    v = Verifier([IssuerConfig(issuer, [AUDIENCE], allow_insecure_http=True)])
    assert v.verify(mint(old, standard_claims(issuer=issuer))).issuer == issuer


def test_unreachable_keys_fail_closed(http_server, keys):  # noqa: F811
    old, _ = keys
    issuer = http_server.url("/down")
    http_server.fail("/down/keys", status=503)
    v = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url("/down/keys"),
                               allow_insecure_http=True)])
    with pytest.raises(TokenRejected) as info:
        v.hydrate()
    assert info.value.code == "jwks_unavailable"
    with pytest.raises(TokenRejected) as info:
        v.verify(mint(old, standard_claims(issuer=issuer)))
    assert info.value.code == "jwks_unavailable" and info.value.status == 401


def test_plain_http_keys_need_the_explicit_local_development_switch(http_server):  # noqa: F811
    with pytest.raises(ValueError):
        Verifier([IssuerConfig(http_server.url("/x"), [AUDIENCE], jwks_uri=http_server.url("/x/keys"))])
