"""The audit line of every authorizer is also a CloudWatch Embedded Metric Format document, checked here against the
rules of AWS's specification, with dimensions that never carry a token, a subject, a token id or a raw path.

Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""
from __future__ import annotations

import json
import time

import pytest

from lambdas.authorizers.runtime import AuthorizerMisconfigured
from lambdas.observability.emf import DecisionMetrics, check_namespace
from lambdas.validation.key_metrics import KeySetMetrics

# The units a MetricDefinition may name (the CloudWatch MetricDatum units).
CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}
ALLOWED_DIMENSION_NAMES = {"ApiName", "AuthorizerKind", "Outcome", "Reason", "IssuerName", "RouteKey"}


def check_emf(line: str) -> dict:
    """Parse one log line and check it against the EMF specification; returns the document."""
    doc = json.loads(line)
    assert isinstance(doc, dict), "the root node must be a JSON object"
    meta = doc["_aws"]
    assert isinstance(meta, dict) and set(meta) == {"Timestamp", "CloudWatchMetrics"}
    # Timestamp: milliseconds since the epoch; CloudWatch drops metrics more than 2 weeks old or 2 hours ahead.
    now_ms = time.time() * 1000
    assert type(meta["Timestamp"]) is int and now_ms - 14 * 86400_000 < meta["Timestamp"] < now_ms + 7200_000
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}, "a MetricDirective has no other members"
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            assert len(set(dimension_set)) == len(dimension_set)
            for name in dimension_set:
                value = doc[name]  # a dimension refers to a member of the root node ...
                assert isinstance(value, str) and 1 <= len(value) <= 1024  # ... whose value is a string
        metrics = directive["Metrics"]
        assert isinstance(metrics, list) and len(metrics) <= 100
        for definition in metrics:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"} and "Name" in definition
            assert isinstance(definition["Name"], str) and 1 <= len(definition["Name"]) <= 1024
            assert definition.get("Unit", "None") in CLOUDWATCH_UNITS
            assert definition.get("StorageResolution", 60) in (1, 60)
            value = doc[definition["Name"]]  # a metric refers to a root member holding a number (or <= 100 numbers)
            values = value if isinstance(value, list) else [value]
            assert values and len(values) <= 100
            assert all(type(v) in (int, float) for v in values), (definition["Name"], value)
    return doc


def dimension_values(doc: dict) -> dict[str, str]:
    names = {name for d in doc["_aws"]["CloudWatchMetrics"] for dims in d["Dimensions"] for name in dims}
    assert names <= ALLOWED_DIMENSION_NAMES, names - ALLOWED_DIMENSION_NAMES
    return {name: doc[name] for name in names}


def emf_lines(captured: str) -> list[dict]:
    return [check_emf(line) for line in captured.splitlines() if line.startswith('{"authgate"')]


def assert_no_identity_in_dimensions(docs: list[dict], tokens: list[str]) -> None:
    for doc in docs:
        values = dimension_values(doc)
        for value in values.values():
            for token in tokens:
                assert token not in value and value not in token
            for identity in (doc.get("sub"), doc.get("jti"), doc.get("client_id")):
                if identity:
                    assert value != identity


def test_rest_lines_are_emf_with_one_decision_each(load_handler, events, token_for, capsys):
    rest = load_handler("rest")
    good, weak = token_for("orders:read", jti="jti-123"), token_for("", jti="jti-456")
    rest.handler(events.rest_token(f"Bearer {good}", "GET", "/orders/42"))
    rest.handler(events.rest_token(f"Bearer {weak}", "POST", "/orders"))
    with pytest.raises(Exception, match="^Unauthorized$"):
        rest.handler(events.rest_token("Bearer not.a.token", "GET", "/orders"))
    rest.handler(events.rest_token(f"Bearer {good}", "GET", "/nowhere/at/all"))
    docs = emf_lines(capsys.readouterr().out)
    assert [(d["Outcome"], d["Reason"], d["RouteKey"], d["IssuerName"]) for d in docs] == [
        ("allow", "none", "GET /orders/{id}", "corp"),
        ("forbidden", "insufficient_scope", "POST /orders", "corp"),
        ("unauthorized", "malformed", "GET /orders", "none"),
        ("forbidden", "route_not_found", "unmatched", "corp"),
    ]
    assert all(d["ApiName"] == "orders" and d["AuthorizerKind"] == "rest" and d["Decisions"] == 1 for d in docs)
    assert all(d["DecisionLatency"] == d["latency_us"] / 1000 for d in docs)
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "authgate" for d in docs)
    assert docs[0]["sub"] == "user-123" and docs[0]["jti"] == "jti-123"  # the audit fields are still there
    assert_no_identity_in_dimensions(docs, [good, weak])


def test_http_api_and_websocket_lines_are_emf(load_handler, events, token_for, signing_key, capsys):
    http = load_handler("http_api", AUTHGATE_RESPONSE=None, AUTHGATE_RESULT_TTL_SECONDS=None)
    token = token_for("orders:read")
    http.handler(events.http_api(f"Bearer {token}", "GET /orders/{id}", "/orders/3"))
    http.handler(events.http_api(f"Bearer {token}", "GET /not/in/the/table", "/not/in/the/table"))
    document = events.table(signing_key, [events.route("$connect", scopes=["chat:join"])])
    ws = load_handler("websocket", document, AUTHGATE_WS_TOKEN_SOURCE="query")
    with pytest.raises(Exception, match="^Unauthorized$"):
        ws.handler(events.websocket(query={"access_token": "x.y.z"}))
    ws.handler(events.websocket(query={"access_token": token}))
    docs = emf_lines(capsys.readouterr().out)
    assert [(d["AuthorizerKind"], d["Outcome"], d["Reason"], d["RouteKey"]) for d in docs] == [
        ("http_api", "allow", "none", "GET /orders/{id}"),
        ("http_api", "forbidden", "route_not_found", "unmatched"),
        ("websocket", "unauthorized", "malformed", "$connect"),
        ("websocket", "forbidden", "insufficient_scope", "$connect"),
    ]
    assert_no_identity_in_dimensions(docs, [token])


def test_namespace_from_the_environment_and_refused_when_invalid(load_handler, events, token_for, capsys):
    rest = load_handler("rest", AUTHGATE_METRICS_NAMESPACE="authgate/prod")
    rest.handler(events.rest_token(f"Bearer {token_for('orders:read')}", "GET", "/orders"))
    (doc,) = emf_lines(capsys.readouterr().out)
    assert {d["Namespace"] for d in doc["_aws"]["CloudWatchMetrics"]} == {"authgate/prod"}
    rest = load_handler("rest", AUTHGATE_METRICS_NAMESPACE="AWS/Lambda")
    assert "AUTHGATE_METRICS_NAMESPACE" in capsys.readouterr().err
    with pytest.raises(AuthorizerMisconfigured, match="must not start with AWS/"):
        rest.handler(events.rest_token(f"Bearer {token_for('orders:read')}", "GET", "/orders"))


@pytest.mark.parametrize("namespace", ["", "a" * 256, "AWS/ApiGateway", "bad\nname", "emoji\u2603", None])
def test_invalid_namespaces(namespace):
    with pytest.raises(ValueError, match="metrics namespace"):
        check_namespace(namespace)


def test_labels_outside_their_sets_are_folded(signing_key):
    metrics = DecisionMetrics("orders", route_keys=["GET /orders"], key_metrics=KeySetMetrics())
    fields = metrics.fields(authorizer="rest", outcome="unauthorized", code="a-code-nobody-defined",
                            route="/orders/4711?user=alice", latency_us=1500)
    assert (fields["Reason"], fields["RouteKey"], fields["IssuerName"]) == ("other", "unmatched", "none")
    assert metrics.fields(authorizer="rest", outcome="maybe", code=None, route=None, latency_us=1)["Outcome"] == \
        "other"


class FlakyKeyServer:
    """A JWKS endpoint in memory whose answers a test scripts (the real HTTP paths are covered in
    tests/unit/validation/test_key_set_metrics.py)."""

    def __init__(self, jwks: dict) -> None:
        self.jwks, self.failing = jwks, False

    def fetch(self, url, *, timeout, max_bytes):
        from lambdas.validation.fetcher import FetchError, FetchResult
        if self.failing:
            raise FetchError(url, "timed out after 1 s", kind="timeout")
        return FetchResult(url=url, status=200, body=json.dumps(self.jwks).encode(), max_age=60)


def test_key_set_events_ride_in_the_next_line_as_deltas(signing_key, events, token_for, capsys):
    from lambdas.authorizers import rest
    from lambdas.authorizers.runtime import AuthorizerRuntime, AuthorizerUnavailable
    from lambdas.validation import Verifier
    from lambdas.validation.jwks_cache import JwksCache
    from lambdas.validation.route_table import RouteTable

    clock = [1000.0]
    document = events.table(signing_key)
    document["issuers"]["corp"].update(jwks=None, jwks_uri="https://idp.example.test/jwks")
    table = RouteTable.load(document)
    server = FlakyKeyServer(signing_key.jwks())
    metrics = KeySetMetrics(clock=lambda: clock[0])
    keys = JwksCache("https://idp.example.test/jwks", fetcher=server, clock=lambda: clock[0],
                     issuer="https://idp.example.test", metrics=metrics)  # fresh 60 s, stale for 3600 s more
    verifier = Verifier(list(table.issuers.values()), key_sources={"corp": keys}, key_metrics=metrics)
    runtime = AuthorizerRuntime(table, "orders", verifier=verifier)
    runtime.prepare_policies()
    wall = [0.0]   # seconds added to the real time the EMF Timestamp and the report interval read
    runtime.metrics = DecisionMetrics("orders", route_keys=[r.route_key for r in runtime.api.routes],
                                      key_metrics=metrics, clock=lambda: time.time() + wall[0])

    def decide(token: str) -> dict:
        rest.authorize(runtime, events.rest_token(f"Bearer {token}", "GET", "/orders"))
        (doc,) = emf_lines(capsys.readouterr().out)
        return doc

    token = token_for("orders:read")
    first = decide(token)
    assert (first["KeyFetches"], first["KeyFetchFailures"], first["VerifiedCacheHits"]) == (1, 0, 0)
    assert first["KeyFetchLatency"] == 0 and first["KeyAge"] == 0
    second = decide(token)   # a cache hit, no key-set event, within the minute: the line carries the decision only
    assert "KeyFetches" not in second and "VerifiedCacheHits" not in second
    assert len(second["_aws"]["CloudWatchMetrics"]) == 1
    wall[0] += 61
    third = decide(token)    # a minute on: the key sets are reported, zeros included, with the hits since
    assert (third["KeyFetches"], third["KeyFetchFailures"], third["VerifiedCacheHits"], third["KeyAge"]) == (
        0, 0, 2, 0)
    assert "KeyFetchLatency" not in third  # no fetch since the last report: no latency value rather than a made-up one
    assert {m["Name"] for m in third["_aws"]["CloudWatchMetrics"][1]["Metrics"]} >= {"KeyFetches", "KeyAge"}

    clock[0] += 3600
    server.failing = True
    stale = decide(token_for("orders:read"))  # a new token: its keys are past freshness, the refetch times out
    assert stale["Outcome"] == "allow"
    assert (stale["KeyFetches"], stale["KeyFetchFailures"], stale["KeyFetchTimeout"], stale["KeysServedStale"],
            stale["KeyAge"]) == (1, 1, 1, 1, 3600)
    assert stale["_aws"]["CloudWatchMetrics"][1]["Dimensions"] == [["ApiName", "AuthorizerKind"]]

    clock[0] += 100  # past the stale window: fail closed, and the line says why
    with pytest.raises(AuthorizerUnavailable):
        rest.authorize(runtime, events.rest_token(f"Bearer {token_for('orders:read')}", "GET", "/orders"))
    (closed,) = emf_lines(capsys.readouterr().out)
    assert (closed["Outcome"], closed["Reason"], closed["KeyFetchFailures"], closed["KeyAge"]) == (
        "unavailable", "jwks_unavailable", 1, 3700)


def test_the_pre_encoded_metadata_writes_the_same_json_as_the_plain_value():
    from lambdas.authorizers.audit import audit_line, audit_record
    metrics = DecisionMetrics("orders", route_keys=["GET /orders"], key_metrics=KeySetMetrics())
    for _ in range(2):   # with the key-set directive (first line), then without
        record = audit_record(authorizer="rest", decision="allow", code=None, route="GET /orders", latency_us=7,
                              metrics=metrics)
        line = audit_line(record)
        assert json.loads(line) == {**record, "_aws": record["_aws"].as_dict()}
        check_emf(line)
