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
from stacks.aws.refusals import UnsupportedConfiguration, refuse_open_in_cluster_manifests
from stacks.aws.settings import InClusterSettings

MANIFEST_DIR = "authgate-in-cluster"


def in_cluster_files(policy, api: str, settings: InClusterSettings) -> dict[str, str]:
    """File name -> text of what the cluster applies; UnsupportedConfiguration when a renderer refuses the inputs or
    the result would leave a route open."""
    from stacks.policy.render.in_cluster import ServiceRef, manifests_yaml
    from stacks.policy.render.k8s import NAME, PORT, render_k8s

    convention = "nginx" if settings.gateway == "nginx" else "envoy"
    forward_auth = f"{NAME}.{settings.namespace}:{PORT}"
    header = f"# authgate: EKS in-cluster front door for API {api!r}, rendered at synth; apply with GitOps.\n"
    try:
        service = render_k8s(policy, api, image=settings.image, namespace=settings.namespace,
                             gateway_namespace=settings.gateway_namespace, convention=convention)
        files = {"forward-auth.yaml": manifests_yaml(service, header=header)}
        backend = ServiceRef.parse(settings.backend, option="authgate:eks.in_cluster.backend", namespace="default")
        if settings.gateway == "nginx":
            from stacks.policy.render.nginx import render_nginx
            auth = ServiceRef.parse(forward_auth, option="forward-auth", namespace=settings.namespace)
            files["nginx.conf"] = render_nginx(policy, api, backend=f"{backend.host}:{backend.port}",
                                               forward_auth=f"{auth.host}:{auth.port}",
                                               listen=str(settings.gateway_port))
            gateway: list[dict] = []
        elif settings.gateway == "gateway-api":
            from stacks.policy.render.gateway_api import render_gateway_api
            gateway = render_gateway_api(policy, api, backend=f"{backend.name}:{backend.port}",
                                         namespace=backend.namespace, forward_auth=forward_auth,
                                         gateway=f"{settings.gateway_namespace}/{settings.gateway_name}")
        else:
            from stacks.policy.render.istio import render_istio
            if not isinstance(settings.selector, dict) or not settings.selector:
                raise ValueError("authgate:eks.in_cluster.selector: give the API's pod labels, e.g. {\"app\": "
                                 "\"orders\"}")
            gateway, mesh = render_istio(policy, api, selector={str(k): str(v) for k, v in settings.selector.items()},
                                         namespace=backend.namespace, forward_auth=forward_auth)
            files["istio-mesh-config.yaml"] = manifests_yaml([{"meshConfig": mesh}])
    except (KeyError, ValueError) as exc:
        raise UnsupportedConfiguration(f"authgate:eks.in_cluster: {exc.args[0] if isinstance(exc, KeyError) else exc}"
                                       ) from None
    if gateway:
        refuse_open_in_cluster_manifests(service + gateway)
        files["gateway.yaml"] = manifests_yaml(gateway, header=header)
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
