"""The same decision and key-set counters as the EMF audit lines, as Prometheus text (exposition format 0.0.4), for a
long-running process to serve on `/metrics` (the forward-auth service does).

    counters = DecisionCounters(DecisionLabeller(api_name, route_keys))   # an audit-record observer
    text = render_prometheus(counters, verifier.key_metrics)

Series (labels are the bounded values of lambdas/observability/decisions.py and the policy's issuer identifiers):
  authgate_decisions_total{api,authorizer,outcome,reason,issuer,route}          counter
  authgate_decision_duration_seconds{api,authorizer}                            histogram
  authgate_key_fetches_total{issuer,document,outcome}                           counter (every outcome, zeros too)
  authgate_key_fetch_duration_seconds{issuer,document}                          histogram
  authgate_keys_served_stale_total{issuer,document}                             counter
  authgate_unknown_kid_refetches_total{issuer,document}                         counter
  authgate_key_rotations_total{issuer,document}                                 counter
  authgate_key_seconds_since_success{issuer,document}                           gauge (from the first attempt
                                                                                until one succeeds)
  authgate_verified_token_cache_hits_total                                      counter
Standard library only: this module ships in the Lambda asset too, where no client library is wanted.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Iterable, Mapping

from lambdas.validation.key_metrics import FETCH_OUTCOMES, FETCH_SECONDS_BUCKETS, KeySetMetrics

from .decisions import DecisionLabeller

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DECISION_SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 2.5)
_DECISION_LABELS = ("api", "authorizer", "outcome", "reason", "issuer", "route")


class DecisionCounters:
    """Counts decisions from their audit records (call it with each record: the forward-auth service's observer)."""

    def __init__(self, labeller: DecisionLabeller) -> None:
        self.labeller = labeller
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, ...], int] = {}
        self._latency: dict[tuple[str, str], list] = {}   # (api, authorizer) -> [bucket counts..., sum, count]

    def __call__(self, record: Mapping[str, Any]) -> None:
        labels = self.labeller.labels(authorizer=str(record.get("authorizer")), outcome=str(record.get("decision")),
                                      code=record.get("code"), route=record.get("route"),
                                      issuer_name=record.get("issuer_name"))
        key = tuple(labels.as_dict()[name] for name in _DECISION_LABELS)
        seconds = max(0, int(record.get("latency_us") or 0)) / 1e6
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            histogram = self._latency.setdefault((labels.api, labels.authorizer),
                                                 [0] * len(DECISION_SECONDS_BUCKETS) + [0.0, 0])
            for index, bound in enumerate(DECISION_SECONDS_BUCKETS):
                if seconds <= bound:
                    histogram[index] += 1
            histogram[-2] += seconds
            histogram[-1] += 1

    def snapshot(self) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, str], list]]:
        with self._lock:
            return dict(self._counts), {key: list(value) for key, value in self._latency.items()}


def render_prometheus(decisions: DecisionCounters | None, key_metrics: KeySetMetrics | None) -> str:
    """The exposition text of every series above that has data."""
    out: list[str] = []
    if decisions is not None:
        counts, latency = decisions.snapshot()
        _family(out, "authgate_decisions_total", "counter", "Authorization decisions by outcome and reason code.",
                ((dict(zip(_DECISION_LABELS, key)), value) for key, value in sorted(counts.items())))
        _histogram(out, "authgate_decision_duration_seconds", "Time to decide one request.",
                   DECISION_SECONDS_BUCKETS,
                   ((({"api": api, "authorizer": kind}), h[:-2], h[-2], h[-1]) for (api, kind), h in
                    sorted(latency.items())))
    if key_metrics is not None:
        snapshot = key_metrics.snapshot()
        docs = sorted(snapshot.documents, key=lambda d: (d.issuer, d.document))

        def where(doc: Any) -> dict[str, str]:
            return {"issuer": doc.issuer, "document": doc.document}

        _family(out, "authgate_key_fetches_total", "counter",
                "Fetches of issuers' key sets and discovery documents, by outcome.",
                (({**where(d), "outcome": outcome}, d.fetches[outcome]) for d in docs for outcome in FETCH_OUTCOMES))
        _histogram(out, "authgate_key_fetch_duration_seconds", "Time one key-set or discovery fetch took.",
                   FETCH_SECONDS_BUCKETS,
                   ((where(d), d.fetch_seconds_buckets, d.fetch_seconds_sum, d.fetch_count) for d in docs))
        _family(out, "authgate_keys_served_stale_total", "counter",
                "Requests served from a key set past its freshness because refetching it failed.",
                ((where(d), d.stale_served) for d in docs))
        _family(out, "authgate_unknown_kid_refetches_total", "counter",
                "Refetches made because a token named a kid the held keys lack.",
                ((where(d), d.unknown_kid_refetches) for d in docs if d.document == "jwks"))
        _family(out, "authgate_key_rotations_total", "counter",
                "Fetched key sets holding a kid the previous one did not.",
                ((where(d), d.rotations) for d in docs if d.document == "jwks"))
        _family(out, "authgate_key_seconds_since_success", "gauge",
                "Seconds since the last successful fetch (since the first attempt while none has succeeded).",
                ((where(d), d.seconds_since_success) for d in docs if d.seconds_since_success is not None))
        _family(out, "authgate_verified_token_cache_hits_total", "counter",
                "Tokens answered from the verified-token cache without verifying the signature again.",
                [({}, snapshot.verified_cache_hits)])
    return "".join(line + "\n" for line in out)


def _family(out: list[str], name: str, kind: str, help_text: str,
            samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
    samples = list(samples)
    if not samples:
        return
    out.append(f"# HELP {name} {_escape_help(help_text)}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)


def _histogram(out: list[str], name: str, help_text: str, bounds: tuple[float, ...],
               series: Iterable[tuple[Mapping[str, str], Iterable[int], float, int]]) -> None:
    series = list(series)
    if not series:
        return
    out.append(f"# HELP {name} {_escape_help(help_text)}")
    out.append(f"# TYPE {name} histogram")
    for labels, buckets, total, count in series:
        for bound, cumulative in zip(bounds, buckets):
            out.append(f"{name}_bucket{_labels({**labels, 'le': _number(bound)})} {cumulative}")
        out.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {count}")
        out.append(f"{name}_sum{_labels(labels)} {_number(total)}")
        out.append(f"{name}_count{_labels(labels)} {count}")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape_label(str(value))}"' for key, value in labels.items()) + "}"


def _escape_label(value: str) -> str:
    # Exposition format: in label values, backslash, double quote and line feed are escaped.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
