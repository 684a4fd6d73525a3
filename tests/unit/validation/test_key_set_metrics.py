"""The key-set counters (lambdas/validation/key_metrics.py) against a real JWKS server on 127.0.0.1: every fetch
outcome is classified by the way it really failed, and stale keys, unknown-kid refetches, rotations, the age of the
last good fetch and verified-token cache hits are counted where they happen. Time is an injected clock."""
from __future__ import annotations

import pytest

from lambdas.validation import IssuerConfig, Verifier
from lambdas.validation.errors import TokenRejected
from lambdas.validation.fetcher import FetchResult
from lambdas.validation.jwks_cache import JwksCache
from lambdas.validation.key_metrics import FETCH_OUTCOMES, KeySetMetrics
from tests.support.http_server import Reply, http_server  # noqa: F401 (fixture)
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

PATH = "/jwks.json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {"a": SigningKey.generate("RS256", kid="key-a"), "b": SigningKey.generate("RS256", kid="key-b")}


def jwks(*signing_keys: SigningKey) -> dict:
    return {"keys": [k.jwk() for k in signing_keys]}


def cache_for(server, clock, metrics, **options) -> JwksCache:
    return JwksCache(server.url(PATH), allow_insecure_http=True, clock=clock, issuer=ISSUER, metrics=metrics,
                     **options)


def only_document(metrics: KeySetMetrics):
    (doc,) = metrics.snapshot().documents
    return doc


def test_a_good_fetch_counts_ok_with_its_latency_and_resets_the_age(http_server, keys):
    clock, metrics = FakeClock(), KeySetMetrics(clock=FakeClock())
    http_server.serve_json(PATH, jwks(keys["a"]))
    cache = cache_for(http_server, clock, metrics)
    cache.hydrate()
    doc = only_document(metrics)
    assert (doc.issuer, doc.document) == (ISSUER, "jwks")
    assert doc.fetches == {**dict.fromkeys(FETCH_OUTCOMES, 0), "ok": 1}
    assert doc.failures == 0 and doc.ever_succeeded and doc.seconds_since_success == 0
    assert doc.fetch_seconds_buckets[-1] == 1  # the largest bucket holds every fetch


def test_latency_comes_from_the_cache_clock():
    clock = FakeClock()

    class SlowFetcher:  # the fetch "takes" 0.3 s on the injected clock
        def fetch(self, url, *, timeout, max_bytes):
            clock.now += 0.3
            return FetchResult(url=url, status=200, body=b'{"keys": []}')

    metrics = KeySetMetrics(clock=clock)
    cache = JwksCache("https://idp.example.test/jwks", fetcher=SlowFetcher(), clock=clock, metrics=metrics)
    with pytest.raises(TokenRejected):
        cache.hydrate()  # an empty key set is malformed: no usable signing key
    doc = only_document(metrics)
    assert doc.fetches["malformed"] == 1
    assert doc.fetch_seconds_sum == pytest.approx(0.3)
    assert doc.fetch_seconds_buckets[:4] == (0, 0, 0, 0) and doc.fetch_seconds_buckets[4:] == (1, 1, 1, 1)
    assert not doc.ever_succeeded and doc.seconds_since_success == 0


@pytest.mark.parametrize("reply, options, outcome", [
    (Reply(status=503, body=b"down"), {}, "http_error"),
    (Reply(status=302, headers={"Location": "https://elsewhere.example/jwks"}), {}, "http_error"),
    (Reply(body=b"<html>not json</html>"), {}, "malformed"),
    (Reply(body=b'{"keys": [{"kty": "oct", "k": "AAAA"}]}'), {}, "malformed"),
    (Reply(body=b"x" * 4096), {"max_bytes": 1024}, "over_cap"),
    (Reply(body=b"{}", delay=1.0), {"timeout": 0.2}, "timeout"),
])
def test_each_failure_is_counted_by_how_it_failed(http_server, reply, options, outcome):
    clock, metrics = FakeClock(), KeySetMetrics()
    http_server.serve_reply(PATH, reply)
    cache = cache_for(http_server, clock, metrics, **options)
    with pytest.raises(TokenRejected) as info:
        cache.hydrate()
    assert info.value.code == "jwks_unavailable"
    doc = only_document(metrics)
    assert doc.fetches == {**dict.fromkeys(FETCH_OUTCOMES, 0), outcome: 1}
    assert doc.failures == 1 and not doc.ever_succeeded


def test_a_dropped_connection_is_a_transport_error(http_server):
    metrics = KeySetMetrics()
    http_server.drop(PATH)
    with pytest.raises(TokenRejected):
        cache_for(http_server, FakeClock(), metrics).hydrate()
    assert only_document(metrics).fetches["transport_error"] == 1


def test_stale_keys_served_during_an_outage_are_counted_and_the_age_grows(http_server, keys):
    clock = FakeClock()
    metrics = KeySetMetrics(clock=clock)
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=60"})
    cache = cache_for(http_server, clock, metrics, min_ttl=60, stale_if_error=600, error_backoff=5)
    cache.get_key("key-a", "RS256")
    http_server.fail(PATH, 503)
    clock.now += 61
    cache.get_key("key-a", "RS256")       # refetch fails: stale copy served
    clock.now += 1
    cache.get_key("key-a", "RS256")       # within the error backoff: no fetch, stale copy served again
    doc = only_document(metrics)
    assert doc.stale_served == 2
    assert doc.fetches["ok"] == 1 and doc.fetches["http_error"] == 1
    assert doc.seconds_since_success == pytest.approx(62)


def test_rotation_and_unknown_kid_refetches(http_server, keys):
    clock, metrics = FakeClock(), KeySetMetrics()
    http_server.serve_json(PATH, jwks(keys["a"]))
    cache = cache_for(http_server, clock, metrics, refetch_cooldown=30)
    cache.hydrate()
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]))
    clock.now += 31
    cache.get_key("key-b", "RS256")        # unknown kid: refetched, the new key is there
    doc = only_document(metrics)
    assert (doc.unknown_kid_refetches, doc.rotations) == (1, 1)
    with pytest.raises(TokenRejected):
        cache.get_key("made-up", "RS256")  # within the cooldown: no refetch, nothing counted
    clock.now += 31
    with pytest.raises(TokenRejected):
        cache.get_key("made-up", "RS256")  # refetched, same keys: a refetch, no rotation
    doc = only_document(metrics)
    assert (doc.unknown_kid_refetches, doc.rotations, doc.fetches["ok"]) == (2, 1, 3)


def test_a_key_set_losing_a_key_is_not_a_rotation(http_server, keys):
    clock, metrics = FakeClock(), KeySetMetrics()
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]), headers={"Cache-Control": "max-age=60"})
    cache = cache_for(http_server, clock, metrics, min_ttl=60)
    cache.hydrate()
    http_server.serve_json(PATH, jwks(keys["a"]))
    clock.now += 61
    cache.get_key("key-a", "RS256")
    assert only_document(metrics).rotations == 0


def test_the_verifier_shares_its_metrics_with_its_key_sources_and_counts_cache_hits(http_server, keys):
    http_server.serve_json(PATH, jwks(keys["a"]))
    verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks_uri=http_server.url(PATH), allow_insecure_http=True,
                                      algorithms=("RS256",))])
    token = mint(keys["a"])
    for _ in range(3):
        verifier.authenticate(token)
    snapshot = verifier.key_metrics.snapshot()
    assert snapshot.verified_cache_hits == 2
    (doc,) = snapshot.documents
    assert doc.issuer == ISSUER and doc.fetches["ok"] == 1


def test_discovery_counts_its_document_and_the_keys_behind_it(http_server, keys):
    from lambdas.validation.discovery import DiscoveredKeySource
    issuer = http_server.url("/idp")
    http_server.serve_json("/idp/.well-known/openid-configuration", {"issuer": issuer,
                                                                     "jwks_uri": http_server.url(PATH)})
    http_server.serve_json(PATH, jwks(keys["a"]))
    metrics = KeySetMetrics()
    DiscoveredKeySource(issuer, allow_insecure_http=True, metrics=metrics).hydrate()
    documents = {(d.issuer, d.document): d.fetches["ok"] for d in metrics.snapshot().documents}
    assert documents == {(issuer, "discovery"): 1, (issuer, "jwks"): 1}


def test_an_unknown_outcome_or_document_kind_is_refused():
    metrics = KeySetMetrics()
    with pytest.raises(ValueError, match="document must be one of"):
        metrics.document(ISSUER, "keys")
    with pytest.raises(ValueError, match="unknown fetch outcome 'slow'"):
        metrics.document(ISSUER, "jwks").fetched("slow", 0.1)
