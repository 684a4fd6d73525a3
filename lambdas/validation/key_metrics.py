"""Counters of what an issuer's remote key material did: fetch outcomes and latency, stale copies served, unknown-kid
refetches, rotations seen, the time since the last good fetch; and verified-token cache hits.

The key cache (jwks_cache.py) and discovery call one small hook at each event, on a `DocumentCounters` they were given
(one per remote document: a JWKS or a discovery document, labelled by the issuer it belongs to). The counters only
ever grow; whoever exposes them turns them into what their format wants: deltas per audit line for CloudWatch EMF
(lambdas/observability/emf.py), cumulative series for Prometheus (lambdas/observability/prometheus.py). Nothing here
writes anywhere or touches the network.

Labels are the issuer identifier from the configuration (never anything a token carried), so their number is bounded
by the policy.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from .records import Record, set_field

# Every way one fetch of a remote document can end. FetchError.kind carries the failure ones.
FETCH_OUTCOMES = ("ok", "timeout", "http_error", "over_cap", "malformed", "transport_error")
FETCH_FAILURES = FETCH_OUTCOMES[1:]
DOCUMENT_KINDS = ("jwks", "discovery")

# Upper bounds (seconds) of the fetch latency histogram: the default fetch timeout is 1 s, API Gateway's budget 1.5 s.
FETCH_SECONDS_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5)


class DocumentCounters:
    """What happened to one remote document. Mutated only through its methods (under the owner's lock); read through
    KeySetMetrics.snapshot()."""

    __slots__ = ("issuer", "document", "_lock", "_clock", "_owner", "fetches", "fetch_seconds_sum",
                 "fetch_seconds_buckets", "stale_served", "unknown_kid_refetches", "rotations", "first_attempt_at",
                 "last_success_at")

    def __init__(self, issuer: str, document: str, lock: threading.Lock, clock: Callable[[], float],
                 owner: "KeySetMetrics") -> None:
        self.issuer = issuer
        self.document = document
        self._lock = lock
        self._clock = clock
        self._owner = owner
        self.fetches: dict[str, int] = dict.fromkeys(FETCH_OUTCOMES, 0)
        self.fetch_seconds_sum = 0.0
        self.fetch_seconds_buckets: list[int] = [0] * len(FETCH_SECONDS_BUCKETS)
        self.stale_served = 0
        self.unknown_kid_refetches = 0
        self.rotations = 0
        self.first_attempt_at: float | None = None
        self.last_success_at: float | None = None

    def fetched(self, outcome: str, seconds: float) -> None:
        """One fetch ended with `outcome` (one of FETCH_OUTCOMES) after `seconds`."""
        if outcome not in self.fetches:
            raise ValueError(f"unknown fetch outcome {outcome!r}; expected one of {', '.join(FETCH_OUTCOMES)}")
        seconds = max(0.0, float(seconds))
        with self._lock:
            now = self._clock()
            self.fetches[outcome] += 1
            self.fetch_seconds_sum += seconds
            for index, bound in enumerate(FETCH_SECONDS_BUCKETS):
                if seconds <= bound:
                    self.fetch_seconds_buckets[index] += 1
            if self.first_attempt_at is None:
                self.first_attempt_at = now
            if outcome == "ok":
                self.last_success_at = now
            self._owner.events += 1

    def served_stale(self) -> None:
        """A caller got the held copy past its freshness because refetching it failed."""
        with self._lock:
            self.stale_served += 1
            self._owner.events += 1

    def refetched_for_unknown_kid(self) -> None:
        """A token's kid was not among the held keys and a refetch was made (or joined) for it."""
        with self._lock:
            self.unknown_kid_refetches += 1
            self._owner.events += 1

    def rotation_seen(self) -> None:
        """A fetched key set holds a kid the previously held one did not: the issuer rotated (or added) a key."""
        with self._lock:
            self.rotations += 1
            self._owner.events += 1


class DocumentSnapshot(Record):
    """The counters of one document at one moment (copies, safe to read without a lock).

    seconds_since_success   None: no fetch was ever attempted"""

    __slots__ = ("issuer", "document", "fetches", "fetch_seconds_sum", "fetch_seconds_buckets", "stale_served",
                 "unknown_kid_refetches", "rotations", "seconds_since_success", "ever_succeeded")

    def __init__(self, issuer: str, document: str, fetches: dict[str, int], fetch_seconds_sum: float,
                 fetch_seconds_buckets: tuple[int, ...], stale_served: int, unknown_kid_refetches: int, rotations: int,
                 seconds_since_success: float | None, ever_succeeded: bool) -> None:
        set_field(self, "issuer", issuer)
        set_field(self, "document", document)
        set_field(self, "fetches", fetches)
        set_field(self, "fetch_seconds_sum", fetch_seconds_sum)
        set_field(self, "fetch_seconds_buckets", fetch_seconds_buckets)
        set_field(self, "stale_served", stale_served)
        set_field(self, "unknown_kid_refetches", unknown_kid_refetches)
        set_field(self, "rotations", rotations)
        set_field(self, "seconds_since_success", seconds_since_success)
        set_field(self, "ever_succeeded", ever_succeeded)

    @property
    def fetch_count(self) -> int:
        return sum(self.fetches.values())

    @property
    def failures(self) -> int:
        return sum(self.fetches[outcome] for outcome in FETCH_FAILURES)


class MetricsSnapshot(Record):
    """Every document's counters and the verified-token cache hits, at one moment."""

    __slots__ = ("documents", "verified_cache_hits")

    def __init__(self, documents: tuple[DocumentSnapshot, ...], verified_cache_hits: int) -> None:
        set_field(self, "documents", documents)
        set_field(self, "verified_cache_hits", verified_cache_hits)


class KeySetMetrics:
    """The counters of every remote document one Verifier (or one stand-alone key cache) uses.

    clock   monotonic seconds, for "seconds since the last good fetch"; injectable for tests
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._documents: dict[tuple[str, str], DocumentCounters] = {}
        # Incremented on the verified-token cache's hit path without a lock: the decision hot path must not pay for
        # one. Lambda runs one request at a time; under threads an increment can rarely be lost, never invented.
        self.verified_cache_hits = 0
        # Every key-set event (not cache hits) bumps this, so a reader can tell cheaply whether anything moved.
        self.events = 0

    def document(self, issuer: str, document: str) -> DocumentCounters:
        """The counters of the `document` ("jwks" or "discovery") of `issuer`, created on first use."""
        if document not in DOCUMENT_KINDS:
            raise ValueError(f"document must be one of {', '.join(DOCUMENT_KINDS)}, got {document!r}")
        key = (issuer, document)
        with self._lock:
            counters = self._documents.get(key)
            if counters is None:
                counters = self._documents[key] = DocumentCounters(issuer, document, self._lock, self._clock, self)
            return counters

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            now = self._clock()
            documents = tuple(
                DocumentSnapshot(
                    issuer=c.issuer, document=c.document, fetches=dict(c.fetches),
                    fetch_seconds_sum=c.fetch_seconds_sum, fetch_seconds_buckets=tuple(c.fetch_seconds_buckets),
                    stale_served=c.stale_served, unknown_kid_refetches=c.unknown_kid_refetches, rotations=c.rotations,
                    seconds_since_success=_seconds_since(now, c.last_success_at or c.first_attempt_at),
                    ever_succeeded=c.last_success_at is not None)
                for c in self._documents.values())
        return MetricsSnapshot(documents, self.verified_cache_hits)


def _seconds_since(now: float, then: float | None) -> float | None:
    # Never succeeded: the age counts from the first attempt, so a key set that was never had shows a growing age.
    return None if then is None else max(0.0, now - then)


__all__ = ["KeySetMetrics", "DocumentCounters", "DocumentSnapshot", "MetricsSnapshot", "FETCH_OUTCOMES",
           "FETCH_FAILURES", "FETCH_SECONDS_BUCKETS"]
