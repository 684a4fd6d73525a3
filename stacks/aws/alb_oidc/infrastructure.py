"""Application load balancer that runs the OIDC login itself (authenticate-oidc on an HTTPS listener, Cognito or
any OIDC issuer) and verifies bearer JWTs on machine-to-machine paths (the ALB jwt-validation action)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, SecretValue, Token, aws_ec2 as ec2, aws_elasticloadbalancingv2 as elbv2, aws_logs as logs
from constructs import Construct

from stacks.aws.load_balancer_logs import load_balancer_log_bucket
from stacks.aws.log_group import DEFAULT_RETENTION
from stacks.aws.checkov import skip_checkov
from stacks.aws.nag import acknowledge_nag
from stacks.aws.refusals import UnsupportedConfiguration, require_alb_oidc_provider, require_https_url
from stacks.aws.web_acl.infrastructure import DEFAULT_RATE_LIMIT, RateLimitedWebAcl

# ALB jwt-validation takes at most 10 values per additional claim.
MAX_CLAIM_VALUES = 10
# Browser sessions far shorter than the ALB default of 7 days: a stolen cookie is worth less.
DEFAULT_SESSION_TIMEOUT = Duration.hours(1)


@dataclass(frozen=True)
class OidcLogin:
    """The issuer the ALB signs users in with (a confidential client: the ALB holds the secret)."""
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    user_info_endpoint: str
    client_id: str
    client_secret: SecretValue
    scope: str = "openid"
    profile: str | None = None

    @classmethod
    def cognito(cls, *, issuer: str, hosted_domain_url: str, client_id: str, client_secret: SecretValue,
                scope: str = "openid") -> "OidcLogin":
        """Cognito serves its OAuth endpoints from the hosted domain, not from the issuer URL."""
        base = hosted_domain_url.rstrip("/")
        return cls(issuer=issuer, authorization_endpoint=f"{base}/oauth2/authorize",
                   token_endpoint=f"{base}/oauth2/token", user_info_endpoint=f"{base}/oauth2/userInfo",
                   client_id=client_id, client_secret=client_secret, scope=scope, profile="cognito")

    def check(self) -> None:
        require_alb_oidc_provider(self.issuer, profile=self.profile)
        for what, url in (("authorization_endpoint", self.authorization_endpoint),
                          ("token_endpoint", self.token_endpoint), ("user_info_endpoint", self.user_info_endpoint)):
            if not Token.is_unresolved(url):
                require_https_url(url, what=f"ALB OIDC {what}")
        if "openid" not in self.scope.split():
            raise UnsupportedConfiguration(f"ALB OIDC scope {self.scope!r} lacks 'openid'; the ALB needs an ID token")


@dataclass(frozen=True)
class MachineRoute:
    """Paths where callers present a bearer JWT (client credentials) that the ALB verifies itself.

    audience_claim  "aud", or "client_id" for Cognito access tokens (which carry no aud)
    scopes          any-of, matched against the space-separated `scope` claim
    """
    path_patterns: Sequence[str]
    issuer: str
    jwks_endpoint: str
    audiences: Sequence[str]
    audience_claim: str = "aud"
    scopes: Sequence[str] = ()

    def check(self) -> None:
        require_https_url(self.issuer, what="machine route issuer")
        require_https_url(self.jwks_endpoint, what="machine route jwks_endpoint")
        if not self.path_patterns or len(self.path_patterns) > 5:
            raise UnsupportedConfiguration(f"machine route needs 1 to 5 path patterns, got {len(self.path_patterns)}")
        if not self.audiences:
            raise UnsupportedConfiguration(f"machine route {list(self.path_patterns)} has no audiences; the ALB "
                                           "checks iss and exp by itself, so without one any token of the issuer "
                                           "would pass")
        for what, values in (("audiences", self.audiences), ("scopes", self.scopes)):
            if len(values) > MAX_CLAIM_VALUES:
                raise UnsupportedConfiguration(f"machine route lists {len(values)} {what}; the ALB jwt-validation "
                                               f"action takes at most {MAX_CLAIM_VALUES}")
        if any(" " in scope for scope in self.scopes):
            raise UnsupportedConfiguration("a scope cannot contain a space")

    def jwt_validation_config(self) -> elbv2.CfnListenerRule.JwtValidationConfigProperty:
        claims = [elbv2.CfnListenerRule.JwtValidationActionAdditionalClaimProperty(
            name=self.audience_claim, format="single-string", values=list(self.audiences))]
        if self.scopes:
            claims.append(elbv2.CfnListenerRule.JwtValidationActionAdditionalClaimProperty(
                name="scope", format="space-separated-values", values=list(self.scopes)))
        return elbv2.CfnListenerRule.JwtValidationConfigProperty(
            issuer=self.issuer, jwks_endpoint=self.jwks_endpoint, additional_claims=claims)


class OidcLoginLoadBalancer(Construct):
    """An ALB whose HTTPS listener authenticates every browser request with OIDC before forwarding.

    name             prefix of the names of its web ACL and logs (letters, digits, hyphens)
    certificate_arn  ACM certificate for the listener
    target_group     where authenticated requests go; omitted, an empty IP target group is created for an
                     in-cluster controller (AWS Load Balancer Controller TargetGroupBinding) to fill
    login            None: no login at the listener, requests are forwarded as they come, for a target that
                     authenticates every request itself (the EKS in-cluster gateway and its forward-auth service)
    """

    def __init__(self, scope: Construct, id_: str, *, name: str, vpc: ec2.IVpc, certificate_arn: str,
                 login: OidcLogin | None,
                 target_group: elbv2.IApplicationTargetGroup | None = None, target_port: int = 8080,
                 machine_routes: Sequence[MachineRoute] = (), internet_facing: bool = True,
                 session_timeout: Duration = DEFAULT_SESSION_TIMEOUT, session_cookie_name: str = "authgate-session",
                 waf_rate_limit: int = DEFAULT_RATE_LIMIT, log_retention: logs.RetentionDays = DEFAULT_RETENTION,
                 deletion_protection: bool = True) -> None:
        super().__init__(scope, id_)
        if login is not None:
            login.check()
        for route in machine_routes:
            route.check()
        if session_timeout.to_seconds() > Duration.days(7).to_seconds():
            raise UnsupportedConfiguration("session_timeout longer than 7 days is more than the ALB allows")

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="authgate OIDC load balancer: HTTPS in; IdP and targets out")
        # The ALB itself calls the IdP's token and userinfo endpoints (and JWKS for jwt-validation) over HTTPS.
        if login is not None or machine_routes:
            self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the OIDC issuer")
        self.security_group.add_egress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(target_port),
                                            "to the targets inside the VPC")
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=vpc, internet_facing=internet_facing, security_group=self.security_group,
            drop_invalid_header_fields=True, desync_mitigation_mode=elbv2.DesyncMitigationMode.STRICTEST,
            deletion_protection=deletion_protection,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC if internet_facing
                                            else ec2.SubnetType.PRIVATE_WITH_EGRESS))
        self.access_log_bucket = load_balancer_log_bucket(self, "AccessLogs")
        self.load_balancer.log_access_logs(self.access_log_bucket, prefix="alb")

        self.target_group = target_group or elbv2.ApplicationTargetGroup(
            self, "Targets", vpc=vpc, port=target_port, protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            health_check=elbv2.HealthCheck(path="/healthz", healthy_http_codes="200-399"))
        self.listener = self.load_balancer.add_listener(
            "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS, open=True,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
            default_action=elbv2.ListenerAction.forward([self.target_group]) if login is None else
            elbv2.ListenerAction.authenticate_oidc(
                issuer=login.issuer, authorization_endpoint=login.authorization_endpoint,
                token_endpoint=login.token_endpoint, user_info_endpoint=login.user_info_endpoint,
                client_id=login.client_id, client_secret=login.client_secret, scope=login.scope,
                session_timeout=session_timeout, session_cookie_name=session_cookie_name,
                on_unauthenticated_request=elbv2.UnauthenticatedAction.AUTHENTICATE,
                next=elbv2.ListenerAction.forward([self.target_group])))
        self.load_balancer.add_redirect(source_port=80, target_port=443)
        skip_checkov(self.security_group, "CKV_AWS_260",
                     "port 80 is open only for the listener that redirects to HTTPS; it forwards nothing")
        acknowledge_nag(self.security_group, "AwsSolutions-EC23",
                        "an internet-facing front door: HTTPS (and the HTTP->HTTPS redirect) from anywhere is its "
                        "purpose; every request is authenticated at the listener or, without a login, by the "
                        "in-cluster gateway's forward-auth service before any backend sees it")

        self.machine_rules: list[elbv2.CfnListenerRule] = []
        for priority, route in enumerate(machine_routes, start=1):
            # The L2 authenticateJwt action cannot add claim checks (aud, scope); the L1 rule can.
            self.machine_rules.append(elbv2.CfnListenerRule(
                self, f"MachineRoute{priority}", listener_arn=self.listener.listener_arn, priority=priority,
                conditions=[elbv2.CfnListenerRule.RuleConditionProperty(
                    field="path-pattern", path_pattern_config=elbv2.CfnListenerRule.PathPatternConfigProperty(
                        values=list(route.path_patterns)))],
                actions=[elbv2.CfnListenerRule.ActionProperty(type="jwt-validation", order=1,
                                                              jwt_validation_config=route.jwt_validation_config()),
                         elbv2.CfnListenerRule.ActionProperty(type="forward", order=2,
                                                              target_group_arn=self.target_group.target_group_arn)]))

        self.web_acl = RateLimitedWebAcl(self, "WebAcl", name=f"{name}-alb",
                                         rate_limit=waf_rate_limit, log_retention=log_retention)
        self.web_acl.associate("LoadBalancerAssociation", self.load_balancer.load_balancer_arn)
