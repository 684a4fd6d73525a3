"""EKS front door, shape three (`front_door: in-cluster`): an internet-facing ALB forwarding to the cluster's own
gateway (NGINX, Envoy Gateway or Istio), which asks authgate's forward-auth service about every request.

AWS side: the ALB (HTTPS with the given certificate, HTTP redirected, WAF rate limit, access logs, an empty IP target
group for the AWS Load Balancer Controller's TargetGroupBinding to fill with the gateway's pods). Cluster side: the
manifests, rendered from the same policy and written into the cloud assembly for GitOps (`<assembly>/authgate-in-
cluster/`): the forward-auth service (`authgate render k8s`) and the gateway's configuration (`render nginx`,
`render gateway-api` or `render istio`). Synthesis stops if those manifests would leave a route open.
"""
from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Stage, aws_ec2 as ec2
from constructs import Construct

from stacks.aws.alb_oidc.infrastructure import OidcLoginLoadBalancer
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.settings import InClusterSettings

MANIFEST_DIR = "authgate-in-cluster"


def in_cluster_files(policy, api: str, settings: InClusterSettings) -> dict[str, str]:
    """File name -> text of what the cluster applies; UnsupportedConfiguration when a renderer refuses the inputs or
    the result would leave a route open (a RequestAuthentication alone, a protected route without jwt or extAuth)."""
    from stacks.policy.render.in_cluster import manifests_yaml, render_front_door

    try:
        rendered = render_front_door(policy, api, gateway=settings.gateway, image=settings.image,
                                     backend=settings.backend, namespace=settings.namespace,
                                     gateway_namespace=settings.gateway_namespace,
                                     gateway_name=settings.gateway_name, gateway_port=settings.gateway_port,
                                     selector=settings.selector if isinstance(settings.selector, dict) else None)
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
                 settings: InClusterSettings) -> None:
        super().__init__(scope, id_)
        self.files = in_cluster_files(policy, api, settings)
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
