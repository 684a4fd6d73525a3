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
- key sets: what the API's remote key sets did since the previous line (fetches, failures by kind, stale keys served,
  unknown-kid refetches, rotations, verified-token cache hits) and how old the oldest good key set is, by API and
  authorizer kind. Every line carries these, zeros included, so an alarm sees "no failures" rather than no data.

The dimension members are PascalCase names of their own (`ApiName`, `Outcome`, ...) beside the audit fields
(`decision`, `code`, ...), whose values may be null where a dimension must be a string.
"""
from __future__ import annotations

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

    api           the API's name in the route table (the ApiName dimension)
    route_keys    the API's route keys; any other route is counted as "unmatched"
    key_metrics   the Verifier's KeySetMetrics, reported as deltas per line
    namespace     the CloudWatch namespace (default "authgate"; one per deployment stage keeps stages apart)
    clock         wall-clock seconds for the EMF Timestamp
    """

    def __init__(self, api: str, *, route_keys: Iterable[str], key_metrics: KeySetMetrics,
                 namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], float] = time.time) -> None:
        self.namespace = check_namespace(namespace)
        self.labeller = DecisionLabeller(api, route_keys)
        self.key_metrics = key_metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._reported: dict[str, int] = {}

    def fields(self, *, authorizer: str, outcome: str, code: str | None, route: str | None, principal: Any = None,
               latency_us: int) -> dict[str, Any]:
        """The members to merge into the audit line of one decision."""
        labels = self.labeller.labels(authorizer=authorizer, outcome=outcome, code=code, route=route,
                                      issuer_name=getattr(principal, "issuer_name", None)).as_dict()
        members: dict[str, Any] = {member: labels[label] for member, label in DIMENSION_MEMBERS.items()}
        members["Decisions"] = 1
        members["DecisionLatency"] = round(latency_us / 1000.0, 3)
        key_values, key_units = self._key_set_members()
        members.update(key_values)
        directives = [
            _directive(self.namespace, DECISION_DIMENSIONS, DECISION_METRICS),
            _directive(self.namespace, KEY_SET_DIMENSIONS, [(name, key_units[name]) for name in key_values]),
        ]
        members["_aws"] = {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": directives}
        return members

    def _key_set_members(self) -> tuple[dict[str, float], dict[str, str]]:
        """What the key sets did since the previous line (counts), and the age of the stalest one."""
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
        values: dict[str, float] = {name: max(0, totals[name] - previous.get(name, 0)) for name in totals}
        units = dict.fromkeys(values, "Count")
        if values["KeyFetches"]:
            # The line's fetches (usually one) as their mean latency; a metric may not be an empty list.
            fetched_us = int(fetch_seconds * 1e6) - previous.get("_fetch_us", 0)
            values["KeyFetchLatency"] = round(max(0, fetched_us) / 1000.0 / values["KeyFetches"], 3)
            units["KeyFetchLatency"] = "Milliseconds"
        if ages:
            values["KeyAge"] = round(max(ages), 3)
            units["KeyAge"] = "Seconds"
        return values, units


def _directive(namespace: str, dimensions: Iterable[Iterable[str]],
               metrics: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"Namespace": namespace, "Dimensions": [list(dims) for dims in dimensions],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics]}
