"""Attacks on key fetching, against a real JWKS server on 127.0.0.1: key locations a token names (jku, x5u) are never
requested, and a flood of made-up kids costs at most one JWKS fetch per refetch cooldown."""
from __future__ import annotations

import base64
import secrets
import threading
import time

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from lambdas.validation.jwks_cache import JwksCache
from tests.security.hostile_tokens import ALGORITHMS, Forge, Keyring
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.tokens import AUDIENCE

JWKS_PATH = "/idp/jwks.json"
COOLDOWN = 30.0


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return Keyring.generate()


def code_of(verifier: Verifier, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    return info.value.code


def test_key_locations_named_by_the_token_are_never_fetched(http_server, keys):  # noqa: F811
    issuer = http_server.url("/idp")
    http_server.serve_json(JWKS_PATH, keys.jwks())
    # What an attacker would serve: their own key, as a JWKS (jku) and as a certificate (x5u).
    http_server.serve_json("/attacker/jwks.json", {"keys": [keys.attacker_rsa.jwk(), keys.attacker_ec.jwk()]})
    cert_pem = base64.encodebytes(keys.attacker_cert).decode("ascii")
    http_server.serve("/attacker/cert.pem", f"-----BEGIN CERTIFICATE-----\n{cert_pem}-----END CERTIFICATE-----\n")
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url(JWKS_PATH), algorithms=ALGORITHMS,
                                      allow_insecure_http=True)])
    verifier.hydrate()
    forge = Forge(keys, int(time.time()))
    members = {"jku": http_server.url("/attacker/jwks.json"), "x5u": http_server.url("/attacker/cert.pem"),
               "jwk": keys.attacker_rsa.jwk(),
               "x5c": [base64.b64encode(keys.attacker_cert).decode("ascii")]}
    for named in [{name: value} for name, value in members.items()] + [members]:
        # The trusted kid: checked with the trusted key. Another kid: unknown (the refetch it may cause goes to the
        # issuer's jwks_uri, and is skipped here inside the cooldown). No kid: the one trusted RS256 key.
        for kid, expected in (("legit", "bad_signature"), ("attacker", "unknown_kid"), (None, "bad_signature")):
            token = forge.signed(keys.attacker_rsa, forge.header(kid=kid, **named), forge.claims(issuer=issuer))
            assert code_of(verifier, token) == expected, (sorted(named), kid)
    assert [request.path for request in http_server.requests()] == [JWKS_PATH]
    # The control: the trusted key, reached through the same jwks_uri, verifies.
    assert verifier.verify(forge.good(issuer=issuer)).issuer == issuer


def flood_verifier(http_server, clock) -> tuple[Verifier, JwksCache, str]:  # noqa: F811
    issuer = http_server.url("/idp")
    source = JwksCache(http_server.url(JWKS_PATH), allow_insecure_http=True, clock=clock, refetch_cooldown=COOLDOWN)
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks_uri=http_server.url(JWKS_PATH), algorithms=ALGORITHMS,
                                      allow_insecure_http=True, name="idp")], key_sources={"idp": source})
    return verifier, source, issuer


def made_up_kid_tokens(forge: Forge, issuer: str, count: int) -> list[str]:
    """Tokens naming random kids. The signature is junk: the kid is looked up before any signature is checked."""
    claims = forge.claims(issuer=issuer)
    return [forge.unsigned(forge.header(kid=secrets.token_urlsafe(12)), claims, bytes(256)) for _ in range(count)]


def test_an_unknown_kid_flood_costs_one_fetch_per_cooldown(http_server, keys):  # noqa: F811
    http_server.serve_json(JWKS_PATH, keys.jwks())
    now = [1000.0]
    verifier, source, issuer = flood_verifier(http_server, lambda: now[0])
    verifier.hydrate()
    forge = Forge(keys, int(time.time()))
    for fetches_so_far in (1, 2, 3):
        for token in made_up_kid_tokens(forge, issuer, 1500):
            assert code_of(verifier, token) == "unknown_kid"
        assert http_server.count(JWKS_PATH) == fetches_so_far == source.fetch_count
        now[0] += COOLDOWN - 1
        for token in made_up_kid_tokens(forge, issuer, 100):  # still inside the cooldown: nothing more
            assert code_of(verifier, token) == "unknown_kid"
        assert http_server.count(JWKS_PATH) == fetches_so_far
        now[0] += 1
    assert verifier.verify(forge.good(issuer=issuer)).issuer == issuer
    assert http_server.count(JWKS_PATH) == 3


def test_a_concurrent_unknown_kid_flood_shares_one_fetch(http_server, keys):  # noqa: F811
    """Eight threads flooding at the moment the cooldown ends: one fetch between them, held open until all of them
    have queued behind it or been refused, and no thread sees anything but unknown_kid."""
    http_server.serve_json(JWKS_PATH, keys.jwks())
    now = [1000.0]
    verifier, source, issuer = flood_verifier(http_server, lambda: now[0])
    verifier.hydrate()
    now[0] += COOLDOWN
    forge = Forge(keys, int(time.time()))
    batches = [made_up_kid_tokens(forge, issuer, 250) for _ in range(8)]
    codes: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def flood(tokens: list[str]) -> None:
        start.wait()
        for token in tokens:
            try:
                verifier.verify(token)
                codes.append("accepted")
            except TokenRejected as exc:
                codes.append(exc.code)
            except BaseException as exc:  # noqa: BLE001 - any other outcome is the failure this test looks for
                errors.append(exc)

    http_server.hold(JWKS_PATH)
    threads = [threading.Thread(target=flood, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    assert http_server.wait_for_requests(JWKS_PATH, 2)
    time.sleep(0.2)  # let the other threads reach the in-flight fetch (or refuse without it)
    http_server.release(JWKS_PATH)
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and set(codes) == {"unknown_kid"} and len(codes) == 2000
    assert http_server.count(JWKS_PATH) == 2 == source.fetch_count
