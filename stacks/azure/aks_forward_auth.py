"""AKS in-cluster front door: the forward-auth service and the gateway's configuration, rendered from the policy,
applied to the AKS cluster the program creates through the Pulumi Kubernetes provider.

The provider's kubeconfig is the cluster's user credential (listClusterUserCredential), kept secret; the manifests
go in one `kubernetes:yaml/v2:ConfigGroup`, so the provider orders them (CRDs' kinds after their definitions) and the
policy pack sees every object it creates.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence

import pulumi
import pulumi_azure_native as azure_native
import pulumi_kubernetes as kubernetes


@dataclass(frozen=True, kw_only=True)
class AksForwardAuthArgs:
    resource_group_name: pulumi.Input[str]
    cluster_name: pulumi.Input[str]          # the ManagedCluster's name output, so the cluster exists first
    manifests: Sequence[dict[str, Any]]      # stacks.policy.render.in_cluster.render_front_door(...).all

    def __post_init__(self) -> None:
        if not self.manifests:
            raise ValueError("manifests is empty; render them with render_front_door")
        for manifest in self.manifests:
            if not isinstance(manifest, dict) or not manifest.get("apiVersion") or not manifest.get("kind"):
                raise ValueError(f"every manifest needs apiVersion and kind, got {str(manifest)[:80]}")


def _kubeconfig(result: Any) -> str:
    configs = getattr(result, "kubeconfigs", None) or []
    if not configs:
        raise ValueError("the AKS cluster returned no user kubeconfig")
    return base64.b64decode(configs[0].value).decode("utf-8")


class AksForwardAuth(pulumi.ComponentResource):
    """A Kubernetes provider for the AKS cluster and the front door's manifests applied through it."""

    provider: kubernetes.Provider
    manifests: kubernetes.yaml.v2.ConfigGroup

    def __init__(self, name: str, args: AksForwardAuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:AksForwardAuth", name, None, opts)
        credentials = azure_native.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name, resource_name=args.cluster_name)
        kubeconfig = pulumi.Output.secret(credentials.apply(_kubeconfig))
        self.provider = kubernetes.Provider(f"{name}-cluster", kubeconfig=kubeconfig,
                                            opts=pulumi.ResourceOptions(parent=self))
        self.manifests = kubernetes.yaml.v2.ConfigGroup(
            f"{name}-manifests", objs=list(args.manifests),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider))
        self.register_outputs({"objects": len(args.manifests)})
