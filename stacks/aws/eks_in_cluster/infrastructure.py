"""EKS front door, shape three (`front_door: in-cluster`): an internet-facing ALB forwarding to the cluster's own
gateway (NGINX, Envoy Gateway or Istio), which asks authgate's forward-auth service about every request.

AWS side: the ALB (HTTPS with the given certificate, HTTP redirected, WAF rate limit, access logs, an empty IP target
group for the AWS Load Balancer Controller's TargetGroupBinding to fill with the gateway's pods). Cluster side: the
manifests, rendered from the same policy and written into the cloud assembly for GitOps (`<assembly>/authgate-in-
cluster/`): the forward-auth service (`authgate render k8s`) and the gateway's configuration (`render nginx`,
`render gateway-api` or `render istio`). Synthesis stops if those manifests would leave a route open.

An API whose decisions need state every replica shares (denylist or DPoP routes, token-binding issuers) gets the
stage's revocation table: an IRSA role for the forward-auth service account, with the authorizers' grant on it
(read entries, write DPoP replay records), and the table's name, region and role in the manifests. Those are written
at synth, so the names are fixed (the table's and the role's) and the account and region pinned.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aws_cdk import CfnOutput, Stack, Stage, Token, aws_ec2 as ec2
from constructs import Construct

from stacks.aws.alb_oidc.infrastructure import OidcLoginLoadBalancer
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.settings import InClusterSettings
from stacks.aws.workload_identity.infrastructure import ClusterOidcProvider, IrsaRole

MANIFEST_DIR = "authgate-in-cluster"
_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9-]+")


def physical_name(*parts: str, limit: int) -> str:
    """A fixed resource name from its parts ('-'-joined, characters outside A-Z a-z 0-9 - replaced), at most `limit`
    characters: a longer one keeps its start and ends in a hash of the whole, so two long names stay distinct."""
    name = _NAME_CHARACTERS.sub("-", "-".join(parts))
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9]}-{digest}"


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


class ForwardAuthTableAccess(Construct):
    """The forward-auth service account's IRSA role, granted what an authorizer may do on the revocation table, and
    the literal names the manifests carry (`table_name`, `region`, `role_arn`)."""

    def __init__(self, scope: Construct, id_: str, *, table, oidc_issuer: str, oidc_provider_arn: str | None,
                 namespace: str, role_name: str) -> None:
        super().__init__(scope, id_)
        from stacks.policy.render.k8s import NAME

        stack = Stack.of(self)
        if Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region) or not table.physical_name:
            raise UnsupportedConfiguration(
                "authgate:eks.in_cluster: the API needs the shared revocation table, and the manifests written at "
                "synth must name it and the pods' role literally: pin authgate:account and authgate:region")
        self.table_name, self.region = table.physical_name, stack.region
        partition = _partition(stack.region)
        # The cluster's IAM OIDC provider exists already (given, or the one IAM keeps per issuer URL: the
        # WorkloadIdentity stack or `eksctl utils associate-iam-oidc-provider` creates it).
        provider_arn = oidc_provider_arn or (f"arn:{partition}:iam::{stack.account}:oidc-provider/"
                                             f"{oidc_issuer.removeprefix('https://')}")
        provider = ClusterOidcProvider(self, "ClusterOidc", issuer_url=oidc_issuer, provider_arn=provider_arn)
        self.role = IrsaRole(self, "Irsa", provider=provider, namespace=namespace, service_account=NAME,
                             role_name=role_name,
                             description="authgate forward-auth: the shared revocation table").role
        self.role_arn = f"arn:{partition}:iam::{stack.account}:role/{role_name}"
        table.grant_authorizer(self.role)
        CfnOutput(self, "RoleArn", value=self.role.role_arn,
                  description="the forward-auth service account's IRSA role (eks.amazonaws.com/role-arn)")


def in_cluster_files(policy, api: str, settings: InClusterSettings,
                     shared_store: ForwardAuthTableAccess | None = None) -> dict[str, str]:
    """File name -> text of what the cluster applies; UnsupportedConfiguration when a renderer refuses the inputs or
    the result would leave a route open (a RequestAuthentication alone, a protected route without jwt or extAuth)."""
    from stacks.policy.render.in_cluster import manifests_yaml, render_front_door

    try:
        rendered = render_front_door(policy, api, gateway=settings.gateway, image=settings.image,
                                     backend=settings.backend, namespace=settings.namespace,
                                     gateway_namespace=settings.gateway_namespace,
                                     gateway_name=settings.gateway_name, gateway_port=settings.gateway_port,
                                     selector=settings.selector if isinstance(settings.selector, dict) else None,
                                     trusted_proxies=settings.trusted_proxies, public_origin=settings.public_origin,
                                     cluster="eks",
                                     **({} if shared_store is None else {
                                         "denylist_table": shared_store.table_name,
                                         "aws_region": shared_store.region, "eks_role_arn": shared_store.role_arn}))
    except (KeyError, ValueError) as exc:
        raise UnsupportedConfiguration(f"authgate:eks.in_cluster: {exc.args[0] if isinstance(exc, KeyError) else exc}"
                                       ) from None
    header = f"# authgate: EKS in-cluster front door for API {api!r}, rendered at synth; apply with GitOps.\n"
    files = {"forward-auth.yaml": manifests_yaml(rendered.forward_auth, header=header),
             "gateway.yaml": manifests_yaml(rendered.gateway, header=header)}
    if rendered.mesh_config is not None:
        files["istio-mesh-config.yaml"] = manifests_yaml([{"meshConfig": rendered.mesh_config}])
    return files


class InClusterFrontDoor(Construct):
    """The ALB in front of the in-cluster gateway, and the gateway's manifests written for GitOps."""

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc, policy, api: str,
                 settings: InClusterSettings, shared_store: ForwardAuthTableAccess | None = None) -> None:
        super().__init__(scope, id_)
        self.files = in_cluster_files(policy, api, settings, shared_store)
        self.load_balancer = OidcLoginLoadBalancer(self, "Alb", name="authgate-in-cluster", vpc=vpc,
                                                   certificate_arn=settings.certificate_arn, login=None,
                                                   target_port=settings.gateway_port)
        stage = Stage.of(self)
        self.manifest_dir = Path(stage.outdir if stage else ".") / MANIFEST_DIR
        self.manifest_dir.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (self.manifest_dir / name).write_text(text, encoding="utf-8")
        CfnOutput(self, "GatewayTargetGroupArn", value=self.load_balancer.target_group.target_group_arn,
                  description="TargetGroupBinding targetGroupARN for the in-cluster gateway's Service")
        CfnOutput(self, "LoadBalancerDnsName", value=self.load_balancer.load_balancer.load_balancer_dns_name)
