"""Azure Monitor scheduled query alerts on authgate's audit lines in a Log Analytics workspace: one rule per alarm
of stacks.alarms, each a KQL query over the JSON each decision writes.

Where the lines land depends on what runs authgate's runtime: AKS with Container insights writes stdout to
`ContainerLogV2` (a JSON line is kept as a dynamic `LogMessage`), Container Apps to `ContainerAppConsoleLogs_CL`
(`Log_s`), App Service to `AppServiceConsoleLogs` (`ResultDescription`). LOG_SOURCES turns each into rows with the
line as a dynamic column `line`, of which only `authgate == "authorizer"` lines of the API are read, by their bounded
members (`Outcome`, `Reason`, `DecisionLatency`, `KeyFetchFailures`; lambdas/observability).

Rules: KeyFetchFailures (minutes with a failed fetch within the last N), Unavailable, Unauthorized (the share of
decisions of each watched 401 code, split by code: one alert per code), LatencyP99. Descriptions are the catalogue's.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

from stacks.alarms import ALARMS, AlarmThresholds, describe, describe_unauthorized_split

LOG_SOURCES = {
    "ContainerLogV2": "ContainerLogV2 | extend line = todynamic(LogMessage)",
    "ContainerAppConsoleLogs": "ContainerAppConsoleLogs_CL | extend line = todynamic(Log_s)",
    "AppServiceConsoleLogs": "AppServiceConsoleLogs | extend line = todynamic(ResultDescription)",
}
monitor = azure_native.monitor


def audit_lines_query(source: str, api_name: str) -> str:
    """KQL: the API's audit lines from `source` (a LOG_SOURCES key), one row per decision with `line`."""
    return (f"{LOG_SOURCES[source]}\n| where tostring(line.authgate) == \"authorizer\" "
            f"and tostring(line.ApiName) == \"{api_name}\"")


@dataclass(frozen=True, kw_only=True)
class AuditLogAlertsArgs:
    """workspace_id: the Log Analytics workspace's resource id; action_groups: action group resource ids."""

    api_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    workspace_id: pulumi.Input[str]
    source: str = "ContainerLogV2"
    action_groups: Sequence[pulumi.Input[str]] = ()
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)

    def __post_init__(self) -> None:
        if not self.api_name or not all(c.isalnum() or c in "-_" for c in self.api_name):
            raise ValueError(f"api_name must be a policy API name (letters, digits, - and _), got {self.api_name!r}")
        if self.source not in LOG_SOURCES:
            raise ValueError(f"source must be one of {', '.join(LOG_SOURCES)} (where the runtime's stdout lands), "
                             f"got {self.source!r}")
        if isinstance(self.workspace_id, str) and "/providers/Microsoft.OperationalInsights/workspaces/" not in \
                self.workspace_id:
            raise ValueError("workspace_id must be a Log Analytics workspace resource id (/subscriptions/.../"
                             f"providers/Microsoft.OperationalInsights/workspaces/<name>), got {self.workspace_id!r}")


class AuditLogAlerts(pulumi.ComponentResource):
    rules: dict[str, "monitor.ScheduledQueryRule"]

    def __init__(self, name: str, args: AuditLogAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("authgate:azure:AuditLogAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api, t = args.api_name, args.thresholds
        lines = audit_lines_query(args.source, api)
        actions = monitor.ActionsArgs(action_groups=list(args.action_groups)) if args.action_groups else None
        self.rules = {}

        def rule(key: str, *, severity: int, query: str, window_minutes: int, frequency_minutes: int,
                 condition: dict, periods: int = 1, description: str) -> None:
            self.rules[key] = monitor.ScheduledQueryRule(
                f"{name}-{key.lower()}", rule_name=f"authgate-{api}-{key}", resource_group_name=args.resource_group_name,
                location=args.location, kind="LogAlert", display_name=f"authgate {api}: {key}",
                description=description, severity=severity, enabled=True, scopes=[args.workspace_id],
                evaluation_frequency=f"PT{frequency_minutes}M", window_size=f"PT{window_minutes}M",
                auto_mitigate=True, actions=actions,
                criteria=monitor.ScheduledQueryRuleCriteriaArgs(all_of=[monitor.ConditionArgs(
                    query=query,
                    failing_periods=monitor.ConditionFailingPeriodsArgs(
                        number_of_evaluation_periods=periods, min_failing_periods_to_alert=periods),
                    **condition)]),
                opts=child)

        minutes = t.key_fetch_failure_minutes
        rule(ALARMS["key_fetch_failures"].name, severity=2, window_minutes=minutes, frequency_minutes=1,
             description=describe("key_fetch_failures", api, t),
             query=f"{lines}\n| where toint(line.KeyFetchFailures) > 0\n"
                   "| summarize minutes = dcount(bin(TimeGenerated, 1m))",
             condition=dict(time_aggregation="Maximum", metric_measure_column="minutes",
                            operator="GreaterThanOrEqual", threshold=minutes))
        rule(ALARMS["unavailable"].name, severity=1, window_minutes=5, frequency_minutes=1,
             description=describe("unavailable", api, t),
             query=f"{lines}\n| where tostring(line.Outcome) == \"unavailable\"",
             condition=dict(time_aggregation="Count", operator="GreaterThanOrEqual", threshold=t.unavailable_count))
        watched = ", ".join(f'"{code}"' for code in t.watched_401_codes)
        rule("Unauthorized", severity=3, window_minutes=5, frequency_minutes=5, periods=t.unauthorized_periods,
             description=describe_unauthorized_split(api, t),
             query=f"let lines = materialize({lines});\nlet total = toscalar(lines | count);\n"
                   "lines\n| where tostring(line.Outcome) == \"unauthorized\"\n"
                   f"| extend Reason = tostring(line.Reason)\n| where Reason in ({watched})\n"
                   "| summarize n = count() by Reason\n"
                   f"| extend share = iff(n >= {t.unauthorized_min_count}, 100.0 * n / total, 0.0)",
             condition=dict(time_aggregation="Maximum", metric_measure_column="share", operator="GreaterThan",
                            threshold=t.unauthorized_share_percent,
                            dimensions=[monitor.DimensionArgs(name="Reason", operator="Include", values=["*"])]))
        rule(ALARMS["latency_p99"].name, severity=3, window_minutes=5, frequency_minutes=5, periods=t.latency_periods,
             description=describe("latency_p99", api, t),
             query=f"{lines}\n| summarize p99 = percentile(todouble(line.DecisionLatency), 99)",
             condition=dict(time_aggregation="Maximum", metric_measure_column="p99", operator="GreaterThan",
                            threshold=t.latency_p99_ms))
        self.register_outputs({key: r.name for key, r in self.rules.items()})
