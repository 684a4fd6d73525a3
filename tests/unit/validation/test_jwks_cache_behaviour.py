"""JwksCache against a real HTTP JWKS server on 127.0.0.1: TTL bounds, cooldown, merged fetches, stale-if-error,
bad documents, rotation. Time is an injected clock, so no test sleeps for a TTL."""
from __future__ import annotations

import threading

import pytest

from lambdas.validation.errors import TokenRejected
from lambdas.validation.fetcher import FetchResult, HttpFetcher, InsecureUrlError
from lambdas.validation.jwk import b64url_decode
from lambdas.validation.jwks_cache import CachePolicy, JwksCache
from tests.support.http_server import Reply, http_server, https_server  # noqa: F401 (fixtures)
from tests.support.tokens import SigningKey, mint

PATH = "/.well-known/jwks.json"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {"a": SigningKey.generate("RS256", kid="key-a"), "b": SigningKey.generate("ES256", kid="key-b"),
            "c": SigningKey.generate("EdDSA", kid="key-c")}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def jwks(*signing_keys: SigningKey) -> dict:
    return {"keys": [k.jwk() for k in signing_keys]}


def make_cache(server, clock, **options) -> JwksCache:
    return JwksCache(server.url(PATH), allow_insecure_http=True, clock=clock, **options)


def assert_verifies(key, signer: SigningKey) -> None:
    """The key the cache returned really checks a real signature from `signer`."""
    token = mint(signer)
    header, payload, signature = token.split(".")
    assert key.verify(signer.alg, f"{header}.{payload}".encode(), b64url_decode(signature.encode()))


def rejection(call) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        call()
    return info.value


# ----- freshness ------------------------------------------------------------------------------------------------

def test_first_use_fetches_once_and_serves_from_memory(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]))
    cache = make_cache(http_server, clock)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])
    for _ in range(50):
        cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 1
    assert cache.fetch_count == 1


@pytest.mark.parametrize("cache_control, options, still_fresh_at, stale_at", [
    ("max-age=300", {}, 299, 301),                                   # honoured within bounds
    ("max-age=5", {"min_ttl": 60}, 59, 61),                          # raised to min_ttl
    ("max-age=999999", {"max_ttl": 3600}, 3599, 3601),               # lowered to max_ttl
    ("no-store", {"min_ttl": 45}, 44, 46),                           # no-store: kept only min_ttl
    ("no-cache", {"min_ttl": 45}, 44, 46),
    (None, {"default_ttl": 900}, 899, 901),                          # silent server: default_ttl
])
def test_cache_control_is_honoured_within_bounds(http_server, clock, keys, cache_control, options, still_fresh_at,
                                                 stale_at):
    headers = {"Cache-Control": cache_control} if cache_control else {}
    http_server.serve_json(PATH, jwks(keys["a"]), headers=headers)
    cache = make_cache(http_server, clock, **options)
    cache.hydrate()
    clock.advance(still_fresh_at)
    cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 1
    clock.advance(stale_at - still_fresh_at)
    cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 2


def test_hydrate_fetches_now_and_only_when_needed(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]))
    cache = make_cache(http_server, clock)
    assert cache.key_set is None
    cache.hydrate()
    cache.hydrate()
    assert http_server.count(PATH) == 1
    assert cache.key_set is not None and cache.key_set.kids == ("key-a",)


# ----- unknown kid, cooldown, rotation ----------------------------------------------------------------------------

def test_key_rotation_new_kid_triggers_one_refetch_and_is_accepted(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=3600"})
    cache = make_cache(http_server, clock)
    cache.hydrate()
    clock.advance(120)
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]), headers={"Cache-Control": "max-age=3600"})
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])
    assert http_server.count(PATH) == 2
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])
    assert http_server.count(PATH) == 2


def test_unknown_kid_refetches_at_most_once_per_cooldown(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=3600"})
    cache = make_cache(http_server, clock, refetch_cooldown=30)
    cache.hydrate()
    clock.advance(31)
    err = rejection(lambda: cache.get_key("made-up-1", "RS256"))
    assert err.code == "unknown_kid" and err.found == "'made-up-1'"
    assert http_server.count(PATH) == 2
    for i in range(20):  # a flood of made-up kids inside the cooldown costs nothing more
        clock.advance(1)
        assert rejection(lambda: cache.get_key(f"made-up-{i}", "RS256")).code == "unknown_kid"
    assert http_server.count(PATH) == 2
    clock.advance(11)  # 31 s since the last fetch
    assert rejection(lambda: cache.get_key("made-up-x", "RS256")).code == "unknown_kid"
    assert http_server.count(PATH) == 3


def test_unknown_kid_right_after_the_first_fetch_does_not_refetch(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]))
    cache = make_cache(http_server, clock)
    assert rejection(lambda: cache.get_key("nope", "RS256")).code == "unknown_kid"
    assert http_server.count(PATH) == 1


def test_known_kid_with_wrong_alg_is_refused_without_refetch(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]))
    cache = make_cache(http_server, clock)
    cache.hydrate()
    clock.advance(100)
    err = rejection(lambda: cache.get_key("key-a", "ES256"))
    assert err.code == "alg_not_allowed"
    assert http_server.count(PATH) == 1


def test_token_without_kid_uses_the_single_matching_key(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]))
    cache = make_cache(http_server, clock)
    assert_verifies(cache.get_key(None, "ES256"), keys["b"])


# ----- merged concurrent fetches ----------------------------------------------------------------------------------

def run_concurrently(n: int, call) -> list:
    results: list = [None] * n
    start = threading.Barrier(n)

    def worker(i: int) -> None:
        start.wait()
        try:
            results[i] = call()
        except TokenRejected as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results


@pytest.mark.parametrize("situation", ["cold_start", "expired", "unknown_kid"])
def test_concurrent_fetches_are_merged_into_one_request(http_server, clock, keys, situation):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=600"})
    cache = make_cache(http_server, clock)
    if situation != "cold_start":
        cache.hydrate()
        clock.advance(700 if situation == "expired" else 60)
        http_server.serve_json(PATH, jwks(keys["a"], keys["b"]), headers={"Cache-Control": "max-age=600"})
    before = http_server.count(PATH)
    http_server.hold(PATH)
    kid, alg = ("key-b", "ES256") if situation == "unknown_kid" else ("key-a", "RS256")
    threads, results = run_concurrently(24, lambda: cache.get_key(kid, alg))
    try:
        assert http_server.wait_for_requests(PATH, before + 1)
        # Every thread is now either waiting on the one request in flight or has not reached the cache yet;
        # none may have completed, because the only request is parked on the server.
        assert all(r is None for r in results)
    finally:
        http_server.release(PATH)
    for t in threads:
        t.join(5)
    assert http_server.count(PATH) == before + 1
    assert all(getattr(r, "kid", None) == kid for r in results), results


def test_concurrent_callers_share_a_failed_fetch(http_server, clock, keys):
    http_server.fail(PATH, status=500)
    cache = make_cache(http_server, clock)
    http_server.hold(PATH)
    threads, results = run_concurrently(16, lambda: cache.get_key("key-a", "RS256"))
    try:
        assert http_server.wait_for_requests(PATH, 1)
    finally:
        http_server.release(PATH)
    for t in threads:
        t.join(5)
    assert http_server.count(PATH) == 1
    assert all(isinstance(r, TokenRejected) and r.code == "jwks_unavailable" for r in results)


# ----- issuer down: stale-if-error, backoff, fail closed ----------------------------------------------------------

def test_stale_keys_are_served_for_a_bounded_window_then_fail_closed(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=60"})
    cache = make_cache(http_server, clock, min_ttl=60, stale_if_error=600, error_backoff=5)
    cache.hydrate()
    http_server.fail(PATH, status=503)

    clock.advance(61)                                   # stale: refetch fails, the old key is still served
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    assert http_server.count(PATH) == 2
    clock.advance(2)                                    # inside the error backoff: no new attempt
    cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 2
    clock.advance(5)                                    # backoff over: one more attempt, still served stale
    cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 3

    clock.now = 1000 + 60 + 600 + 1                     # past the stale window: fail closed
    err = rejection(lambda: cache.get_key("key-a", "RS256"))
    assert err.code == "jwks_unavailable" and err.status == 401
    assert http_server.url(PATH) in err.message and "HTTP 503" in err.message
    assert "stale-if-error window" in err.message

    http_server.serve_json(PATH, jwks(keys["a"]))       # issuer back: next attempt after the backoff recovers
    clock.advance(5)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])


def test_cold_start_while_issuer_is_down_fails_closed_and_backs_off(http_server, clock):
    http_server.drop(PATH)
    cache = make_cache(http_server, clock, error_backoff=5)
    err = rejection(cache.hydrate)
    assert err.code == "jwks_unavailable"
    assert "closed the connection" in err.message and "no copy has ever been fetched" in err.message
    clock.advance(1)
    assert rejection(lambda: cache.get_key("key-a", "RS256")).code == "jwks_unavailable"
    assert http_server.count(PATH) == 1


def test_unknown_kid_during_an_outage_is_jwks_unavailable(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=3600"})
    cache = make_cache(http_server, clock, refetch_cooldown=30)
    cache.hydrate()
    http_server.fail(PATH, status=502)
    clock.advance(40)
    err = rejection(lambda: cache.get_key("key-b", "ES256"))
    assert err.code == "jwks_unavailable" and "HTTP 502" in err.message
    assert "'key-b' is not among the cached keys" in err.message
    clock.advance(1)                                    # inside the cooldown, the issuer still failing
    assert rejection(lambda: cache.get_key("key-c", "EdDSA")).code == "jwks_unavailable"
    assert http_server.count(PATH) == 2
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])  # known keys keep working


def test_failed_unknown_kid_refetch_is_retried_after_the_error_backoff_not_the_cooldown(http_server, clock, keys):
    # A rotation that meets a transient fault: the first token with the new kid finds the issuer failing. Once the
    # error backoff has passed, the next such token refetches; waiting out the whole cooldown would refuse every user
    # holding a new token for 30 s after a 1 s blip.
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=3600"})
    cache = make_cache(http_server, clock, refetch_cooldown=30, error_backoff=5)
    cache.hydrate()
    http_server.fail(PATH, status=503)
    clock.advance(40)
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    clock.advance(4)                                    # inside the error backoff: no new attempt
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    assert http_server.count(PATH) == 2
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]), headers={"Cache-Control": "max-age=3600"})
    clock.advance(2)                                    # backoff over, still inside the 30 s cooldown
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])
    assert http_server.count(PATH) == 3
    clock.advance(1)                                    # after a successful refetch the cooldown applies again
    assert rejection(lambda: cache.get_key("key-x", "ES256")).code == "unknown_kid"
    assert http_server.count(PATH) == 3


def busy(http_server, retry_after: str, status: int = 503) -> None:
    http_server.serve(PATH, "busy", status=status, headers={"Retry-After": retry_after})


def test_retry_after_on_a_503_is_honoured_instead_of_the_error_backoff(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=300"})
    cache = make_cache(http_server, clock, error_backoff=5)
    cache.hydrate()
    busy(http_server, "120")
    clock.advance(301)                                  # stale: the refetch meets the 503, the stale keys serve
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=300"})
    clock.advance(119)                                  # well past the 5 s backoff, inside what the server asked
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    assert http_server.count(PATH) == 2
    clock.advance(1)
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "unknown_kid"
    assert http_server.count(PATH) == 3


def test_retry_after_on_a_429_during_rotation_is_honoured(http_server, clock, keys):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=3600"})
    cache = make_cache(http_server, clock, refetch_cooldown=30, error_backoff=5)
    cache.hydrate()
    busy(http_server, "60", status=429)
    clock.advance(40)
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]), headers={"Cache-Control": "max-age=3600"})
    clock.advance(59)
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    assert http_server.count(PATH) == 2
    clock.advance(1)
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])
    assert http_server.count(PATH) == 3


def test_retry_after_is_bounded_by_stale_if_error(http_server, clock, keys):
    # Keys fresh for a day: a Retry-After of a day would hold a rotation off for a day; the stale window bounds it.
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=86400"})
    cache = make_cache(http_server, clock, refetch_cooldown=30, error_backoff=5, stale_if_error=600)
    cache.hydrate()
    busy(http_server, "86400")
    clock.advance(40)
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    http_server.serve_json(PATH, jwks(keys["a"], keys["b"]))
    clock.advance(599)
    assert rejection(lambda: cache.get_key("key-b", "ES256")).code == "jwks_unavailable"
    assert http_server.count(PATH) == 2
    clock.advance(1)
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])


def test_retry_after_never_outlasts_the_stale_copy(http_server, clock, keys):
    # 15 s of the stale window remain when the server asks for an hour: the wait ends where the stale keys stop
    # being served, with one more attempt there, not an hour of failing closed without asking.
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=300"})
    cache = make_cache(http_server, clock, error_backoff=5, stale_if_error=3600)
    cache.hydrate()
    http_server.drop(PATH)
    clock.advance(300 + 3580)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])   # a plain failure: the error backoff
    busy(http_server, "3600")
    clock.advance(5)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])   # 503 with Retry-After 3600, 15 s of window left
    assert http_server.count(PATH) == 3
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=300"})
    clock.advance(14)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    assert http_server.count(PATH) == 3
    clock.advance(1)                                    # the stale window's last moment: asked again, recovered
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    assert http_server.count(PATH) == 4


@pytest.mark.parametrize("status, retry_after", [(503, "0"), (500, "600"), (503, "later")])
def test_retry_after_that_is_short_unreadable_or_on_another_status_leaves_the_error_backoff(
        http_server, clock, keys, status, retry_after):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=300"})
    cache = make_cache(http_server, clock, error_backoff=5)
    cache.hydrate()
    busy(http_server, retry_after, status=status)
    clock.advance(301)
    cache.get_key("key-a", "RS256")
    clock.advance(4)
    cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 2                 # Retry-After 0 does not invite a retry inside the backoff
    clock.advance(1)
    cache.get_key("key-a", "RS256")
    assert http_server.count(PATH) == 3


def test_retry_after_with_nothing_cached_leaves_the_error_backoff(http_server, clock, keys):
    # Nothing is served while waiting, so every token would be refused for as long as the server asked.
    busy(http_server, "600")
    cache = make_cache(http_server, clock, error_backoff=5)
    assert rejection(cache.hydrate).code == "jwks_unavailable"
    http_server.serve_json(PATH, jwks(keys["a"]))
    clock.advance(5)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    assert http_server.count(PATH) == 2


def test_slow_issuer_times_out_inside_the_budget(http_server, clock):
    http_server.serve_json(PATH, {"keys": []}, delay=5)
    cache = make_cache(http_server, clock, timeout=0.3)
    err = rejection(cache.hydrate)
    assert err.code == "jwks_unavailable" and "timed out after 0.3 s" in err.message


def test_oversized_key_set_is_refused(http_server, clock, keys):
    doc = jwks(keys["a"])
    doc["padding"] = "x" * 5000
    http_server.serve_json(PATH, doc)
    err = rejection(make_cache(http_server, clock, max_bytes=4096).hydrate)
    assert err.code == "jwks_unavailable" and "4096-byte cap" in err.message


# ----- bad documents never replace good keys ---------------------------------------------------------------------

BAD_DOCUMENTS = [
    (Reply("<html>maintenance</html>"), "not valid JSON"),
    (Reply({"keys": []}), "no usable signing key"),
    (Reply({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}), "symmetric"),
    (Reply({"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"}]}), "not \"sig\""),
    (Reply({"issuer": "not a jwks"}), '"keys" array'),
    (Reply('{"keys": [], "keys": []}'), "duplicate member"),
    (Reply({"keys": []}, status=404), "HTTP 404"),
]


@pytest.mark.parametrize("reply, reason", BAD_DOCUMENTS)
def test_bad_document_does_not_replace_good_keys(http_server, clock, keys, reply, reason):
    http_server.serve_json(PATH, jwks(keys["a"]), headers={"Cache-Control": "max-age=60"})
    cache = make_cache(http_server, clock, min_ttl=60)
    cache.hydrate()
    http_server.serve_reply(PATH, reply)
    clock.advance(61)
    assert_verifies(cache.get_key("key-a", "RS256"), keys["a"])
    assert http_server.count(PATH) == 2
    assert cache.key_set is not None and cache.key_set.kids == ("key-a",)


@pytest.mark.parametrize("reply, reason", BAD_DOCUMENTS)
def test_bad_document_on_first_fetch_fails_closed_with_the_reason(http_server, clock, reply, reason):
    http_server.serve_reply(PATH, reply)
    err = rejection(make_cache(http_server, clock).hydrate)
    assert err.code == "jwks_unavailable"
    assert reason in err.message and http_server.url(PATH) in err.message


def test_document_with_some_unusable_keys_keeps_the_usable_ones(http_server, clock, keys):
    doc = jwks(keys["a"])
    doc["keys"].append({"kty": "RSA", "use": "enc", "kid": "enc-key", "n": "AQAB", "e": "AQAB"})
    http_server.serve_json(PATH, doc)
    cache = make_cache(http_server, clock)
    cache.hydrate()
    assert cache.key_set.kids == ("key-a",)
    assert rejection(lambda: cache.get_key("enc-key", "RS256")).code == "unknown_kid"


# ----- transport rules and configuration ---------------------------------------------------------------------------

def test_https_key_set_with_a_custom_tls_context(https_server, clock, keys):
    https_server.serve_json(PATH, jwks(keys["c"]))
    cache = JwksCache(https_server.url(PATH), clock=clock,
                      fetcher=HttpFetcher(ssl_context=https_server.client_ssl_context()))
    assert_verifies(cache.get_key("key-c", "EdDSA"), keys["c"])


def test_https_key_set_with_an_untrusted_certificate_fails_closed(https_server, clock, keys):
    https_server.serve_json(PATH, jwks(keys["c"]))
    err = rejection(JwksCache(https_server.url(PATH), clock=clock).hydrate)
    assert err.code == "jwks_unavailable" and "TLS certificate not trusted" in err.message


@pytest.mark.parametrize("uri, allow", [
    ("http://idp.example.com/jwks", True),
    ("http://127.0.0.1:1/jwks", False),
    ("ftp://idp.example.com/jwks", False),
    ("https://user:pw@idp.example.com/jwks", False),
])
def test_refuses_insecure_jwks_uri_at_construction(uri, allow):
    with pytest.raises(InsecureUrlError):
        JwksCache(uri, allow_insecure_http=allow)


class PreloadedFetcher:
    """A user-supplied fetcher: serves documents from memory (e.g. keys pre-loaded at build time)."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.documents = documents
        self.calls: list[tuple[str, float, int]] = []

    def fetch(self, url, *, timeout, max_bytes):
        self.calls.append((url, timeout, max_bytes))
        return FetchResult(url=url, status=200, body=self.documents[url], max_age=120)


def test_custom_fetcher_receives_the_policy_limits(clock, keys):
    import json

    url = "https://idp.example.com/jwks"
    fetcher = PreloadedFetcher({url: json.dumps(jwks(keys["b"])).encode()})
    cache = JwksCache(url, fetcher=fetcher, clock=clock, timeout=0.8, max_bytes=65536)
    assert_verifies(cache.get_key("key-b", "ES256"), keys["b"])
    assert fetcher.calls == [(url, 0.8, 65536)]


def test_object_without_fetch_is_not_a_fetcher():
    with pytest.raises(TypeError, match="fetch"):
        JwksCache("https://idp.example.com/jwks", fetcher=object())


@pytest.mark.parametrize("options, message", [
    ({"min_ttl": 100, "max_ttl": 50}, "must not exceed"),
    ({"stale_if_error": -1}, "stale_if_error"),
    ({"refetch_cooldown": "30"}, "refetch_cooldown"),
    ({"timeout": 0}, "timeout"),
    ({"max_bytes": 10}, "max_bytes"),
])
def test_cache_policy_rejects_nonsense(options, message):
    with pytest.raises(ValueError, match=message):
        CachePolicy(**options)
