"""CloudWatch Embedded Metric Format (EMF) members for the audit line an authorizer writes per decision.

CloudWatch Logs extracts metrics from a JSON log line that carries an `_aws` member (the metadata object: a
millisecond `Timestamp` and `CloudWatchMetrics`, a list of metric directives, each a `Namespace`, `Dimensions` (lists
of member names) and `Metrics` (names and units)) and, at the top level, the members those names refer to: strings
for dimensions, numbers for metrics. So the metrics cost no API call, no SDK and no extra line: they ride in the audit
line that is written anyway. Specification:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

Two directives per line:
- decisions: `Decisions` (1, Count) and `DecisionLatency` (Milliseconds), by the dimension sets in DECISION_DIMENSIONS;
  the values come from DecisionLabeller, so they are bounded (never sub, jti, a raw path or a token).
- key sets: what the API's remote key sets did since they were last reported (fetches, failures by kind, stale keys
  served, unknown-kid refetches, rotations, verified-token cache hits) and how old the stalest good key set is, by API
  and authorizer kind. Reported on the first line after any key-set event (fetch, stale copy served, refetch,
  rotation), else on one line a minute with zeros: sums stay exact, alarms see data each minute the API is used, and
  most lines carry only the decision.

The dimension members are PascalCase names of their own (`ApiName`, `Outcome`, ...) beside the audit fields
(`decision`, `code`, ...), whose values may be null where a dimension must be a string.
"""
from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, Callable, Iterable

from lambdas.validation.key_metrics import FETCH_FAILURES, KeySetMetrics

from .decisions import DecisionLabeller

DEFAULT_NAMESPACE = "authgate"

# Member names of the dimensions, and which label each carries.
DIMENSION_MEMBERS = {"ApiName": "api", "AuthorizerKind": "authorizer", "Outcome": "outcome", "Reason": "reason",
                     "IssuerName": "issuer", "RouteKey": "route"}
DECISION_DIMENSIONS = (
    ("ApiName", "AuthorizerKind"),
    ("ApiName", "AuthorizerKind", "Outcome"),
    ("ApiName", "AuthorizerKind", "Outcome", "Reason"),
    ("ApiName", "AuthorizerKind", "RouteKey", "Outcome"),
    ("ApiName", "AuthorizerKind", "IssuerName", "Outcome"),
)
KEY_SET_DIMENSIONS = (("ApiName", "AuthorizerKind"),)

DECISION_METRICS = (("Decisions", "Count"), ("DecisionLatency", "Milliseconds"))
# A failed fetch of each kind (lambdas.validation.key_metrics.FETCH_FAILURES) has a metric of its own.
FAILURE_METRICS = {kind: "KeyFetch" + "".join(part.capitalize() for part in kind.split("_"))
                   for kind in FETCH_FAILURES}
KEY_SET_COUNT_METRICS = ("KeyFetches", "KeyFetchFailures", *FAILURE_METRICS.values(), "KeysServedStale",
                         "UnknownKidRefetches", "KeyRotations", "VerifiedCacheHits")
KEY_SET_UNITS = {"KeyFetchLatency": "Milliseconds", "KeyAge": "Seconds"}   # the others count
# While no key-set counter moves, key-set members ride on one line a minute (KeyAge, cache hits): enough for
# one-minute alarms, and every other line stays small.
KEY_SET_INTERVAL_SECONDS = 60.0

# CloudWatch namespaces: 1-255 of these characters, and not AWS's own (AWS/...).
_NAMESPACE = re.compile(r"[A-Za-z0-9.\-_/#: ]{1,255}")


def check_namespace(namespace: Any) -> str:
    """The namespace, or ValueError saying what a CloudWatch namespace may be."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace) or namespace.startswith("AWS/"):
        raise ValueError(f"the metrics namespace must be 1-255 letters, digits, spaces or . - _ / # : and must not "
                         f"start with AWS/, found {namespace!r}")
    return namespace


class DecisionMetrics:
    """The EMF members of each audit line of one API's authorizer.

    api              the API's name in the route table (the ApiName dimension)
    route_keys       the API's route keys; any other route is counted as "unmatched"
    key_metrics      the Verifier's KeySetMetrics, reported as deltas
    namespace        the CloudWatch namespace (default "authgate"; one per deployment stage keeps stages apart)
    clock            wall-clock seconds for the EMF Timestamp and the key-set report interval
    key_set_interval seconds between key-set reports while no key-set counter moves
    """

    def __init__(self, api: str, *, route_keys: Iterable[str], key_metrics: KeySetMetrics,
                 namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], float] = time.time,
                 key_set_interval: float = KEY_SET_INTERVAL_SECONDS) -> None:
        self.namespace = check_namespace(namespace)
        self.labeller = DecisionLabeller(api, route_keys)
        self.key_metrics = key_metrics
        self.key_set_interval = key_set_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._reported: dict[str, int] = {}
        self._reported_events = -1
        self._reported_at = float("-inf")
        # The directives are the same on every line (the key-set one per set of metrics present): built once.
        self._decision_directive = _Directives(_directive(self.namespace, DECISION_DIMENSIONS, DECISION_METRICS))
        self._decision_only = _Directives([self._decision_directive.value])
        self._key_directives: dict[tuple[str, ...], dict[str, Any]] = {}
        self._directive_pairs: dict[tuple[str, ...], _Directives] = {}

    def fields(self, *, authorizer: str, outcome: str, code: str | None, route: str | None, principal: Any = None,
               latency_us: int) -> dict[str, Any]:
        """The members to merge into the audit line of one decision."""
        labels = self.labeller.labels(authorizer=authorizer, outcome=outcome, code=code, route=route,
                                      issuer_name=getattr(principal, "issuer_name", None))
        now = self._clock()
        members: dict[str, Any] = {
            "ApiName": labels.api, "AuthorizerKind": labels.authorizer, "Outcome": labels.outcome,
            "Reason": labels.reason, "IssuerName": labels.issuer, "RouteKey": labels.route,
            "Decisions": 1, "DecisionLatency": round(latency_us / 1000.0, 3)}
        directives = self._decision_only
        key_values = self._key_set_members(now)
        if key_values:
            members.update(key_values)
            names = tuple(key_values)
            directive = self._key_directives.get(names)
            if directive is None:
                directive = self._key_directives[names] = _directive(
                    self.namespace, KEY_SET_DIMENSIONS, [(name, KEY_SET_UNITS.get(name, "Count")) for name in names])
            directives = self._directive_pairs.get(names)
            if directives is None:
                directives = self._directive_pairs[names] = _Directives([self._decision_directive.value, directive])
        members["_aws"] = EmfMetadata(int(now * 1000), directives)
        return members

    def _key_set_members(self, now: float) -> dict[str, float] | None:
        """What the key sets did since the previous report, and the age of the stalest one; None when nothing moved
        and the last report is younger than key_set_interval (the common case: no snapshot is taken then)."""
        events = self.key_metrics.events
        if events == self._reported_events and now - self._reported_at < self.key_set_interval:
            return None
        snapshot = self.key_metrics.snapshot()
        totals = dict.fromkeys(KEY_SET_COUNT_METRICS, 0)
        fetch_seconds = 0.0
        ages = []
        for doc in snapshot.documents:
            totals["KeyFetches"] += doc.fetch_count
            totals["KeyFetchFailures"] += doc.failures
            for kind, name in FAILURE_METRICS.items():
                totals[name] += doc.fetches[kind]
            totals["KeysServedStale"] += doc.stale_served
            totals["UnknownKidRefetches"] += doc.unknown_kid_refetches
            totals["KeyRotations"] += doc.rotations
            fetch_seconds += doc.fetch_seconds_sum
            if doc.seconds_since_success is not None:
                ages.append(doc.seconds_since_success)
        totals["VerifiedCacheHits"] = snapshot.verified_cache_hits
        with self._lock:
            previous, self._reported = self._reported, {**totals, "_fetch_us": int(fetch_seconds * 1e6)}
            self._reported_events, self._reported_at = events, now
        values: dict[str, float] = {name: max(0, totals[name] - previous.get(name, 0)) for name in totals}
        if values["KeyFetches"]:
            # The fetches since the last report (usually one) as their mean latency; a metric may not be empty.
            fetched_us = int(fetch_seconds * 1e6) - previous.get("_fetch_us", 0)
            values["KeyFetchLatency"] = round(max(0, fetched_us) / 1000.0 / values["KeyFetches"], 3)
        if ages:
            values["KeyAge"] = round(max(ages), 3)
        return values


class _Directives:
    """Metric directives with their JSON text, encoded once."""

    __slots__ = ("value", "text")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text = json.dumps(value, separators=(",", ":"))


class EmfMetadata:
    """The `_aws` member of one line: its Timestamp and the (constant, pre-encoded) directives. Encoding the
    directives on every line would cost more than the rest of the line; `json_text()` splices them in instead.
    lambdas/authorizers/audit.audit_line() writes it; `as_dict()` is the plain value."""

    __slots__ = ("timestamp", "_directives")

    def __init__(self, timestamp: int, directives: _Directives) -> None:
        self.timestamp = timestamp
        self._directives = directives

    def as_dict(self) -> dict[str, Any]:
        return {"Timestamp": self.timestamp, "CloudWatchMetrics": self._directives.value}

    def json_text(self) -> str:
        return f'{{"Timestamp":{self.timestamp},"CloudWatchMetrics":{self._directives.text}}}'


def _directive(namespace: str, dimensions: Iterable[Iterable[str]],
               metrics: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"Namespace": namespace, "Dimensions": [list(dims) for dims in dimensions],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics]}
