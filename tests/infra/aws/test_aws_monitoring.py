"""CloudWatch dashboards and alarms per API (stacks/aws/api_monitoring), read from the app `authgate synth` produced
and from the construct on its own. Every alarm on an authorizer metric must name exactly a namespace, metric and
dimension set the authorizer's EMF lines really carry, or CloudWatch would watch a metric that never exists."""
from __future__ import annotations

import json
import os

import pytest
from aws_cdk.assertions import Match, Template

from lambdas.observability.emf import DECISION_DIMENSIONS, DECISION_METRICS, KEY_SET_COUNT_METRICS, KEY_SET_DIMENSIONS
from tests.infra.aws.conftest import FULL_CONTEXT, resources_of

TOPIC = FULL_CONTEXT["authgate:alarm_topic_arn"]
EMF_METRICS = {name for name, _ in DECISION_METRICS} | set(KEY_SET_COUNT_METRICS) | {"KeyFetchLatency", "KeyAge"}
EMF_DIMENSION_SETS = {frozenset(d) for d in DECISION_DIMENSIONS + KEY_SET_DIMENSIONS}


def alarms_of(template: dict) -> dict[str, dict]:
    return {props["AlarmDescription"].split(":")[0] + "|" + logical: props for logical, props in
            ((k, v["Properties"]) for k, v in resources_of(template, "AWS::CloudWatch::Alarm").items())}


def metric_stats(alarm: dict) -> list[dict]:
    """Every metric an alarm reads: the alarm's own, or each one of its metric math."""
    if "MetricName" in alarm:
        return [{"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                 "Dimensions": alarm.get("Dimensions", []), "Stat": alarm.get("Statistic")}]
    return [{**q["MetricStat"]["Metric"], "Stat": q["MetricStat"]["Stat"]} for q in alarm["Metrics"]
            if "MetricStat" in q]


@pytest.mark.parametrize("stack_id, kind, namespace", [
    ("RestApi", "rest", "authgate/dev"), ("HttpApi", "http_api", "authgate/dev"),
    ("WebSocketApi", "websocket", "authgate/dev"), ("EksFrontDoor", "http_api", "authgate/dev/eks-front-door")])
def test_each_api_stack_has_a_dashboard_and_the_alarms(templates, stack_id, kind, namespace):
    tpl = templates[stack_id]
    Template.from_json(tpl).resource_count_is("AWS::CloudWatch::Dashboard", 1)
    alarms = list(resources_of(tpl, "AWS::CloudWatch::Alarm").values())
    names = {a["Properties"]["AlarmDescription"] for a in alarms}
    api = "notifications" if kind == "websocket" else "orders"
    for fragment in ("failed in each of the last 5 minutes", "answered 'unavailable'",
                     "401 unknown_kid", "401 expired", "p99 decision latency is above 250 ms",
                     "Lambda throttled the authorizer", "the authorizer function errored",
                     "API Gateway answered 10 or more 5xx"):
        assert any(fragment in n and n.startswith(f"authgate {api}:") for n in names), (stack_id, fragment)
    for alarm in alarms:
        props = alarm["Properties"]
        # Every alarm notifies the configured topic when it fires and when it clears.
        assert props["AlarmActions"] == [TOPIC] and props["OKActions"] == [TOPIC]
        assert props["TreatMissingData"] == "notBreaching"
        for stat in metric_stats(props):
            if stat["Namespace"].startswith("AWS/"):
                continue
            assert stat["Namespace"] == namespace
            assert stat["MetricName"] in EMF_METRICS
            dims = {d["Name"]: d["Value"] for d in stat["Dimensions"]}
            assert frozenset(dims) in EMF_DIMENSION_SETS, dims
            assert dims["ApiName"] == api and dims["AuthorizerKind"] == kind


def test_alarm_thresholds_and_periods(templates):
    alarms = [a["Properties"] for a in resources_of(templates["RestApi"], "AWS::CloudWatch::Alarm").values()]

    def one(fragment: str) -> dict:
        (found,) = [a for a in alarms if fragment in a["AlarmDescription"]]
        return found

    keys = one("failed in each of the last")
    assert (keys["MetricName"], keys["Statistic"], keys["Period"], keys["EvaluationPeriods"],
            keys["DatapointsToAlarm"], keys["Threshold"], keys["ComparisonOperator"]) == (
        "KeyFetchFailures", "Sum", 60, 5, 5, 1, "GreaterThanOrEqualToThreshold")
    unavailable = one("answered 'unavailable'")
    assert {d["Name"]: d["Value"] for d in unavailable["Dimensions"]} == {
        "ApiName": "orders", "AuthorizerKind": "rest", "Outcome": "unavailable"}
    assert (unavailable["MetricName"], unavailable["Threshold"], unavailable["EvaluationPeriods"]) == (
        "Decisions", 1, 1)
    jump = one("401 unknown_kid")
    expression = [q for q in jump["Metrics"] if "Expression" in q]
    assert expression[0]["Expression"] == "IF(code >= 20, 100 * code / total, 0)"
    code = [q for q in jump["Metrics"] if q.get("Id") == "code"][0]["MetricStat"]
    assert {d["Name"]: d["Value"] for d in code["Metric"]["Dimensions"]} == {
        "ApiName": "orders", "AuthorizerKind": "rest", "Outcome": "unauthorized", "Reason": "unknown_kid"}
    assert code["Period"] == 300 and jump["Threshold"] == 20 and jump["EvaluationPeriods"] == 2
    latency = one("p99 decision latency")
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == (
        "DecisionLatency", "p99", 250)
    throttles = one("Lambda throttled")
    assert throttles["Namespace"] == "AWS/Lambda" and throttles["MetricName"] == "Throttles"
    errors = one("errored beyond the errors it raises on purpose")
    (expression,) = [q["Expression"] for q in errors["Metrics"] if "Expression" in q]
    assert expression == "MAX([0, errors - FILL(unavailable, 0) - FILL(unauthorized, 0)])"   # REST raises for 401s
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in errors["Metrics"] if "MetricStat" in q} == {
        "Errors", "Decisions"}
    gateway = one("API Gateway answered")
    assert gateway["Namespace"] == "AWS/ApiGateway" and gateway["MetricName"] == "5XXError"
    assert gateway["Dimensions"] == [{"Name": "ApiName", "Value": "authgate-orders"}]


def test_dashboard_shows_decisions_by_code_latency_keys_and_gateway(templates):
    (dashboard,) = resources_of(templates["RestApi"], "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in ("Decisions by outcome", "401s by code", "Decision latency (ms)", "Key fetches and failures",
                  "Stale keys, rotations, unknown kids", "Authorizer function", "Decisions by code (audit lines)",
                  "API Gateway: requests, 4xx, 5xx", "Alarms"):
        assert title in body, title
    for metric in ("KeysServedStale", "KeyAge", "KeyFetchTimeout", "DecisionLatency", "Throttles", "5XXError"):
        assert metric in body, metric


@pytest.mark.parametrize("stack_id, namespace", [("RestApi", "authgate/dev"), ("HttpApi", "authgate/dev"),
                                                 ("EksFrontDoor", "authgate/dev/eks-front-door")])
def test_the_authorizer_writes_the_namespace_the_alarms_read(templates, stack_id, namespace):
    functions = [f["Properties"] for f in resources_of(templates[stack_id], "AWS::Lambda::Function").values()
                 if "AUTHGATE_API" in f["Properties"].get("Environment", {}).get("Variables", {})]
    assert [f["Environment"]["Variables"]["AUTHGATE_METRICS_NAMESPACE"] for f in functions] == [namespace]


# --- the construct on its own ------------------------------------------------------------------------------------

def _stack():
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App, Stack
    return Stack(App(), "Probe")


def _gateway(stack):
    from aws_cdk import aws_cloudwatch as cloudwatch

    from stacks.aws.api_monitoring.infrastructure import GatewayMetrics

    def metric(name):
        return cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name=name, dimensions_map={"ApiId": "abc"})
    return GatewayMetrics(metric("Count"), metric("4xx"), metric("5xx"))


def test_without_a_topic_or_an_authorizer_only_the_gateway_alarm_and_no_actions():
    from stacks.aws.api_monitoring.infrastructure import ApiMonitoring
    stack = _stack()
    ApiMonitoring(stack, "Monitoring", api_name="orders", gateway=_gateway(stack))
    tpl = Template.from_stack(stack)
    tpl.resource_count_is("AWS::CloudWatch::Alarm", 1)
    tpl.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "5xx", "AlarmActions": Match.absent()})
    tpl.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_thresholds_are_configurable_and_checked():
    from aws_cdk import aws_lambda as lambda_

    from stacks.aws.api_monitoring.infrastructure import AlarmThresholds, ApiMonitoring
    stack = _stack()
    function = lambda_.Function(stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                                code=lambda_.Code.from_inline("def handler(e, c): return {}"))
    ApiMonitoring(stack, "Monitoring", api_name="orders", gateway=_gateway(stack), authorizer_kind="rest",
                  authorizer_function=function, metrics_namespace="authgate/prod",
                  thresholds=AlarmThresholds(key_fetch_failure_minutes=10, watched_401_codes=("expired",)))
    tpl = Template.from_stack(stack)
    tpl.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "KeyFetchFailures",
                                                           "Namespace": "authgate/prod", "EvaluationPeriods": 10})
    descriptions = [a["Properties"]["AlarmDescription"] for a in
                    tpl.find_resources("AWS::CloudWatch::Alarm").values()]
    assert sum(d.startswith("authgate orders: 401 ") for d in descriptions) == 1
    with pytest.raises(ValueError, match="insufficient_scope"):
        AlarmThresholds(watched_401_codes=("insufficient_scope",))   # a 403 code: not a 401 jump
    with pytest.raises(ValueError, match="key_fetch_failure_minutes"):
        AlarmThresholds(key_fetch_failure_minutes=0)
    with pytest.raises(ValueError, match="together"):
        ApiMonitoring(stack, "Half", api_name="orders", gateway=_gateway(stack), authorizer_kind="rest")


def test_alarm_topic_arn_setting_is_checked():
    from stacks.aws.refusals import UnsupportedConfiguration
    from stacks.aws.settings import AppSettings
    base = {"authgate:policy": "policies/example.yaml", "authgate:api": "orders"}
    assert AppSettings.from_context({**base, "authgate:alarm_topic_arn": TOPIC}.get).alarm_topic_arn == TOPIC
    assert AppSettings.from_context(base.get).alarm_topic_arn is None
    with pytest.raises(UnsupportedConfiguration, match="SNS topic ARN"):
        AppSettings.from_context({**base, "authgate:alarm_topic_arn": "oncall@example.com"}.get)
