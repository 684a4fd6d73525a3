"""Azure Monitor scheduled query alerts on the audit lines (stacks/azure/audit_alerts.py) on mocks: each alarm of the
catalogue is a log alert over the runtime's own members, with the catalogue's text and the configured actions."""
from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from stacks.alarms import AlarmThresholds, describe
from stacks.azure.audit_alerts import LOG_SOURCES, AuditLogAlerts, AuditLogAlertsArgs, audit_lines_query
from stacks.pulumi_program.program import build_stack
from stacks.pulumi_program.settings import StackConfigError
from tests.infra.azure import azure_pulumi_mocks
from tests.support.pulumi_mocks import stack_config

ROOT = Path(__file__).resolve().parents[3]
WORKSPACE = ("/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-logs/providers/"
             "Microsoft.OperationalInsights/workspaces/authgate-logs")
ACTION_GROUP = ("/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-ops/providers/"
                "Microsoft.Insights/actionGroups/oncall")
RULE = "azure-native:monitor:ScheduledQueryRule"


def rules(mocks) -> dict[str, dict]:
    return {r.inputs["ruleName"]: r.inputs for r in mocks.of_type(RULE)}


def condition(rule: dict) -> dict:
    (only,) = rule["criteria"]["allOf"]
    return only


def test_each_alarm_is_a_log_alert_over_the_audit_lines():
    mocks = azure_pulumi_mocks.install()
    thresholds = AlarmThresholds(key_fetch_failure_minutes=4, watched_401_codes=("unknown_kid", "expired"))

    @pulumi.runtime.test
    def build():
        AuditLogAlerts("orders-alerts", AuditLogAlertsArgs(
            api_name="orders", resource_group_name="rg-authgate", location="westeurope", workspace_id=WORKSPACE,
            action_groups=[ACTION_GROUP], thresholds=thresholds))

    build()
    found = rules(mocks)
    assert set(found) == {"authgate-orders-KeyFetchFailures", "authgate-orders-Unavailable",
                          "authgate-orders-Unauthorized", "authgate-orders-LatencyP99"}
    lines = audit_lines_query("ContainerLogV2", "orders")
    for rule in found.values():
        assert rule["kind"] == "LogAlert" and rule["scopes"] == [WORKSPACE]
        assert rule["actions"]["actionGroups"] == [ACTION_GROUP]
        assert lines in condition(rule)["query"]
    keys = found["authgate-orders-KeyFetchFailures"]
    assert keys["description"] == describe("key_fetch_failures", "orders", thresholds)
    assert (keys["windowSize"], keys["evaluationFrequency"]) == ("PT4M", "PT1M")
    assert "toint(line.KeyFetchFailures) > 0" in condition(keys)["query"]
    assert (condition(keys)["metricMeasureColumn"], condition(keys)["threshold"]) == ("minutes", 4)
    unavailable = condition(found["authgate-orders-Unavailable"])
    assert 'tostring(line.Outcome) == "unavailable"' in unavailable["query"]
    assert (unavailable["timeAggregation"], unavailable["operator"], unavailable["threshold"]) == (
        "Count", "GreaterThanOrEqual", 1)
    jump = found["authgate-orders-Unauthorized"]
    query = condition(jump)["query"]
    assert 'where Reason in ("unknown_kid", "expired")' in query
    assert "iff(n >= 20, 100.0 * n / total, 0.0)" in query
    assert condition(jump)["dimensions"] == [{"name": "Reason", "operator": "Include", "values": ["*"]}]
    assert condition(jump)["failingPeriods"] == {"numberOfEvaluationPeriods": 2, "minFailingPeriodsToAlert": 2}
    assert "unknown_kid, expired" in jump["description"]
    latency = condition(found["authgate-orders-LatencyP99"])
    assert "percentile(todouble(line.DecisionLatency), 99)" in latency["query"]
    assert latency["threshold"] == 250


@pytest.mark.parametrize("source", sorted(LOG_SOURCES))
def test_every_log_source_reads_the_line_as_dynamic(source):
    query = audit_lines_query(source, "orders")
    assert "extend line = todynamic(" in query
    assert query.endswith('| where tostring(line.authgate) == "authorizer" and tostring(line.ApiName) == "orders"')


@pytest.mark.parametrize("options, fragment", [
    ({"api_name": 'orders" or 1 == 1 or "'}, "api_name"),
    ({"source": "Syslog"}, "source must be one of"),
    ({"workspace_id": "authgate-logs"}, "Log Analytics workspace resource id"),
])
def test_bad_args_are_refused(options, fragment):
    args = dict(api_name="orders", resource_group_name="rg", location="westeurope", workspace_id=WORKSPACE)
    with pytest.raises(ValueError, match=fragment):
        AuditLogAlertsArgs(**{**args, **options})


def test_the_program_adds_the_rules_when_monitoring_is_configured():
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.azure-dev.yaml", authgate__monitoring={
            "workspaceId": WORKSPACE, "source": "AppServiceConsoleLogs", "latencyP99Ms": 400}), root=ROOT)

    build()
    found = rules(mocks)
    assert len(found) == 4
    assert all("AppServiceConsoleLogs" in condition(r)["query"] for r in found.values())
    assert condition(found["authgate-billing-LatencyP99"])["threshold"] == 400
    assert all("actions" not in r or r["actions"] is None for r in found.values())


def test_bad_monitoring_config_names_the_key():
    mocks = azure_pulumi_mocks.install()
    with pytest.raises(StackConfigError) as raised:
        @pulumi.runtime.test
        def build():
            build_stack(stack_config("Pulumi.azure-dev.yaml", authgate__monitoring={"source": "ContainerLogV2"}),
                        root=ROOT)
        build()
    assert raised.value.key == "authgate:monitoring.workspaceId"
    assert mocks.resources == []
