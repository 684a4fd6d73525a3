"""The VPC authgate creates when a stack needs one: two AZs, private subnets with egress, flow logs kept."""
from __future__ import annotations

from aws_cdk import aws_ec2 as ec2, aws_logs as logs
from constructs import Construct

from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group


def flow_logged_vpc(scope: Construct, id_: str, *, max_azs: int = 2, nat_gateways: int = 1,
                    log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> ec2.Vpc:
    vpc = ec2.Vpc(scope, id_, max_azs=max_azs, nat_gateways=nat_gateways, restrict_default_security_group=True,
                  subnet_configuration=[
                      ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                      ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                              cidr_mask=22)])
    flow_logs = retained_log_group(vpc, "FlowLogs", retention=log_retention)
    vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                     traffic_type=ec2.FlowLogTrafficType.ALL)
    return vpc
