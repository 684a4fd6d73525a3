"""Prometheus text on /metrics: the exposition (lambdas/observability/prometheus.py) read back by prometheus_client's
own parser, and the forward-auth service serving it for real under uvicorn after real decisions and key fetches."""
from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from lambdas.forward_auth.app import ForwardAuthApp
from lambdas.observability.decisions import DecisionLabeller
from lambdas.observability.prometheus import CONTENT_TYPE, DecisionCounters, render_prometheus
from lambdas.validation.key_metrics import FETCH_OUTCOMES, KeySetMetrics
from tests.support.http_server import LocalHttpServer

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client (dev extra) is not installed")


def families(text: str) -> dict:
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def samples(family, name: str | None = None) -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if name is None or s.name == name}


def test_decisions_and_key_sets_parse_back_exactly():
    counters = DecisionCounters(DecisionLabeller("orders", ["GET /orders"]))
    for record in ({"authorizer": "forward_auth", "decision": "allow", "code": None, "route": "GET /orders",
                    "issuer_name": "corp", "latency_us": 120},
                   {"authorizer": "forward_auth", "decision": "unauthorized", "code": "expired",
                    "route": "GET /orders", "issuer_name": None, "latency_us": 80},
                   {"authorizer": "forward_auth", "decision": "forbidden", "code": "route_not_found",
                    "route": "GET /users/alice/secret", "issuer_name": "corp", "latency_us": 3000}):
        counters(record)
    clock = [100.0]
    metrics = KeySetMetrics(clock=lambda: clock[0])
    jwks = metrics.document('https://idp.example.test/"odd"\\issuer\n', "jwks")
    jwks.fetched("ok", 0.04)
    jwks.fetched("timeout", 1.0)
    jwks.served_stale()
    jwks.rotation_seen()
    metrics.verified_cache_hits = 7
    clock[0] += 42
    text = render_prometheus(counters, metrics)
    found = families(text)

    decisions = found["authgate_decisions"]
    assert decisions.type == "counter"
    assert samples(decisions, "authgate_decisions_total") == {
        (("api", "orders"), ("authorizer", "forward_auth"), ("issuer", "corp"), ("outcome", "allow"),
         ("reason", "none"), ("route", "GET /orders")): 1,
        (("api", "orders"), ("authorizer", "forward_auth"), ("issuer", "none"), ("outcome", "unauthorized"),
         ("reason", "expired"), ("route", "GET /orders")): 1,
        (("api", "orders"), ("authorizer", "forward_auth"), ("issuer", "corp"), ("outcome", "forbidden"),
         ("reason", "route_not_found"), ("route", "unmatched")): 1,   # the raw path never becomes a label
    }
    duration = found["authgate_decision_duration_seconds"]
    assert duration.type == "histogram"
    buckets = [s for s in duration.samples if s.name.endswith("_bucket")]
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)   # cumulative
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 3
    assert samples(duration, "authgate_decision_duration_seconds_sum") == {
        (("api", "orders"), ("authorizer", "forward_auth")): pytest.approx(0.0032)}

    issuer = (("document", "jwks"), ("issuer", 'https://idp.example.test/"odd"\\issuer\n'))
    fetches = samples(found["authgate_key_fetches"], "authgate_key_fetches_total")
    assert fetches == {tuple(sorted((*issuer, ("outcome", o)))): (1 if o in ("ok", "timeout") else 0)
                       for o in FETCH_OUTCOMES}
    fetch_seconds = found["authgate_key_fetch_duration_seconds"]
    assert samples(fetch_seconds, "authgate_key_fetch_duration_seconds_count") == {issuer: 2}
    assert samples(fetch_seconds, "authgate_key_fetch_duration_seconds_bucket")[
        tuple(sorted((*issuer, ("le", "0.05"))))] == 1
    assert samples(found["authgate_keys_served_stale"]) == {issuer: 1}
    assert samples(found["authgate_key_rotations"]) == {issuer: 1}
    assert samples(found["authgate_unknown_kid_refetches"]) == {issuer: 0}
    assert found["authgate_key_seconds_since_success"].type == "gauge"
    assert samples(found["authgate_key_seconds_since_success"]) == {issuer: 42}
    assert samples(found["authgate_verified_token_cache_hits"]) == {(): 7}


def test_nothing_counted_yet_renders_only_what_exists():
    assert render_prometheus(None, None) == ""
    found = families(render_prometheus(DecisionCounters(DecisionLabeller("orders", [])), KeySetMetrics()))
    assert set(found) == {"authgate_verified_token_cache_hits"}


def test_the_forward_auth_service_serves_its_counters_on_metrics(make_service, table_for, signing_key, token_for):
    from tests.unit.forward_auth.test_forward_auth_server import InProcessServer, get, wait_ready

    with LocalHttpServer() as idp:
        idp.serve_json("/jwks.json", signing_key.jwks())
        service = make_service(table_for(jwks=None, jwks_uri=idp.url("/jwks.json"), allow_insecure_http=True))
        with InProcessServer(ForwardAuthApp(service)) as running:
            wait_ready(running.base)
            token = token_for()
            for uri in ("/orders", "/orders", "/nowhere"):
                get(running.base + "/auth", {"X-Original-Method": "GET", "X-Original-URI": uri,
                                             "Authorization": f"Bearer {token}"})
            get(running.base + "/auth", {"X-Original-Method": "GET", "X-Original-URI": "/orders"})
            status, headers, body = get(running.base + "/metrics")
            assert status == 200 and headers["content-type"] == CONTENT_TYPE
            assert get(running.base + "/metrics")[0] == 200
            post = urllib.request.Request(running.base + "/metrics", data=b"", method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(post, timeout=10)
            assert refused.value.code == 405
    found = families(body.decode())
    by_outcome = {}
    for labels, value in samples(found["authgate_decisions"], "authgate_decisions_total").items():
        labels = dict(labels)
        by_outcome[(labels["outcome"], labels["reason"], labels["route"])] = value
    assert by_outcome == {("allow", "none", "GET /orders"): 2, ("forbidden", "route_not_found", "unmatched"): 1,
                          ("unauthorized", "malformed", "GET /orders"): 1}
    fetches = samples(found["authgate_key_fetches"], "authgate_key_fetches_total")
    assert sum(v for k, v in fetches.items() if ("outcome", "ok") in k) == 1
    assert samples(found["authgate_verified_token_cache_hits"]) == {(): 2}   # the second and third requests


def test_metrics_before_the_configuration_loads(tmp_path):
    app = ForwardAuthApp.from_env({"AUTHGATE_POLICY": str(tmp_path / "missing.json"), "AUTHGATE_API": "orders"})
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    # A loop of its own, never installed as the thread's: asyncio.run() would leave "no current event loop" behind
    # for later tests that ask for one (Pulumi's mocks do).
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(app({"type": "http", "path": "/metrics", "method": "GET"}, None, send))
    finally:
        loop.close()
    assert sent[0]["status"] == 503
