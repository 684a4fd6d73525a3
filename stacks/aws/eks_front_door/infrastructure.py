"""EKS front door, shape one: an HTTP API (native JWT authorizers + authgate's Lambda authorizer) reaching an
internal ALB in front of the cluster through a VPC link, so the load balancer is never reachable from the internet.

Shape two, an internet-facing ALB that runs the OIDC login itself, is `OidcLoginLoadBalancer` without a target
group (stacks/aws/alb_oidc): its IP target group is what the cluster's load balancer controller fills.
"""
from __future__ import annotations

from aws_cdk import Duration, aws_apigatewayv2 as apigwv2, aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2, aws_elasticloadbalancingv2 as elbv2, aws_lambda as lambda_
from constructs import Construct

from stacks.aws.http_api.infrastructure import AuthgateHttpApi
from stacks.aws.load_balancer_logs import load_balancer_log_bucket
from stacks.aws.checkov import skip_checkov
from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings
from stacks.aws.revocation_table.infrastructure import RevocationTable
from stacks.aws.route_plan import ApiPlan


class HttpApiVpcLinkFrontDoor(Construct):
    """HTTP API -> VPC link -> internal ALB -> cluster pods (IP target group filled by TargetGroupBinding).

    target_port       the pods' port the ALB forwards to
    mtls_domain       the custom domain with mutual TLS, for an API with proof: mtls routes (see AuthgateHttpApi)
    revocation_table  the stage's shared RevocationTable, for an API with DPoP or denylist routes
    """

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc, plan: ApiPlan,
                 shortest_token_lifetime: Duration, authorizer_code: lambda_.Code | None = None,
                 route_table_path: str = "authgate_routes.json", target_port: int = 8080,
                 metrics_namespace: str | None = None, mtls_domain: MtlsDomainSettings | None = None,
                 revocation_table: RevocationTable | None = None) -> None:
        super().__init__(scope, id_)
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.link_security_group = ec2.SecurityGroup(
            self, "VpcLinkSecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="authgate VPC link: to the internal load balancer only")
        self.alb_security_group = ec2.SecurityGroup(
            self, "LoadBalancerSecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="authgate internal load balancer: from the VPC link only; to the pods")
        self.alb_security_group.add_ingress_rule(self.link_security_group, ec2.Port.tcp(80),
                                                 "requests API Gateway already authorized")
        self.link_security_group.add_egress_rule(self.alb_security_group, ec2.Port.tcp(80), "to the internal ALB")
        self.alb_security_group.add_egress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(target_port),
                                                "to the cluster's pods")
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=vpc, internet_facing=False, vpc_subnets=private,
            security_group=self.alb_security_group, drop_invalid_header_fields=True,
            desync_mitigation_mode=elbv2.DesyncMitigationMode.STRICTEST, deletion_protection=True)
        self.access_log_bucket = load_balancer_log_bucket(self, "AccessLogs")
        self.load_balancer.log_access_logs(self.access_log_bucket, prefix="internal-alb")
        self.target_group = elbv2.ApplicationTargetGroup(
            self, "Pods", vpc=vpc, port=target_port, protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            health_check=elbv2.HealthCheck(path="/healthz", healthy_http_codes="200-399"))
        # Plain HTTP inside the VPC: only the VPC link's security group can reach this listener, and API Gateway
        # terminated TLS from the client and enforced the token before the request entered the VPC.
        self.listener = self.load_balancer.add_listener(
            "Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=False,
            default_action=elbv2.ListenerAction.forward([self.target_group]))
        internal_http = ("internal listener reachable only from the VPC link's security group; clients' TLS ends "
                         "at API Gateway, which enforced the token before the request entered the VPC")
        skip_checkov(self.listener, "CKV_AWS_2", internal_http)
        skip_checkov(self.listener, "CKV_AWS_103", internal_http)
        self.vpc_link = apigwv2.VpcLink(self, "VpcLink", vpc=vpc, subnets=private,
                                        security_groups=[self.link_security_group])
        self.http_api = AuthgateHttpApi(
            self, "HttpApi", plan=plan, shortest_token_lifetime=shortest_token_lifetime,
            authorizer_code=authorizer_code, route_table_path=route_table_path, metrics_namespace=metrics_namespace,
            mtls_domain=mtls_domain, revocation_table=revocation_table,
            integration=integrations.HttpAlbIntegration("Cluster", self.listener, vpc_link=self.vpc_link))
