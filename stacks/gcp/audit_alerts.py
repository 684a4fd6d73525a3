"""Cloud Monitoring alerts on authgate's audit lines: log-based metrics over the JSON each decision writes (Cloud
Logging keeps a JSON stdout line as `jsonPayload`) and one alert policy per alarm of stacks.alarms.

The lines come from whatever authgate runtime runs in the project (the forward-auth service on GKE or Cloud Run, an
authorizer): `jsonPayload.authgate = "authorizer"` and the bounded label members (`ApiName`, `AuthorizerKind`,
`Outcome`, `Reason`, `IssuerName`, `RouteKey`; see lambdas/observability/decisions.py), never a subject or token.

Metrics (user-defined, `logging.googleapis.com/user/<name>`):
  authgate-<api>-decisions            counter, labelled outcome, reason, authorizer, issuer, route
  authgate-<api>-decision-latency     distribution of DecisionLatency (ms)
  authgate-<api>-key-fetch-failures   counter of lines reporting at least one failed key fetch
Alert policies: KeyFetchFailures, Unavailable, one Unauthorized-<code> per watched 401 code (its share of decisions
AND at least the minimum count, as on AWS), LatencyP99. Each carries the catalogue's text as its documentation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from stacks.alarms import ALARMS, AlarmThresholds, describe, describe_unauthorized

LABELS = {"outcome": "Outcome", "reason": "Reason", "authorizer": "AuthorizerKind", "issuer": "IssuerName",
          "route": "RouteKey"}


def audit_line_filter(api_name: str) -> str:
    """The Cloud Logging filter selecting one API's audit lines."""
    return f'jsonPayload.authgate="authorizer" AND jsonPayload.ApiName="{_quoted(api_name)}"'


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, kw_only=True)
class AuditLogAlertsArgs:
    """api_name: the policy API whose lines are watched; notification_channels: Cloud Monitoring channel ids."""

    api_name: str
    notification_channels: Sequence[pulumi.Input[str]] = ()
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    project: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        if not self.api_name or not all(c.isalnum() or c in "-_" for c in self.api_name):
            raise ValueError(f"api_name must be a policy API name (letters, digits, - and _), got {self.api_name!r}")


class AuditLogAlerts(pulumi.ComponentResource):
    decisions: gcp.logging.Metric
    latency: gcp.logging.Metric
    key_fetch_failures: gcp.logging.Metric
    policies: dict[str, gcp.monitoring.AlertPolicy]

    def __init__(self, name: str, args: AuditLogAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("authgate:gcp:AuditLogAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api, t = args.api_name, args.thresholds
        lines = audit_line_filter(api)
        prefix = f"authgate-{api}"
        self.decisions = gcp.logging.Metric(
            f"{name}-decisions", name=f"{prefix}-decisions", project=args.project, filter=lines,
            description=f"authgate decisions of API {api}, by outcome and reason code",
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA", value_type="INT64", unit="1",
                labels=[gcp.logging.MetricMetricDescriptorLabelArgs(key=key, value_type="STRING")
                        for key in LABELS]),
            label_extractors={key: f"EXTRACT(jsonPayload.{member})" for key, member in LABELS.items()},
            opts=child)
        self.latency = gcp.logging.Metric(
            f"{name}-latency", name=f"{prefix}-decision-latency", project=args.project, filter=lines,
            description=f"authgate decision latency of API {api} (ms)",
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA", value_type="DISTRIBUTION", unit="ms"),
            value_extractor="EXTRACT(jsonPayload.DecisionLatency)",
            # 0.01 ms to about 20 s in doublings: warm decisions are tens of microseconds, a key fetch up to 1 s.
            bucket_options=gcp.logging.MetricBucketOptionsArgs(
                exponential_buckets=gcp.logging.MetricBucketOptionsExponentialBucketsArgs(
                    num_finite_buckets=32, growth_factor=2, scale=0.01)),
            opts=child)
        self.key_fetch_failures = gcp.logging.Metric(
            f"{name}-key-fetch-failures", name=f"{prefix}-key-fetch-failures", project=args.project,
            filter=f"{lines} AND jsonPayload.KeyFetchFailures>0",
            description=f"authgate audit lines of API {api} reporting a failed key fetch",
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(metric_kind="DELTA", value_type="INT64",
                                                                     unit="1"),
            opts=child)

        def metric_filter(metric: gcp.logging.Metric, extra: str = "") -> pulumi.Output[str]:
            return metric.name.apply(lambda n: f'metric.type="logging.googleapis.com/user/{n}"{extra}')

        def summed(seconds: int, aligner: str = "ALIGN_SUM", reducer: str = "REDUCE_SUM"):
            return [gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                alignment_period=f"{seconds}s", per_series_aligner=aligner, cross_series_reducer=reducer)]

        def threshold(display: str, metric_filter_: pulumi.Input[str], *, value: float, duration: int,
                      aggregations, comparison: str = "COMPARISON_GT", **extra):
            return gcp.monitoring.AlertPolicyConditionArgs(
                display_name=display,
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=metric_filter_, comparison=comparison, threshold_value=value, duration=f"{duration}s",
                    aggregations=aggregations,
                    # No audit line means no decision was made, not that something failed.
                    evaluation_missing_data="EVALUATION_MISSING_DATA_INACTIVE", **extra))

        self.policies = {}

        def policy(key: str, display: str, description: str, conditions, combiner: str = "OR"):
            self.policies[key] = gcp.monitoring.AlertPolicy(
                f"{name}-{key.lower()}", display_name=f"authgate {api}: {display}", project=args.project,
                combiner=combiner, conditions=conditions, notification_channels=list(args.notification_channels),
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(content=description,
                                                                          mime_type="text/markdown"),
                opts=child)

        minutes = t.key_fetch_failure_minutes
        policy("KeyFetchFailures", ALARMS["key_fetch_failures"].name, describe("key_fetch_failures", api, t), [
            threshold("a failed key fetch in each minute", metric_filter(self.key_fetch_failures), value=0,
                      duration=minutes * 60, aggregations=summed(60))])
        policy("Unavailable", ALARMS["unavailable"].name, describe("unavailable", api, t), [
            threshold("unavailable decisions", metric_filter(self.decisions, ' AND metric.label.outcome="unavailable"'),
                      value=t.unavailable_count, comparison="COMPARISON_GE", duration=0, aggregations=summed(60))])
        for code in t.watched_401_codes:
            code_filter = metric_filter(self.decisions,
                                        f' AND metric.label.outcome="unauthorized" AND metric.label.reason="{code}"')
            duration = t.unauthorized_periods * 300
            policy(f"Unauthorized-{code}", f"401 {code}", describe_unauthorized(code, api, t), [
                threshold(f"401 {code} share of decisions", code_filter, value=t.unauthorized_share_percent / 100,
                          duration=duration, aggregations=summed(300),
                          denominator_filter=metric_filter(self.decisions),
                          denominator_aggregations=[
                              gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                                  alignment_period="300s", per_series_aligner="ALIGN_SUM",
                                  cross_series_reducer="REDUCE_SUM")]),
                threshold(f"401 {code} count", code_filter, value=t.unauthorized_min_count,
                          comparison="COMPARISON_GE", duration=duration, aggregations=summed(300)),
            ], combiner="AND")
        policy("LatencyP99", ALARMS["latency_p99"].name, describe("latency_p99", api, t), [
            threshold("p99 decision latency (ms)", metric_filter(self.latency), value=t.latency_p99_ms,
                      duration=t.latency_periods * 300,
                      aggregations=summed(300, aligner="ALIGN_DELTA", reducer="REDUCE_PERCENTILE_99"))])
        self.register_outputs({"decisionsMetric": self.decisions.name, "latencyMetric": self.latency.name,
                               "keyFetchFailuresMetric": self.key_fetch_failures.name})
