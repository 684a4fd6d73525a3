"""EKS workload identity on aws_eks_v2: the cluster's IAM OIDC provider, IRSA roles whose trust names one exact
service account (sub) and audience (aud), and the Pod Identity alternative. Works for a cluster defined elsewhere:
all it needs is the cluster's name and OIDC issuer URL."""
from __future__ import annotations

import re

from aws_cdk import CfnJson, Duration, Fn, Stack, Token, aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

from stacks.aws.refusals import UnsupportedConfiguration, require_https_url

STS_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
# Kubernetes names: DNS-1123 labels (namespace) and subdomains (service account).
K8S_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
K8S_SERVICE_ACCOUNT = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _check_service_account(namespace: str, service_account: str) -> None:
    # A wildcard here would let every workload in the cluster (or namespace) assume the role.
    if not K8S_NAMESPACE.fullmatch(namespace):
        raise UnsupportedConfiguration(f"namespace {namespace!r} is not a Kubernetes namespace name (no wildcards)")
    if not K8S_SERVICE_ACCOUNT.fullmatch(service_account):
        raise UnsupportedConfiguration(f"service account {service_account!r} is not a Kubernetes name "
                                       "(no wildcards)")


class ClusterOidcProvider(Construct):
    """The IAM OIDC provider for a cluster's service-account issuer: created here, or an existing one imported.

    issuer_url    the cluster's OIDC issuer (`aws eks describe-cluster --query cluster.identity.oidc.issuer`)
    provider_arn  an existing provider for that issuer (an account holds one provider per issuer URL)
    """

    def __init__(self, scope: Construct, id_: str, *, issuer_url: str, provider_arn: str | None = None) -> None:
        super().__init__(scope, id_)
        if not Token.is_unresolved(issuer_url):
            require_https_url(issuer_url, what="cluster OIDC issuer")
        self.issuer_url = issuer_url
        if provider_arn:
            self.provider: iam.IOidcProvider = iam.OidcProviderNative.from_oidc_provider_arn(
                self, "Provider", provider_arn)
        else:
            self.provider = eks.OidcProviderNative(self, "Provider", url=issuer_url)

    @property
    def provider_arn(self) -> str:
        return self.provider.oidc_provider_arn


class IrsaRole(Construct):
    """An IAM role a single Kubernetes service account assumes through IRSA (AssumeRoleWithWebIdentity).

    The trust policy requires StringEquals on both `<issuer>:sub` (system:serviceaccount:<namespace>:<name>) and
    `<issuer>:aud` (sts.amazonaws.com): without the sub condition any pod of the cluster could take the role.
    """

    def __init__(self, scope: Construct, id_: str, *, provider: ClusterOidcProvider, namespace: str,
                 service_account: str, audience: str = STS_AUDIENCE,
                 max_session_duration: Duration = Duration.hours(1), description: str | None = None,
                 role_name: str | None = None) -> None:
        super().__init__(scope, id_)
        _check_service_account(namespace, service_account)
        self.subject = f"system:serviceaccount:{namespace}:{service_account}"
        issuer_host = (Fn.select(1, Fn.split("https://", provider.issuer_url))
                       if Token.is_unresolved(provider.issuer_url) else provider.issuer_url.removeprefix("https://"))
        # Condition keys are built from the issuer, which may only be known at deploy time; CfnJson resolves
        # tokens inside keys, which a plain dict cannot.
        conditions = CfnJson(self, "TrustConditions", value={f"{issuer_host}:sub": self.subject,
                                                             f"{issuer_host}:aud": audience})
        self.role = iam.Role(
            self, "Role", max_session_duration=max_session_duration, role_name=role_name,
            description=description or f"IRSA role of {self.subject}",
            assumed_by=iam.WebIdentityPrincipal(provider.provider_arn, conditions={"StringEquals": conditions}))


class PodIdentityRole(Construct):
    """An IAM role bound to one service account through EKS Pod Identity (no OIDC provider needed).

    The trust names the Pod Identity service with confused-deputy conditions (this account, this cluster); the
    association, not the trust policy, is what ties the role to the namespace and service account.
    """

    def __init__(self, scope: Construct, id_: str, *, cluster_name: str, namespace: str, service_account: str,
                 max_session_duration: Duration = Duration.hours(1), description: str | None = None) -> None:
        super().__init__(scope, id_)
        _check_service_account(namespace, service_account)
        stack = Stack.of(self)
        cluster_arn = stack.format_arn(service="eks", resource="cluster", resource_name=cluster_name)
        conditions = {"StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": cluster_arn}}
        service = iam.ServicePrincipal(POD_IDENTITY_SERVICE)
        self.role = iam.Role(self, "Role", max_session_duration=max_session_duration,
                             description=description or f"Pod Identity role of {namespace}/{service_account}",
                             assumed_by=service.with_conditions(conditions))
        # Pod Identity tags the session (namespace, service account, pod) so policies can use them.
        self.role.assume_role_policy.add_statements(iam.PolicyStatement(
            actions=["sts:TagSession"], principals=[service], conditions=conditions))
        self.association = eks.CfnPodIdentityAssociation(
            self, "Association", cluster_name=cluster_name, namespace=namespace, service_account=service_account,
            role_arn=self.role.role_arn)
