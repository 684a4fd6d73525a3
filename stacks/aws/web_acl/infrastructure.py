"""Regional WAF web ACL: AWS managed baseline rules, a per-IP rate-based block, and logs with tokens redacted."""
from __future__ import annotations

import re

from aws_cdk import ArnFormat, RemovalPolicy, Stack, aws_logs as logs, aws_wafv2 as wafv2
from constructs import Construct

from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group

# Requests per source IP in any 5-minute window before the rate-based rule blocks (WAF's minimum is 10).
DEFAULT_RATE_LIMIT = 1000
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")


class RateLimitedWebAcl(Construct):
    """name becomes part of the ACL, metric and log group names (letters, digits, hyphens)."""

    def __init__(self, scope: Construct, id_: str, *, name: str, rate_limit: int = DEFAULT_RATE_LIMIT,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        super().__init__(scope, id_)
        if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", name):
            raise ValueError(f"web ACL name {name!r} may hold only letters, digits and hyphens")
        if not 10 <= rate_limit <= 2_000_000_000:
            raise ValueError(f"rate_limit {rate_limit} is outside WAF's range 10..2000000000 requests per 5 min")
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group, priority=priority, override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group)),
                visibility_config=_visibility(f"{name}-{group}"))
            for priority, group in enumerate(MANAGED_RULE_GROUPS)]
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name="RatePerSourceIp", priority=len(rules), action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=300)),
            visibility_config=_visibility(f"{name}-rate")))
        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl", name=name, scope="REGIONAL", default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules, visibility_config=_visibility(name))
        self.rate_limit = rate_limit

        # WAF requires the log group name to start with aws-waf-logs-.
        log_group_name = f"aws-waf-logs-{name}"
        self.log_group = retained_log_group(self, "Logs", retention=log_retention, log_group_name=log_group_name,
                                            removal_policy=RemovalPolicy.RETAIN)
        log_group_arn = Stack.of(self).format_arn(service="logs", resource="log-group", resource_name=log_group_name,
                                                  arn_format=ArnFormat.COLON_RESOURCE_NAME)
        logging = wafv2.CfnLoggingConfiguration(
            self, "Logging", resource_arn=self.web_acl.attr_arn, log_destination_configs=[log_group_arn],
            # A bearer token in a log is a credential anyone with log access can replay.
            redacted_fields=[wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                single_header={"Name": "authorization"})])
        logging.node.add_dependency(self.log_group)

    def associate(self, id_: str, resource_arn: str) -> wafv2.CfnWebACLAssociation:
        """Put the ACL in front of a REST API stage or an application load balancer."""
        return wafv2.CfnWebACLAssociation(self, id_, resource_arn=resource_arn, web_acl_arn=self.web_acl.attr_arn)


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=re.sub(r"[^A-Za-z0-9-_]", "-", metric)[:128],
        sampled_requests_enabled=True)
