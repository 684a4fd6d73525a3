"""The cache of an issuer's remote key material: JwksCache (a key source over a jwks_uri) and the freshness rules it
shares with the OIDC discovery document.

Freshness rules (CachePolicy):
- A fetched document stays fresh for the server's Cache-Control max-age (or Expires), clamped to [min_ttl, max_ttl];
  default_ttl when the server says nothing. `no-store`/`no-cache` get min_ttl: refetching for every token would put
  the issuer's endpoint on every request's path.
- Once stale, the next caller refetches. While that fails, the old document is served for at most `stale_if_error`
  seconds past its freshness, then every caller gets TokenRejected("jwks_unavailable"): fail closed. After a failed
  fetch no new attempt is made for `error_backoff` seconds, so an issuer outage costs one timeout per backoff
  period, not one per request. A 429 or 503 with `Retry-After` stretches that wait to what the server asked, bounded
  by the stale window: at most `stale_if_error`, and never past the moment the held copy stops being served (one
  last attempt is made there rather than failing closed without asking). With nothing held, nothing is served while
  waiting, so the error backoff alone decides.
- A failed fetch never replaces a good document: a transport error, a non-200 answer, a body that is not JSON, or a
  JWKS with no usable signing key all leave the cached keys as they were.
- Concurrent fetches of one document are merged: one request is in flight, every other caller waits for it and
  shares its outcome. The fresh path takes no lock.

Unknown kid (JwksCache.get_key): when the cached keys lack the token's kid, the keys are refetched at most once per
`refetch_cooldown` seconds (a new signing key after rotation is picked up on first sight; a flood of made-up kids
costs one fetch per cooldown). After a failed fetch the error backoff, not the cooldown, decides when the next
attempt may be made, so a rotation that met a transient fault is picked up seconds after the fault clears; a flood
during an outage costs one fetch per backoff, the outage's own retry rate. The rejection code is then decided like
this:
- the keys are current (the most recent fetch succeeded) and still lack the kid -> `unknown_kid`: the token was
  signed by a key this issuer does not publish;
- the most recent fetch failed (the issuer is down or serving garbage) -> `jwks_unavailable`: whether the kid exists
  cannot be known right now. Both fail closed; the code tells the operator which problem to chase.

All times come from an injectable monotonic `clock`, so tests step through TTLs without sleeping.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Generic, TypeVar

from .errors import TokenRejected
from .fetcher import (DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS, FetchError, Fetcher, FetchResult, HttpFetcher,
                      InsecureUrlError, check_key_url, display_url, fetch_json_document)
from .jwk import JsonWebKey, KeySet
from .key_metrics import DocumentCounters, KeySetMetrics
from .key_source import key_not_found
from .records import Record, set_field

logger = logging.getLogger("authgate.keys")

T = TypeVar("T")

# How long a caller waits for someone else's in-flight fetch beyond the fetch timeout itself, in case a custom
# fetcher does not honour its timeout.
_FLIGHT_WAIT_MARGIN_SECONDS = 1.0


class CachePolicy(Record):
    """How long remote key material is trusted and how hard the issuer is asked for it. All values in seconds.

    min_ttl           shortest freshness, whatever the server says (no-store/no-cache included)
    max_ttl           longest freshness, whatever the server says
    default_ttl       freshness when the server sends no Cache-Control max-age or Expires
    refetch_cooldown  least time between two fetches caused by an unknown kid
    stale_if_error    how long past its freshness a document is still served while refetching fails
    error_backoff     least time between fetch attempts after a failed one (longer when a 429/503 says Retry-After)
    timeout           total time for one fetch (API Gateway allows 1.5 s for a JWKS fetch)
    max_bytes         largest accepted response body
    """

    __slots__ = ("min_ttl", "max_ttl", "default_ttl", "refetch_cooldown", "stale_if_error", "error_backoff",
                 "timeout", "max_bytes")

    def __init__(self, min_ttl: float = 60.0, max_ttl: float = 86400.0, default_ttl: float = 600.0,
                 refetch_cooldown: float = 30.0, stale_if_error: float = 3600.0, error_backoff: float = 5.0,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        for name, value in (("min_ttl", min_ttl), ("max_ttl", max_ttl), ("default_ttl", default_ttl),
                            ("refetch_cooldown", refetch_cooldown), ("stale_if_error", stale_if_error),
                            ("error_backoff", error_backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
            set_field(self, name, value)
        if min_ttl > max_ttl:
            raise ValueError(f"min_ttl ({min_ttl}) must not exceed max_ttl ({max_ttl})")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
            raise ValueError(f"timeout must be seconds in (0, 30], got {timeout!r}; keep it under 1.5 s "
                             "behind API Gateway")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
            raise ValueError(f"max_bytes must be an integer >= 1024, got {max_bytes!r}")
        set_field(self, "timeout", timeout)
        set_field(self, "max_bytes", max_bytes)

    def ttl_for(self, result: FetchResult) -> float:
        """Seconds a document fetched with `result` stays fresh."""
        if result.no_cache:
            return self.min_ttl
        granted = self.default_ttl if result.max_age is None else result.max_age
        return min(self.max_ttl, max(self.min_ttl, granted))


class _Held(Record, Generic[T]):
    """A parsed document and the times that bound its use; replaced as a whole so readers need no lock."""

    __slots__ = ("value", "fresh_until", "stale_until")

    def __init__(self, value: T, fresh_until: float, stale_until: float) -> None:
        set_field(self, "value", value)
        set_field(self, "fresh_until", fresh_until)
        set_field(self, "stale_until", stale_until)


class _Flight:
    """One fetch in progress; callers that arrive while it runs wait on `done` and read `error` (None = success)."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None


class RemoteDocument(Generic[T]):
    """One remote JSON document, parsed into a T by `parse(json_object, fetch_result)`, kept by the CachePolicy rules.

    `parse` raises ValueError for a document that must not replace the cached one. Used for a JWKS (T = KeySet) and
    for an OIDC discovery document.
    """

    def __init__(self, url: str, parse: Callable[[dict, FetchResult], T], *, what: str, fetcher: Fetcher,
                 clock: Callable[[], float], policy: CachePolicy, counters: DocumentCounters) -> None:
        self.url = url
        self.counters = counters
        self.what = what
        self.policy = policy
        self._parse = parse
        self._fetcher = fetcher
        self._clock = clock
        self._lock = threading.Lock()
        self._held: _Held[T] | None = None
        self._flight: _Flight | None = None
        self._last_attempt: float | None = None
        self._retry_not_before = float("-inf")
        self._last_error: str | None = None
        self.fetch_count = 0

    @property
    def last_error(self) -> str | None:
        """Why the most recent fetch failed, or None when it succeeded (or none was made)."""
        return self._last_error

    @property
    def current(self) -> T | None:
        """The held document, fresh or not, without fetching."""
        held = self._held
        return held.value if held is not None else None

    def get(self) -> T:
        """The document: the fresh copy, else a refetched one, else the stale copy within its window. Raises
        TokenRejected("jwks_unavailable") when none of those can be had."""
        held = self._held
        if held is not None and self._clock() < held.fresh_until:
            return held.value
        if self._fetch_shared(self._skip_unless_stale) == "fetched":
            held = self._held
            assert held is not None
            return held.value
        held = self._held
        if held is not None and self._clock() < held.stale_until:
            self.counters.served_stale()
            return held.value
        raise self.unavailable()

    def refresh(self, *, cooldown: float) -> str:
        """Refetch now unless a fetch started less than `cooldown` seconds ago (or the error backoff is running);
        join a fetch already in flight. Returns "fetched", "failed" or "skipped"."""

        def skip_within_cooldown(now: float) -> bool:
            if now < self._retry_not_before:
                return True
            # The cooldown bounds what made-up kids cost while the issuer answers. After a failed attempt the error
            # backoff alone decides, so a rotation that met a transient fault is picked up once the fault clears.
            if self._last_error is not None:
                return False
            return self._last_attempt is not None and now - self._last_attempt < cooldown

        return self._fetch_shared(skip_within_cooldown)

    def unavailable(self, reason: str | None = None, *, state: str | None = None) -> TokenRejected:
        """The fail-closed rejection for this document, with the latest fetch error and the URL."""
        reason = reason or self._last_error or "no fetch has succeeded yet"
        if state is None:
            state = ("no copy has ever been fetched" if self._held is None
                     else "the cached copy is past its stale-if-error window")
        return TokenRejected(
            "jwks_unavailable", f"cannot get the {self.what} from {display_url(self.url)} ({state}): {reason}",
            expected=f"a 200 JSON answer within {self.policy.timeout:g} s", found=reason,
            hint="check that the issuer's endpoint is reachable from here (VPC egress/NAT, proxy, DNS) and serves "
                 "valid JSON over https; tokens are refused until it is")

    # ----- fetching ----------------------------------------------------------------------------------------------
    def _skip_unless_stale(self, now: float) -> bool:
        """No fetch when another caller has just refreshed the document, or while the error backoff runs."""
        held = self._held
        return (held is not None and now < held.fresh_until) or now < self._retry_not_before

    def _fetch_shared(self, skip: Callable[[float], bool]) -> str:
        """Fetch, or wait for the fetch already in flight, unless `skip(now)` (evaluated under the lock, when no
        fetch is in flight) says not to. Returns "fetched", "failed" or "skipped"."""
        with self._lock:
            flight = self._flight
            leader = flight is None
            if leader:
                now = self._clock()
                if skip(now):
                    return "skipped"
                flight = self._flight = _Flight()
                self._last_attempt = now
        assert flight is not None
        if not leader:
            if not flight.done.wait(self.policy.timeout + _FLIGHT_WAIT_MARGIN_SECONDS):
                return "failed"
            return "fetched" if flight.error is None else "failed"
        error: str | None = "the fetch was interrupted"
        try:
            error = self._fetch_now()
        finally:
            with self._lock:
                self._flight = None
            flight.error = error
            flight.done.set()
        return "fetched" if error is None else "failed"

    def _fetch_now(self) -> str | None:
        self.fetch_count += 1
        started = self._clock()
        try:
            doc, result = fetch_json_document(self._fetcher, self.url, what=self.what, timeout=self.policy.timeout,
                                              max_bytes=self.policy.max_bytes)
            value = self._parse(doc, result)
        except FetchError as exc:
            self.counters.fetched(exc.kind, self._clock() - started)
            return self._record_failure(exc.reason, retry_after=exc.retry_after)
        except ValueError as exc:
            self.counters.fetched("malformed", self._clock() - started)
            return self._record_failure(str(exc))
        except Exception as exc:  # an unforeseen fault in a hostile document must fail closed, not escape
            self.counters.fetched("malformed", self._clock() - started)
            return self._record_failure(f"the {self.what} could not be used ({type(exc).__name__}: {exc})")
        now = self._clock()
        self.counters.fetched("ok", now - started)
        fresh_until = now + self.policy.ttl_for(result)
        with self._lock:
            self._held = _Held(value, fresh_until, fresh_until + self.policy.stale_if_error)
            self._last_error = None
            self._retry_not_before = float("-inf")
        return None

    def _record_failure(self, reason: str, *, retry_after: float | None = None) -> str:
        with self._lock:
            now = self._clock()
            self._last_error = reason
            self._retry_not_before = self._next_attempt_after_failure(now, retry_after)
            serving_stale = self._held is not None
        logger.warning("fetching the %s from %s failed: %s%s", self.what, display_url(self.url), reason,
                       "; keeping the previously fetched copy" if serving_stale else "")
        return reason

    def _next_attempt_after_failure(self, now: float, retry_after: float | None) -> float:
        """When the next fetch may be made after one failed at `now`: the error backoff, or the server's Retry-After
        when it asked for longer, bounded by the stale window. A held copy keeps serving while we wait, so the wait
        ends no later than that copy stops being served and lasts at most `stale_if_error`; a huge (or hostile)
        value cannot turn a short outage into a long one. With no copy to serve, every token is refused meanwhile,
        so the error backoff alone decides."""
        wait = self.policy.error_backoff
        held = self._held
        if retry_after is not None and held is not None and now < held.stale_until:
            wait = max(wait, min(retry_after, self.policy.stale_if_error, held.stale_until - now))
        return now + wait


def make_fetcher(fetcher: Fetcher | None, allow_insecure_http: bool) -> Fetcher:
    """The caller's fetcher, or the standard-library one."""
    if fetcher is None:
        return HttpFetcher(allow_insecure_http=allow_insecure_http)
    if not callable(getattr(fetcher, "fetch", None)):
        raise TypeError(f"fetcher must have a fetch(url, *, timeout, max_bytes) method, got {type(fetcher).__name__}")
    return fetcher


class JwksCache:
    """A key source over a jwks_uri: `get_key(kid, alg)` and `hydrate()`, cached by the rules in the module docstring.

    jwks_uri             https URL of the key set (http only to loopback, and only with allow_insecure_http=True)
    fetcher              an object with fetch(url, *, timeout, max_bytes) -> FetchResult; default HttpFetcher
    clock                monotonic seconds; injectable for tests
    issuer               the issuer these keys belong to, for messages
    the rest             CachePolicy fields (seconds; max_bytes in bytes)

    Raises InsecureUrlError (a ValueError) at construction for a URL keys must not be fetched from.
    """

    def __init__(self, jwks_uri: str, *, fetcher: Fetcher | None = None, clock: Callable[[], float] = time.monotonic,
                 allow_insecure_http: bool = False, issuer: str | None = None, min_ttl: float = 60.0,
                 max_ttl: float = 86400.0, default_ttl: float = 600.0, refetch_cooldown: float = 30.0,
                 stale_if_error: float = 3600.0, error_backoff: float = 5.0,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES,
                 metrics: KeySetMetrics | None = None) -> None:
        self.jwks_uri = check_key_url(jwks_uri, allow_insecure_http=allow_insecure_http, what="jwks_uri")
        self.issuer = issuer
        self.metrics = metrics if metrics is not None else KeySetMetrics(clock=clock)
        self.policy = CachePolicy(min_ttl=min_ttl, max_ttl=max_ttl, default_ttl=default_ttl,
                                  refetch_cooldown=refetch_cooldown, stale_if_error=stale_if_error,
                                  error_backoff=error_backoff, timeout=timeout, max_bytes=max_bytes)
        self._document: RemoteDocument[KeySet] = RemoteDocument(
            self.jwks_uri, self._parse_key_set, what="JWKS", fetcher=make_fetcher(fetcher, allow_insecure_http),
            clock=clock, policy=self.policy,
            counters=self.metrics.document(issuer or display_url(self.jwks_uri), "jwks"))

    def __repr__(self) -> str:
        return f"JwksCache({display_url(self.jwks_uri)!r})"

    @property
    def fetch_count(self) -> int:
        """How many fetches this cache has made (for tests and metrics)."""
        return self._document.fetch_count

    @property
    def key_set(self) -> KeySet | None:
        """The keys held now, fresh or stale, without fetching."""
        return self._document.current

    def _parse_key_set(self, doc: dict, result: FetchResult) -> KeySet:
        source = f"JWKS {display_url(self.jwks_uri)}"
        key_set = KeySet.from_jwks(doc, source=source)
        if not key_set.keys:
            reasons = "; ".join(key_set.skipped[:5]) or "the keys array is empty"
            raise ValueError(f"{source} has no usable signing key ({reasons})")
        previous = self._document.current
        if previous is not None and not set(key_set.kids) <= set(previous.kids):
            self._document.counters.rotation_seen()
        for reason in key_set.skipped:
            logger.info("%s: skipped %s", source, reason)
        return key_set

    def hydrate(self) -> None:
        """Fetch the keys now unless fresh ones are held (call at Lambda init). Raises TokenRejected
        ("jwks_unavailable") when they cannot be had; a caller at init may log that and carry on, since get_key tries
        again (after the error backoff)."""
        self._document.get()

    def get_key(self, kid: str | None, alg: str) -> JsonWebKey:
        """The key for `kid` that verifies `alg`. Raises TokenRejected: unknown_kid, alg_not_allowed (the kid exists
        but its key cannot verify `alg`) or jwks_unavailable."""
        key_set = self._document.get()
        key = key_set.find(kid, alg)
        if key is not None:
            return key
        if kid is not None and key_set.has_kid(kid):
            # The kid is published, for another algorithm: a refetch cannot change that.
            raise key_not_found(key_set, kid, alg)
        outcome = self._document.refresh(cooldown=self.policy.refetch_cooldown)
        if outcome != "skipped":
            self._document.counters.refetched_for_unknown_kid()
        # Whatever the outcome, look again: a concurrent caller may have fetched the new keys a moment ago.
        key_set = self._document.current or key_set
        key = key_set.find(kid, alg)
        if key is not None:
            return key
        if outcome == "failed" or (outcome == "skipped" and self._document.last_error is not None):
            shown = "without a kid" if kid is None else f"kid {kid[:64]!r}"
            raise self._document.unavailable(
                self._document.last_error,
                state=f"a token {shown} is not among the cached keys and the latest refetch failed")
        raise key_not_found(key_set, kid, alg)


__all__ = ["CachePolicy", "JwksCache", "RemoteDocument", "make_fetcher", "InsecureUrlError"]
