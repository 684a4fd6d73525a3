"""Cloud Monitoring alerts on the audit lines (stacks/gcp/audit_alerts.py) on mocks: the log-based metrics read exactly
the members the runtime writes, and every alarm of the catalogue becomes an alert policy with its text."""
from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from lambdas.observability.emf import DIMENSION_MEMBERS
from stacks.alarms import ALARMS, AlarmThresholds, describe
from stacks.gcp.audit_alerts import LABELS, AuditLogAlerts, AuditLogAlertsArgs, audit_line_filter
from stacks.pulumi_program.program import build_stack
from stacks.pulumi_program.settings import StackConfigError
from tests.infra.gcp import gcp_pulumi_mocks
from tests.support.pulumi_mocks import stack_config

ROOT = Path(__file__).resolve().parents[3]
CHANNEL = "projects/acme-orders-dev/notificationChannels/4711"


def build_alerts(**options) -> gcp_pulumi_mocks.RecordingGcpMocks:
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        AuditLogAlerts("orders-alerts", AuditLogAlertsArgs(api_name="orders", **options))

    build()
    return mocks


def policies_by_name(mocks) -> dict[str, dict]:
    return {r.inputs["displayName"]: r.inputs for r in mocks.of_type("gcp:monitoring/alertPolicy:AlertPolicy")}


def test_log_metrics_read_the_audit_line_members():
    mocks = build_alerts()
    metrics = {r.inputs["name"]: r.inputs for r in mocks.of_type("gcp:logging/metric:Metric")}
    assert set(metrics) == {"authgate-orders-decisions", "authgate-orders-decision-latency",
                            "authgate-orders-key-fetch-failures"}
    decisions = metrics["authgate-orders-decisions"]
    assert decisions["filter"] == 'jsonPayload.authgate="authorizer" AND jsonPayload.ApiName="orders"'
    # Every label comes from a member the runtime writes with a bounded value.
    assert set(LABELS.values()) <= set(DIMENSION_MEMBERS)
    assert decisions["labelExtractors"] == {k: f"EXTRACT(jsonPayload.{m})" for k, m in LABELS.items()}
    assert [label["key"] for label in decisions["metricDescriptor"]["labels"]] == list(LABELS)
    assert decisions["metricDescriptor"]["metricKind"] == "DELTA"
    latency = metrics["authgate-orders-decision-latency"]
    assert latency["valueExtractor"] == "EXTRACT(jsonPayload.DecisionLatency)"
    assert latency["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    assert metrics["authgate-orders-key-fetch-failures"]["filter"].endswith("AND jsonPayload.KeyFetchFailures>0")


def test_every_alarm_is_an_alert_policy_with_the_catalogue_text():
    thresholds = AlarmThresholds(key_fetch_failure_minutes=7, watched_401_codes=("unknown_kid", "expired"))
    mocks = build_alerts(notification_channels=[CHANNEL], thresholds=thresholds)
    policies = policies_by_name(mocks)
    assert set(policies) == {"authgate orders: KeyFetchFailures", "authgate orders: Unavailable",
                             "authgate orders: 401 unknown_kid", "authgate orders: 401 expired",
                             "authgate orders: LatencyP99"}
    for policy in policies.values():
        assert policy["notificationChannels"] == [CHANNEL]
        assert policy["documentation"]["mimeType"] == "text/markdown"
    keys = policies["authgate orders: KeyFetchFailures"]
    assert keys["documentation"]["content"] == describe("key_fetch_failures", "orders", thresholds)
    (condition,) = keys["conditions"]
    threshold = condition["conditionThreshold"]
    assert threshold["filter"] == 'metric.type="logging.googleapis.com/user/authgate-orders-key-fetch-failures"'
    assert (threshold["comparison"], threshold["thresholdValue"], threshold["duration"]) == ("COMPARISON_GT", 0,
                                                                                             "420s")
    assert threshold["evaluationMissingData"] == "EVALUATION_MISSING_DATA_INACTIVE"
    unavailable = policies["authgate orders: Unavailable"]["conditions"][0]["conditionThreshold"]
    assert unavailable["filter"].endswith(' AND metric.label.outcome="unavailable"')
    jump = policies["authgate orders: 401 unknown_kid"]
    assert jump["combiner"] == "AND"
    share, count = (c["conditionThreshold"] for c in jump["conditions"])
    assert share["filter"].endswith('metric.label.outcome="unauthorized" AND metric.label.reason="unknown_kid"')
    assert share["denominatorFilter"] == 'metric.type="logging.googleapis.com/user/authgate-orders-decisions"'
    assert share["thresholdValue"] == 0.2 and share["duration"] == "600s"
    assert (count["comparison"], count["thresholdValue"]) == ("COMPARISON_GE", 20)
    latency = policies["authgate orders: LatencyP99"]["conditions"][0]["conditionThreshold"]
    assert latency["aggregations"][0]["crossSeriesReducer"] == "REDUCE_PERCENTILE_99"
    assert latency["thresholdValue"] == 250
    assert ALARMS["latency_p99"].name == "LatencyP99"


def test_api_names_that_would_break_the_filter_are_refused():
    with pytest.raises(ValueError, match="api_name"):
        AuditLogAlertsArgs(api_name='orders" OR jsonPayload.x="')
    assert audit_line_filter("orders") == 'jsonPayload.authgate="authorizer" AND jsonPayload.ApiName="orders"'


def test_the_program_adds_the_alerts_when_monitoring_is_configured():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.gcp-dev.yaml", authgate__monitoring={
            "notificationChannels": [CHANNEL], "keyFetchFailureMinutes": 3}), root=ROOT)

    build()
    services = {r.inputs["service"] for r in mocks.of_type("gcp:projects/service:Service")}
    assert {"logging.googleapis.com", "monitoring.googleapis.com"} <= services
    policies = policies_by_name(mocks)
    assert policies["authgate billing: KeyFetchFailures"]["conditions"][0]["conditionThreshold"]["duration"] == "180s"
    assert all(p["notificationChannels"] == [CHANNEL] for p in policies.values())


def test_without_monitoring_config_no_alerts():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.gcp-dev.yaml"), root=ROOT)

    build()
    assert mocks.of_type("gcp:monitoring/alertPolicy:AlertPolicy") == []


@pytest.mark.parametrize("monitoring, key", [
    ({"channels": []}, "authgate:monitoring.channels"),
    ({"keyFetchFailureMinutes": 0}, "authgate:monitoring"),
    ({"notificationChannels": "projects/x/notificationChannels/1"}, "authgate:monitoring.notificationChannels"),
])
def test_bad_monitoring_config_names_the_key(monitoring, key):
    mocks = gcp_pulumi_mocks.install()
    with pytest.raises(StackConfigError) as raised:
        @pulumi.runtime.test
        def build():
            build_stack(stack_config("Pulumi.gcp-dev.yaml", authgate__monitoring=monitoring), root=ROOT)
        build()
    assert raised.value.key == key
    assert mocks.resources == []
