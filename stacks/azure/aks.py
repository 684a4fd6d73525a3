"""AKS with the OIDC issuer and workload identity on, and managed identities federated to exact service accounts."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_azure_native as azure_native

# The audience Entra expects on Kubernetes service account tokens it exchanges (fixed by Entra workload identity).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,61}[A-Za-z0-9]")


def service_account_subject(namespace: str, service_account: str) -> str:
    """The `sub` of a projected service account token; the federated credential must match it exactly."""
    return f"system:serviceaccount:{namespace}:{service_account}"


@dataclass(frozen=True, kw_only=True)
class WorkloadIdentityBinding:
    """One Kubernetes service account that may act as one user-assigned managed identity."""

    namespace: str
    service_account: str
    identity_name: str

    def __post_init__(self) -> None:
        if not _DNS_LABEL.fullmatch(self.namespace):
            raise ValueError(f"namespace must be a DNS label such as 'orders' (no wildcards); got {self.namespace!r}")
        if not _DNS_SUBDOMAIN.fullmatch(self.service_account):
            raise ValueError(f"service_account must be a Kubernetes name such as 'orders-api' (no wildcards); "
                             f"got {self.service_account!r}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{2,127}", self.identity_name):
            raise ValueError(f"identity_name must be 3-128 letters, digits, '-' or '_'; got {self.identity_name!r}")

    @property
    def subject(self) -> str:
        return service_account_subject(self.namespace, self.service_account)


@dataclass(frozen=True, kw_only=True)
class AksWorkloadIdentityArgs:
    """The cluster and the service accounts in it that get Azure identities."""

    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    cluster_name: str
    workloads: Sequence[WorkloadIdentityBinding]
    node_count: int = 2
    node_vm_size: str = "Standard_D2s_v5"
    kubernetes_version: str | None = None
    dns_prefix: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _CLUSTER_NAME.fullmatch(self.cluster_name):
            raise ValueError(f"cluster_name must be 2-63 letters, digits, '-' or '_'; got {self.cluster_name!r}")
        if not self.workloads:
            raise ValueError("workloads must name at least one namespace/service account to federate; without one "
                             "workload identity has nothing to do")
        subjects = [w.subject for w in self.workloads]
        if len(subjects) != len(set(subjects)):
            raise ValueError(f"workloads lists a service account twice: {subjects}")
        names = [w.identity_name for w in self.workloads]
        if len(names) != len(set(names)):
            raise ValueError(f"workloads reuse an identity_name: {names}")
        if not 1 <= self.node_count <= 100:
            raise ValueError(f"node_count must be 1-100; got {self.node_count}")


class AksWorkloadIdentity(pulumi.ComponentResource):
    """ManagedCluster (OIDC issuer + workload identity), one UserAssignedIdentity and FederatedIdentityCredential per
    workload, each credential bound to one exact `system:serviceaccount:<ns>:<name>` subject."""

    cluster: azure_native.containerservice.ManagedCluster
    identities: dict[str, azure_native.managedidentity.UserAssignedIdentity]
    oidc_issuer_url: pulumi.Output[str]

    def __init__(self, name: str, args: AksWorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:AksWorkloadIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cs = azure_native.containerservice

        self.cluster = cs.ManagedCluster(
            f"{name}-cluster",
            resource_name_=args.cluster_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=args.dns_prefix or args.cluster_name.lower().replace("_", "-"),
            kubernetes_version=args.kubernetes_version,
            identity=cs.ManagedClusterIdentityArgs(type="SystemAssigned"),
            enable_rbac=True,
            agent_pool_profiles=[cs.ManagedClusterAgentPoolProfileArgs(
                name="system", mode="System", count=args.node_count, vm_size=args.node_vm_size, os_type="Linux")],
            # The issuer publishes the cluster's service account signing keys; Entra needs it to trust the tokens.
            oidc_issuer_profile=cs.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            # Installs the webhook that projects the token and client id into annotated pods.
            security_profile=cs.ManagedClusterSecurityProfileArgs(
                workload_identity=cs.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True)),
            tags=args.tags or None,
            opts=child,
        )
        self.oidc_issuer_url = self.cluster.oidc_issuer_profile.apply(
            lambda profile: profile.issuer_url if profile else None)

        self.identities = {}
        client_ids = {}
        for workload in args.workloads:
            identity = azure_native.managedidentity.UserAssignedIdentity(
                f"{name}-{workload.identity_name}",
                resource_name_=workload.identity_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                tags=args.tags or None,
                opts=child,
            )
            azure_native.managedidentity.FederatedIdentityCredential(
                f"{name}-{workload.identity_name}-federation",
                federated_identity_credential_resource_name=f"{workload.namespace}-{workload.service_account}"[:120],
                resource_name_=identity.name,
                resource_group_name=args.resource_group_name,
                issuer=self.oidc_issuer_url,
                subject=workload.subject,
                audiences=[TOKEN_EXCHANGE_AUDIENCE],
                opts=child,
            )
            self.identities[workload.identity_name] = identity
            # Annotate the service account with this: azure.workload.identity/client-id.
            client_ids[workload.subject] = identity.client_id
        self.register_outputs({"oidc_issuer_url": self.oidc_issuer_url, "workload_client_ids": client_ids})
