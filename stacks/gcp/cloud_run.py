"""A private Cloud Run service: only the named members may invoke it, and ingress is restricted to its front door."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.naming import require_id, require_members, require_region

# The two ingress settings a gated backend can use. "all" is needed behind API Gateway, which reaches Cloud Run from
# Google's front end rather than from a VPC; the invoker binding is then what keeps the service private.
# "internal-and-cloud-load-balancing" is right behind an external HTTPS load balancer (IAP), where nothing else
# should reach the run.app URL at all.
INGRESS_BEHIND_API_GATEWAY = "INGRESS_TRAFFIC_ALL"
INGRESS_BEHIND_LOAD_BALANCER = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
_INGRESS = (INGRESS_BEHIND_API_GATEWAY, INGRESS_BEHIND_LOAD_BALANCER, "INGRESS_TRAFFIC_INTERNAL_ONLY")

INVOKER_ROLE = "roles/run.invoker"


@dataclass(frozen=True, kw_only=True)
class PrivateCloudRunServiceArgs:
    """What a private backend needs: where it runs, what it runs, and the only members allowed to call it."""

    service_name: str
    location: str
    image: pulumi.Input[str]
    invokers: Sequence[pulumi.Input[str]]
    ingress: str
    runtime_service_account: pulumi.Input[str] | None = None
    container_port: int = 8080
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    deletion_protection: bool = True
    project: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        require_id(self.service_name, field="service_name", min_len=1, max_len=49, example="orders-backend")
        require_region(self.location, field="location", service="Cloud Run")
        object.__setattr__(self, "invokers", require_members(self.invokers, field="invokers"))
        if self.ingress not in _INGRESS:
            raise ValueError(f"ingress must be one of {', '.join(_INGRESS)}; got {self.ingress!r}")
        if not 1 <= self.container_port <= 65535:
            raise ValueError(f"container_port must be 1-65535; got {self.container_port}")


class PrivateCloudRunService(pulumi.ComponentResource):
    """A Cloud Run v2 service whose invoker role is held by exactly the members given, nobody else."""

    service: gcp.cloudrunv2.Service
    invoker_binding: gcp.cloudrunv2.ServiceIamBinding
    uri: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateCloudRunServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:gcp:PrivateCloudRunService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        container = gcp.cloudrunv2.ServiceTemplateContainerArgs(
            image=args.image,
            ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=args.container_port),
            envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v)
                  for k, v in sorted(args.environment.items())],
        )
        self.service = gcp.cloudrunv2.Service(
            f"{name}-service",
            name=args.service_name,
            location=args.location,
            project=args.project,
            ingress=args.ingress,
            # Explicitly keep the IAM invoker check on: with it off, anyone who can reach the URL may call the service.
            invoker_iam_disabled=False,
            deletion_protection=args.deletion_protection,
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                containers=[container],
                service_account=args.runtime_service_account,
            ),
            opts=child,
        )
        # A binding (not a member) is authoritative for the role: any invoker added outside this stack is removed
        # on the next update, so the listed members really are the only callers.
        self.invoker_binding = gcp.cloudrunv2.ServiceIamBinding(
            f"{name}-invokers",
            name=self.service.name,
            location=args.location,
            project=args.project,
            role=INVOKER_ROLE,
            members=list(args.invokers),
            opts=child,
        )
        self.uri = self.service.uri
        self.register_outputs({"uri": self.uri, "service_name": self.service.name})
