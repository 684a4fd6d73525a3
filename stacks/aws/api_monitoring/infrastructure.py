"""Per API: a CloudWatch dashboard and alarms over the metrics the authorizer writes into its audit lines (EMF, see
lambdas/observability/emf.py) and over API Gateway's and Lambda's own metrics.

Alarms (when: stacks.alarms.AlarmThresholds; what each means and what to do: stacks.alarms.ALARMS, also in each
alarm's description and in the README's "Operating authgate" section): KeyFetchFailures, Unavailable, one
Unauthorized-<code> per watched 401 code (its share of decisions), LatencyP99, AuthorizerThrottles, AuthorizerErrors
and Gateway5xx. With `alarm_topic`, every alarm notifies the SNS topic on ALARM and on OK.
"""
from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, aws_cloudwatch as cloudwatch, aws_cloudwatch_actions as actions, aws_sns as sns
from constructs import Construct

from lambdas.observability.emf import DECISION_DIMENSIONS, DEFAULT_NAMESPACE, KEY_SET_DIMENSIONS, check_namespace
from stacks.alarms import AlarmThresholds, describe, describe_unauthorized

@dataclass(frozen=True)
class GatewayMetrics:
    """API Gateway's own metrics for the API (requests, 4xx, 5xx, latency), whatever its flavour."""

    requests: cloudwatch.IMetric
    client_errors: cloudwatch.IMetric
    server_errors: cloudwatch.IMetric
    latency: cloudwatch.IMetric | None = None

    @classmethod
    def of_api(cls, api) -> "GatewayMetrics":
        """A REST API (apigateway.RestApi: by ApiName) or an HTTP API (apigatewayv2.HttpApi: by ApiId)."""
        five = Duration.minutes(5)
        return cls(api.metric_count(period=five), api.metric_client_error(period=five),
                   api.metric_server_error(period=five), api.metric_latency(period=five, statistic="p99"))

    @classmethod
    def of_websocket_api(cls, api) -> "GatewayMetrics":
        five = Duration.minutes(5)

        def metric(name: str) -> cloudwatch.Metric:
            return api.metric(name, period=five, statistic="Sum")

        return cls(metric("ConnectCount"), metric("ClientError"), metric("ExecutionError"),
                   api.metric("IntegrationLatency", period=five, statistic="p99"))


def _dimension_set(*names: str) -> tuple[str, ...]:
    """A dimension set the authorizer really writes: a CloudWatch metric exists only for its exact set."""
    if names not in DECISION_DIMENSIONS and names not in KEY_SET_DIMENSIONS:
        raise ValueError(f"{names} is not a dimension set of lambdas.observability.emf")
    return names


class ApiMonitoring(Construct):
    """The dashboard and alarms of one API.

    api_name             the API's name in the policy (the ApiName dimension)
    gateway              API Gateway's metrics for it
    authorizer_kind      rest | http_api | websocket: which authorizer writes its metrics (None: no Lambda authorizer,
                         e.g. an HTTP API whose routes all use the native JWT authorizer; only gateway alarms)
    authorizer_function  that authorizer's Lambda function (throttles, errors)
    authorizer_logs      its log group (a Logs Insights table of decisions by code on the dashboard)
    metrics_namespace    the namespace the authorizer writes (AuthorizerFunction.metrics_namespace)
    alarm_topic          an SNS topic every alarm notifies (ALARM and OK); None: alarms only show on the dashboard
    thresholds           AlarmThresholds
    """

    def __init__(self, scope: Construct, id_: str, *, api_name: str, gateway: GatewayMetrics,
                 authorizer_kind: str | None = None, authorizer_function=None, authorizer_logs=None,
                 metrics_namespace: str = DEFAULT_NAMESPACE, alarm_topic: sns.ITopic | None = None,
                 thresholds: AlarmThresholds = AlarmThresholds()) -> None:
        super().__init__(scope, id_)
        if (authorizer_kind is None) != (authorizer_function is None):
            raise ValueError("pass authorizer_kind and authorizer_function together, or neither")
        self.api_name = api_name
        self.namespace = check_namespace(metrics_namespace)
        self.authorizer_kind = authorizer_kind
        self.thresholds = thresholds
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._topic = alarm_topic
        label = f"authgate {api_name}" + (f" ({authorizer_kind})" if authorizer_kind else "")
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(cloudwatch.TextWidget(
            markdown=f"# {label}\nDecisions, key sets and API Gateway for API **{api_name}**. Each alarm's "
                     "description says what it means and what to do (README: Operating authgate).",
            width=24, height=2))
        if authorizer_kind is not None:
            self._authorizer_signals(authorizer_function, authorizer_logs)
        self._gateway_signals(gateway)
        if self.alarms:
            self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24,
                height=max(2, 1 + (len(self.alarms) + 3) // 4)))

    # --- metrics -------------------------------------------------------------------------------------------------
    def decision_metric(self, name: str = "Decisions", *, statistic: str = "Sum", period: Duration | None = None,
                        label: str | None = None, **dimensions: str) -> cloudwatch.Metric:
        """A metric of the decisions directive; `dimensions` beyond ApiName/AuthorizerKind pick the dimension set
        (Outcome, Reason, RouteKey, IssuerName)."""
        names = _dimension_set("ApiName", "AuthorizerKind", *dimensions)
        values = {"ApiName": self.api_name, "AuthorizerKind": self.authorizer_kind, **dimensions}
        return cloudwatch.Metric(namespace=self.namespace, metric_name=name, statistic=statistic,
                                 period=period or Duration.minutes(1), label=label,
                                 dimensions_map={n: values[n] for n in names})

    def key_set_metric(self, name: str, *, statistic: str = "Sum", period: Duration | None = None,
                       label: str | None = None) -> cloudwatch.Metric:
        _dimension_set("ApiName", "AuthorizerKind")
        return cloudwatch.Metric(namespace=self.namespace, metric_name=name, statistic=statistic,
                                 period=period or Duration.minutes(1), label=label,
                                 dimensions_map={"ApiName": self.api_name, "AuthorizerKind": self.authorizer_kind})

    # --- alarms --------------------------------------------------------------------------------------------------
    def _alarm(self, id_: str, *, metric: cloudwatch.IMetric, threshold: float, periods: int, description: str,
               comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self, id_, metric=metric, threshold=threshold, evaluation_periods=periods, datapoints_to_alarm=periods,
            comparison_operator=comparison, alarm_description=description,
            # No audit line in a minute means no decision was made then, not that something failed.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        if self._topic is not None:
            alarm.add_alarm_action(actions.SnsAction(self._topic))
            alarm.add_ok_action(actions.SnsAction(self._topic))
        self.alarms[id_] = alarm
        return alarm

    def _authorizer_signals(self, function, logs) -> None:
        t = self.thresholds
        api = self.api_name
        self._alarm(
            "KeyFetchFailures", metric=self.key_set_metric("KeyFetchFailures"), threshold=1,
            periods=t.key_fetch_failure_minutes,
            description=describe("key_fetch_failures", api, t))
        self._alarm(
            "Unavailable", metric=self.decision_metric(Outcome="unavailable"), threshold=t.unavailable_count,
            periods=1,
            description=describe("unavailable", api, t))
        total = self.decision_metric(period=Duration.minutes(5), label="all decisions")
        for code in t.watched_401_codes:
            count = self.decision_metric(period=Duration.minutes(5), Outcome="unauthorized", Reason=code)
            share = cloudwatch.MathExpression(
                expression=f"IF(code >= {t.unauthorized_min_count}, 100 * code / total, 0)",
                using_metrics={"code": count, "total": total}, label=f"% of decisions: 401 {code}",
                period=Duration.minutes(5))
            self._alarm(
                f"Unauthorized-{code}", metric=share, threshold=t.unauthorized_share_percent,
                periods=t.unauthorized_periods,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=describe_unauthorized(code, api, t))
        self._alarm(
            "LatencyP99",
            metric=self.decision_metric("DecisionLatency", statistic="p99", period=Duration.minutes(5)),
            threshold=t.latency_p99_ms, periods=t.latency_periods,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=describe("latency_p99", api, t))
        self._alarm(
            "AuthorizerThrottles", metric=function.metric_throttles(period=Duration.minutes(1), statistic="Sum"),
            threshold=t.throttles_count, periods=1,
            description=describe("authorizer_throttles", api, t))
        self._alarm(
            "AuthorizerErrors", metric=self._unexplained_errors(function), threshold=t.errors_count, periods=1,
            description=describe("authorizer_errors", api, t))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Decisions by outcome", width=12, stacked=True, left=[
                self.decision_metric(Outcome=o, label=o) for o in ("allow", "public", "forbidden", "unauthorized",
                                                                   "unavailable")]),
            cloudwatch.GraphWidget(title="401s by code", width=12, stacked=True, left=[
                self.decision_metric(Outcome="unauthorized", Reason=code, label=code)
                for code in t.watched_401_codes]))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Decision latency (ms)", width=8, left=[
                self.decision_metric("DecisionLatency", statistic=stat, period=Duration.minutes(5), label=stat)
                for stat in ("p50", "p99")]),
            cloudwatch.GraphWidget(title="Key fetches and failures", width=8, left=[
                self.key_set_metric(name, label=name) for name in (
                    "KeyFetches", "KeyFetchFailures", "KeyFetchTimeout", "KeyFetchHttpError", "KeyFetchMalformed",
                    "KeyFetchOverCap", "KeyFetchTransportError")]),
            cloudwatch.GraphWidget(title="Stale keys, rotations, unknown kids", width=8, left=[
                self.key_set_metric(name, label=name) for name in (
                    "KeysServedStale", "KeyRotations", "UnknownKidRefetches")], right=[
                self.key_set_metric("KeyAge", statistic="Maximum", label="KeyAge (s)")]))
        widgets = [cloudwatch.GraphWidget(title="Authorizer function", width=12, left=[
            function.metric_invocations(statistic="Sum", label="invocations"),
            function.metric_errors(statistic="Sum", label="errors"),
            function.metric_throttles(statistic="Sum", label="throttles")], right=[
            function.metric_duration(statistic="p99", label="duration p99")])]
        if logs is not None:
            widgets.append(cloudwatch.LogQueryWidget(
                title="Decisions by code (audit lines)", width=12, log_group_names=[logs.log_group_name],
                query_lines=['filter authgate = "authorizer"', "stats count(*) as decisions by decision, code",
                             "sort decisions desc"]))
        self.dashboard.add_widgets(*widgets)

    def _unexplained_errors(self, function) -> cloudwatch.MathExpression:
        """Lambda Errors less the errors the authorizer raises on purpose: every unavailable decision, and every
        unauthorized one where a 401 is a raise (REST, WebSocket; the HTTP API's simple responses answer false)."""
        five = Duration.minutes(5)
        metrics = {"errors": function.metric_errors(period=five, statistic="Sum"),
                   "unavailable": self.decision_metric(period=five, Outcome="unavailable")}
        expression = "errors - FILL(unavailable, 0)"
        if self.authorizer_kind in ("rest", "websocket"):
            metrics["unauthorized"] = self.decision_metric(period=five, Outcome="unauthorized")
            expression += " - FILL(unauthorized, 0)"
        return cloudwatch.MathExpression(expression=f"MAX([0, {expression}])", using_metrics=metrics,
                                         label="errors beyond the intended raises", period=five)

    def _gateway_signals(self, gateway: GatewayMetrics) -> None:
        t = self.thresholds
        self._alarm(
            "Gateway5xx", metric=gateway.server_errors, threshold=t.gateway_5xx_count, periods=1,
            description=describe("gateway_5xx", self.api_name, t))
        left = [gateway.requests, gateway.client_errors, gateway.server_errors]
        self.dashboard.add_widgets(cloudwatch.GraphWidget(
            title="API Gateway: requests, 4xx, 5xx", width=24 if gateway.latency is None else 12, left=left),
            *([cloudwatch.GraphWidget(title="API Gateway latency p99", width=12, left=[gateway.latency])]
              if gateway.latency is not None else []))





    def watch_logout_endpoint(self, endpoint) -> None:
        """The back-channel logout endpoint's alarms (stacks/aws/backchannel_logout): answers it could not record
        (503) and function failures, beside the API's own on its dashboard."""
        t = self.thresholds
        function = endpoint.function
        self._alarm("LogoutUnavailable", metric=endpoint.unavailable_metric, threshold=1, periods=1,
                    description=describe("logout_unavailable", self.api_name, t))
        failures = cloudwatch.MathExpression(
            expression="FILL(errors, 0) + FILL(throttles, 0)", period=Duration.minutes(5),
            using_metrics={"errors": function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                           "throttles": function.metric_throttles(period=Duration.minutes(5), statistic="Sum")},
            label="logout function errors and throttles")
        self._alarm("LogoutErrors", metric=failures, threshold=t.errors_count, periods=1,
                    description=describe("logout_errors", self.api_name, t))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Back-channel logout", width=18, left=[
                function.metric_invocations(statistic="Sum", label="logouts received"),
                endpoint.unavailable_metric.with_(label="not recorded (503)"),
                function.metric_errors(statistic="Sum", label="errors")]),
            cloudwatch.AlarmStatusWidget(title="Logout alarms", width=6, height=6, alarms=[
                self.alarms["LogoutUnavailable"], self.alarms["LogoutErrors"]]))


def monitor_api(scope: Construct, *, api_name: str, gateway: GatewayMetrics, authorizer_kind: str,
                authorizer=None, alarm_topic_arn: str | None = None,
                thresholds: AlarmThresholds = AlarmThresholds()) -> ApiMonitoring:
    """ApiMonitoring for an API built by one of authgate's API constructs; `authorizer` is its AuthorizerFunction
    (None when no route runs the Lambda authorizer) and `alarm_topic_arn` an existing SNS topic to notify."""
    topic = sns.Topic.from_topic_arn(scope, "AlarmTopic", alarm_topic_arn) if alarm_topic_arn else None
    if authorizer is None:
        return ApiMonitoring(scope, "Monitoring", api_name=api_name, gateway=gateway, alarm_topic=topic,
                             thresholds=thresholds)
    return ApiMonitoring(scope, "Monitoring", api_name=api_name, gateway=gateway, authorizer_kind=authorizer_kind,
                         authorizer_function=authorizer.function, authorizer_logs=authorizer.log_group,
                         metrics_namespace=authorizer.metrics_namespace, alarm_topic=topic, thresholds=thresholds)
