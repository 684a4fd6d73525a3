"""OIDC discovery against a real HTTP(S) server on 127.0.0.1: URL rules, exact issuer match, jwks_uri checks, caching."""
from __future__ import annotations

import threading

import pytest

from lambdas.validation.discovery import DiscoveredKeySource, discovery_url_for, parse_provider_metadata
from lambdas.validation.errors import TokenRejected
from lambdas.validation.fetcher import HttpFetcher, InsecureUrlError
from tests.support.http_server import http_server, https_server  # noqa: F401 (fixtures)
from tests.support.tokens import SigningKey

WELL_KNOWN = "/.well-known/openid-configuration"


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256", kid="disc-key")


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate("ES256", kid="other-key")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def publish(server, issuer: str, *, doc_path: str, jwks_path: str = "/keys", signing_key: SigningKey,
            **doc_extra) -> None:
    server.serve_json(doc_path, {"issuer": issuer, "jwks_uri": server.url(jwks_path),
                                 "authorization_endpoint": issuer + "/authorize", **doc_extra},
                      headers={"Cache-Control": "max-age=300"})
    server.serve_json(jwks_path, {"keys": [signing_key.jwk()]})


def rejection(call) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        call()
    return info.value


@pytest.mark.parametrize("issuer, url", [
    ("https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration"),
    ("https://tenant.auth0.com/", "https://tenant.auth0.com/.well-known/openid-configuration"),
    ("https://kc.example.com/realms/corp", "https://kc.example.com/realms/corp/.well-known/openid-configuration"),
    ("https://login.microsoftonline.com/t-1/v2.0/",
     "https://login.microsoftonline.com/t-1/v2.0/.well-known/openid-configuration"),
])
def test_discovery_url_appends_to_the_issuer_path(issuer, url):
    assert discovery_url_for(issuer) == url


def test_issuer_with_query_has_no_discovery_document():
    with pytest.raises(InsecureUrlError, match="query or fragment"):
        discovery_url_for("https://idp.example.com?tenant=1")


def test_discovers_keys_and_caches_both_documents(http_server, clock, key):
    issuer = http_server.base_url
    publish(http_server, issuer, doc_path=WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock)
    assert source.get_key("disc-key", "ES256").kid == "disc-key"
    for _ in range(10):
        source.get_key("disc-key", "ES256")
    assert (http_server.count(WELL_KNOWN), http_server.count("/keys")) == (1, 1)
    assert source.metadata.jwks_uri == http_server.url("/keys")
    assert source.metadata.document["authorization_endpoint"] == issuer + "/authorize"


def test_issuer_with_a_path_component(http_server, clock, key):
    issuer = http_server.url("/realms/corp")
    publish(http_server, issuer, doc_path="/realms/corp" + WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock)
    source.hydrate()
    assert http_server.count("/realms/corp" + WELL_KNOWN) == 1
    assert http_server.count("/.well-known/openid-configuration/realms/corp") == 0


@pytest.mark.parametrize("published", ["{base}/", "{base}/other", "{base_upper}", "https://evil.example.com"])
def test_issuer_in_the_document_must_match_exactly(http_server, clock, key, published):
    issuer = http_server.base_url
    publish(http_server, published.format(base=issuer, base_upper=issuer.upper()), doc_path=WELL_KNOWN,
            signing_key=key)
    source = DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock)
    err = rejection(lambda: source.get_key("disc-key", "ES256"))
    assert err.code == "jwks_unavailable"
    assert "configured issuer is " + repr(issuer) in err.message
    assert http_server.count("/keys") == 0


@pytest.mark.parametrize("jwks_uri, reason", [
    ("http://idp.example.com/keys", "non-loopback host"),
    (None, 'no "jwks_uri" string member'),
    (["https://idp.example.com/keys"], 'no "jwks_uri" string member'),
    ("https://u:p@idp.example.com/keys", "carries credentials"),
])
def test_jwks_uri_in_the_document_must_be_fetchable(http_server, clock, key, jwks_uri, reason):
    issuer = http_server.base_url
    http_server.serve_json(WELL_KNOWN, {"issuer": issuer, "jwks_uri": jwks_uri})
    err = rejection(DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock).hydrate)
    assert err.code == "jwks_unavailable" and reason in err.message


def test_https_discovery_refuses_a_plain_http_jwks_uri_unless_allowed(https_server, http_server, clock, key):
    issuer = https_server.base_url
    http_server.serve_json("/keys", {"keys": [key.jwk()]})
    https_server.serve_json(WELL_KNOWN, {"issuer": issuer, "jwks_uri": http_server.url("/keys")})
    fetcher = HttpFetcher(ssl_context=https_server.client_ssl_context())
    err = rejection(DiscoveredKeySource(issuer, fetcher=fetcher, clock=clock).hydrate)
    assert "allow_insecure_http" in err.message
    assert http_server.count("/keys") == 0


def test_over_https_end_to_end(https_server, clock, key):
    issuer = https_server.base_url
    publish(https_server, issuer, doc_path=WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, clock=clock,
                                 fetcher=HttpFetcher(ssl_context=https_server.client_ssl_context()))
    assert source.get_key("disc-key", "ES256").kid == "disc-key"


def test_plain_http_issuer_needs_permission():
    with pytest.raises(InsecureUrlError, match="allow_insecure_http"):
        DiscoveredKeySource("http://127.0.0.1:8080")
    with pytest.raises(InsecureUrlError, match="non-loopback"):
        DiscoveredKeySource("http://idp.example.com", allow_insecure_http=True)


def test_discovery_url_override(http_server, clock, key):
    issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
    publish(http_server, issuer, doc_path="/common/v2.0" + WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, discovery_url=http_server.url("/common/v2.0" + WELL_KNOWN),
                                 allow_insecure_http=True, clock=clock)
    assert source.get_key("disc-key", "ES256").kid == "disc-key"


def test_a_new_jwks_uri_takes_over_after_the_document_refreshes(http_server, clock, key, other_key):
    issuer = http_server.base_url
    publish(http_server, issuer, doc_path=WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock)
    source.hydrate()
    publish(http_server, issuer, doc_path=WELL_KNOWN, jwks_path="/keys-v2", signing_key=other_key)
    clock.now += 301
    assert source.get_key("other-key", "ES256").kid == "other-key"
    assert (http_server.count(WELL_KNOWN), http_server.count("/keys-v2")) == (2, 1)


def test_discovery_outage_serves_stale_metadata_then_fails_closed(http_server, clock, key):
    issuer = http_server.base_url
    publish(http_server, issuer, doc_path=WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock, stale_if_error=600, max_ttl=300)
    source.hydrate()
    http_server.fail(WELL_KNOWN, status=500)
    clock.now += 301
    assert source.get_key("disc-key", "ES256").kid == "disc-key"
    assert http_server.count(WELL_KNOWN) == 2
    clock.now += 600
    err = rejection(lambda: source.get_key("disc-key", "ES256"))
    assert err.code == "jwks_unavailable" and "OIDC discovery document" in err.message and "HTTP 500" in err.message


def test_concurrent_cold_start_makes_one_request_per_document(http_server, clock, key):
    issuer = http_server.base_url
    publish(http_server, issuer, doc_path=WELL_KNOWN, signing_key=key)
    source = DiscoveredKeySource(issuer, allow_insecure_http=True, clock=clock)
    http_server.hold(WELL_KNOWN)
    results: list = []
    barrier = threading.Barrier(12)

    def worker() -> None:
        barrier.wait()
        results.append(source.get_key("disc-key", "ES256").kid)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    try:
        assert http_server.wait_for_requests(WELL_KNOWN, 1)
    finally:
        http_server.release(WELL_KNOWN)
    for t in threads:
        t.join(5)
    assert results == ["disc-key"] * 12
    assert (http_server.count(WELL_KNOWN), http_server.count("/keys")) == (1, 1)


def test_parse_provider_metadata_requires_an_issuer_string():
    with pytest.raises(ValueError, match='no "issuer" string member'):
        parse_provider_metadata({"jwks_uri": "https://x/keys"}, expected_issuer="https://x",
                                allow_insecure_http=False, source="doc")
