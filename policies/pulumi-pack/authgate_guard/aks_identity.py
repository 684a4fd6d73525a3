"""AKS: clusters must publish an OIDC issuer and run workload identity (no node-wide or pod-managed secrets)."""
from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from authgate_guard.props import get_path, is_type


def validate_aks_workload_identity(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_type(args.resource_type, "azure-native:containerservice", "ManagedCluster"):
        return
    if get_path(args.props, "oidcIssuerProfile", "enabled") is not True:
        report_violation(f"AKS cluster {args.name} has no OIDC issuer (oidcIssuerProfile.enabled is not true); "
                         f"Entra cannot verify its service account tokens, so workload identity cannot work. "
                         f"Set oidc_issuer_profile={{'enabled': True}}", None)
    if get_path(args.props, "securityProfile", "workloadIdentity", "enabled") is not True:
        report_violation(f"AKS cluster {args.name} does not enable workload identity "
                         f"(securityProfile.workloadIdentity.enabled is not true); pods would fall back to node "
                         f"identities or stored secrets. Set security_profile.workload_identity.enabled=True", None)
