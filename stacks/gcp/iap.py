"""Identity-Aware Proxy in front of a web backend: external HTTPS load balancer, Cloud Armor rate limit, IAP login."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.cloud_run import INGRESS_BEHIND_LOAD_BALANCER, PrivateCloudRunService, PrivateCloudRunServiceArgs
from stacks.gcp.naming import require_domain, require_id, require_members, require_region

IAP_ACCESSOR_ROLE = "roles/iap.httpsResourceAccessor"
_DEFAULT_RULE_PRIORITY = 2147483647
_RATE_ACTIONS = ("throttle", "rate_based_ban")


@dataclass(frozen=True, kw_only=True)
class IapWebBackendArgs:
    """A browser-facing app: who may sign in through IAP, its domains, and how hard one client may hit it."""

    name_prefix: str
    region: str
    image: pulumi.Input[str]
    domains: Sequence[str]
    iap_members: Sequence[pulumi.Input[str]]
    # Omit both to use IAP's Google-managed OAuth client (fine for users inside your organisation).
    oauth2_client_id: pulumi.Input[str] | None = None
    oauth2_client_secret: pulumi.Input[str] | None = None
    rate_limit_requests: int = 600
    rate_limit_interval_seconds: int = 60
    rate_limit_action: str = "rate_based_ban"
    ban_duration_seconds: int = 300
    runtime_service_account: pulumi.Input[str] | None = None
    container_port: int = 8080
    deletion_protection: bool = True
    project: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        require_id(self.name_prefix, field="name_prefix", min_len=1, max_len=40, example="portal")
        require_region(self.region, field="region", service="Cloud Run")
        if not self.domains:
            raise ValueError("domains must list the host names for the managed certificate, "
                             "e.g. ['portal.example.com']")
        for domain in self.domains:
            require_domain(domain, field="domains")
        object.__setattr__(self, "iap_members", require_members(self.iap_members, field="iap_members"))
        if (self.oauth2_client_id is None) != (self.oauth2_client_secret is None):
            raise ValueError("set both oauth2_client_id and oauth2_client_secret, or neither (Google-managed client)")
        if self.rate_limit_requests < 1 or not 10 <= self.rate_limit_interval_seconds <= 3600:
            raise ValueError("rate_limit_requests must be >= 1 and rate_limit_interval_seconds 10-3600 "
                             f"(got {self.rate_limit_requests} per {self.rate_limit_interval_seconds} s)")
        if self.rate_limit_action not in _RATE_ACTIONS:
            raise ValueError(f"rate_limit_action must be one of {', '.join(_RATE_ACTIONS)}; "
                             f"got {self.rate_limit_action!r}")
        if self.rate_limit_action == "rate_based_ban" and not 1 <= self.ban_duration_seconds <= 86400:
            raise ValueError(f"ban_duration_seconds must be 1-86400; got {self.ban_duration_seconds}")


class IapWebBackend(pulumi.ComponentResource):
    """Cloud Run (load-balancer ingress only, invoked by IAP alone) behind an HTTPS LB with IAP and Cloud Armor."""

    backend: PrivateCloudRunService
    security_policy: gcp.compute.SecurityPolicy
    backend_service: gcp.compute.BackendService
    address: gcp.compute.GlobalAddress
    iap_access: gcp.iap.WebBackendServiceIamBinding

    def __init__(self, name: str, args: IapWebBackendArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:gcp:IapWebBackend", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix

        # IAP forwards signed-in requests to Cloud Run as its own service agent, so that agent is the one invoker.
        iap_agent = gcp.projects.ServiceIdentity(
            f"{name}-iap-agent", service="iap.googleapis.com", project=args.project, opts=child)
        self.backend = PrivateCloudRunService(
            f"{name}-web",
            PrivateCloudRunServiceArgs(
                service_name=f"{prefix}-web",
                location=args.region,
                image=args.image,
                invokers=[iap_agent.member],
                ingress=INGRESS_BEHIND_LOAD_BALANCER,
                runtime_service_account=args.runtime_service_account,
                container_port=args.container_port,
                deletion_protection=args.deletion_protection,
                project=args.project,
            ),
            opts=child,
        )
        neg = gcp.compute.RegionNetworkEndpointGroup(
            f"{name}-neg",
            name=f"{prefix}-neg",
            region=args.region,
            network_endpoint_type="SERVERLESS",
            cloud_run=gcp.compute.RegionNetworkEndpointGroupCloudRunArgs(service=self.backend.service.name),
            project=args.project,
            opts=child,
        )

        rate_limit = gcp.compute.SecurityPolicyRuleRateLimitOptionsArgs(
            conform_action="allow",
            exceed_action="deny(429)",
            enforce_on_key="IP",
            rate_limit_threshold=gcp.compute.SecurityPolicyRuleRateLimitOptionsRateLimitThresholdArgs(
                count=args.rate_limit_requests, interval_sec=args.rate_limit_interval_seconds),
            **({
                "ban_duration_sec": args.ban_duration_seconds,
                "ban_threshold": gcp.compute.SecurityPolicyRuleRateLimitOptionsBanThresholdArgs(
                    count=args.rate_limit_requests, interval_sec=args.rate_limit_interval_seconds),
            } if args.rate_limit_action == "rate_based_ban" else {}),
        )
        every_source = gcp.compute.SecurityPolicyRuleMatchArgs(
            versioned_expr="SRC_IPS_V1",
            config=gcp.compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=["*"]),
        )
        self.security_policy = gcp.compute.SecurityPolicy(
            f"{name}-armor",
            name=f"{prefix}-armor",
            description=f"Per-client rate limit in front of {prefix}",
            rules=[
                gcp.compute.SecurityPolicyRuleArgs(
                    action=args.rate_limit_action, priority=1000, match=every_source, rate_limit_options=rate_limit,
                    description=f"at most {args.rate_limit_requests} requests per "
                                f"{args.rate_limit_interval_seconds} s per client IP"),
                gcp.compute.SecurityPolicyRuleArgs(
                    action="allow", priority=_DEFAULT_RULE_PRIORITY, match=every_source,
                    description="default rule: IAP decides who gets in"),
            ],
            project=args.project,
            opts=child,
        )
        iap_settings = gcp.compute.BackendServiceIapArgs(
            enabled=True, oauth2_client_id=args.oauth2_client_id, oauth2_client_secret=args.oauth2_client_secret)
        self.backend_service = gcp.compute.BackendService(
            f"{name}-backend-service",
            name=f"{prefix}-backend",
            load_balancing_scheme="EXTERNAL_MANAGED",
            protocol="HTTPS",
            backends=[gcp.compute.BackendServiceBackendArgs(group=neg.id)],
            iap=iap_settings,
            security_policy=self.security_policy.self_link,
            project=args.project,
            opts=child,
        )
        url_map = gcp.compute.URLMap(
            f"{name}-url-map", name=f"{prefix}-url-map", default_service=self.backend_service.id,
            project=args.project, opts=child)
        certificate = gcp.compute.ManagedSslCertificate(
            f"{name}-cert",
            name=f"{prefix}-cert",
            managed=gcp.compute.ManagedSslCertificateManagedArgs(domains=list(args.domains)),
            project=args.project,
            opts=child,
        )
        proxy = gcp.compute.TargetHttpsProxy(
            f"{name}-https-proxy", name=f"{prefix}-https-proxy", url_map=url_map.id,
            ssl_certificates=[certificate.id], project=args.project, opts=child)
        self.address = gcp.compute.GlobalAddress(
            f"{name}-address", name=f"{prefix}-address", project=args.project, opts=child)
        gcp.compute.GlobalForwardingRule(
            f"{name}-https",
            name=f"{prefix}-https",
            load_balancing_scheme="EXTERNAL_MANAGED",
            target=proxy.id,
            ip_address=self.address.address,
            port_range="443",
            project=args.project,
            opts=child,
        )
        # Binding, not member: the listed principals are the only ones IAP lets through.
        self.iap_access = gcp.iap.WebBackendServiceIamBinding(
            f"{name}-iap-access",
            web_backend_service=self.backend_service.name,
            role=IAP_ACCESSOR_ROLE,
            members=list(args.iap_members),
            project=args.project,
            opts=child,
        )
        self.register_outputs({
            "ip_address": self.address.address,
            "urls": [f"https://{d}" for d in args.domains],
            "backend_service": self.backend_service.name,
        })
