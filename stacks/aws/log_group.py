"""The one way authgate creates a CloudWatch log group: retained for a fixed period, removed with the stack only
when asked, so access and audit logs outlive a mistaken `cdk destroy` by default."""
from __future__ import annotations

from aws_cdk import RemovalPolicy, aws_logs as logs
from constructs import Construct

from stacks.aws.checkov import skip_checkov

DEFAULT_RETENTION = logs.RetentionDays.ONE_YEAR


def retained_log_group(scope: Construct, id_: str, *, retention: logs.RetentionDays = DEFAULT_RETENTION,
                       log_group_name: str | None = None,
                       removal_policy: RemovalPolicy = RemovalPolicy.RETAIN) -> logs.LogGroup:
    log_group = logs.LogGroup(scope, id_, retention=retention, log_group_name=log_group_name,
                              removal_policy=removal_policy)
    skip_checkov(log_group, "CKV_AWS_158",
                 "holds request metadata and audit lines, never tokens (authorizers log none; WAF redacts the "
                 "authorization header); CloudWatch Logs encrypts it at rest with service-owned keys")
    return log_group
