"""authgate's AWS stacks: each composes the constructs for one deployable concern and nothing else."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, SecretValue, Stack, Stage, aws_apigateway as apigw, aws_apigatewayv2_integrations as integ
from aws_cdk import aws_iam as iam, aws_lambda as lambda_, aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.aws.alb_oidc.infrastructure import MachineRoute, OidcLogin, OidcLoginLoadBalancer
from stacks.aws.api_monitoring.infrastructure import GatewayMetrics, monitor_api
from stacks.aws.authorizer_function.infrastructure import default_metrics_namespace
from stacks.aws.backchannel_logout.infrastructure import BackchannelLogoutEndpoint
from stacks.aws.browser_sign_in.infrastructure import BrowserSignIn, CookieKeys
from stacks.aws.checkov import add_provider_function_skips
from stacks.aws.cognito_issuer.infrastructure import (CognitoIssuer, FederatedProviderSpec, ServiceClientSpec,
                                                      SpaClientSpec, WebClientSpec)
from stacks.aws.echo_backend.infrastructure import EchoBackend
from stacks.aws.eks_front_door.infrastructure import HttpApiVpcLinkFrontDoor
from stacks.aws.eks_in_cluster.infrastructure import ForwardAuthTableAccess, InClusterFrontDoor, physical_name
from stacks.aws.github_oidc.infrastructure import GithubActionsRole
from stacks.aws.http_api.infrastructure import AuthgateHttpApi
from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings
from stacks.aws.network import flow_logged_vpc
from stacks.aws.rest_api.infrastructure import AuthgateRestApi
from stacks.aws.revocation_table.infrastructure import RevocationTable
from stacks.aws.route_plan import ApiPlan
from stacks.aws.websocket_api.infrastructure import AuthgateWebSocketApi, WebSocketEchoBackend, WebSocketPlan
from stacks.aws.workload_identity.infrastructure import ClusterOidcProvider, IrsaRole, PodIdentityRole


class AuthgateStack(Stack):
    """Every authgate stack: CDK's own provider functions carry their checkov skips with reasons."""

    def __init__(self, scope: Construct, id_: str, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        add_provider_function_skips(self)


class CognitoIssuerStack(AuthgateStack):
    """A Cognito user pool issuing tokens for one API's scopes, with the policy's SPA and service clients."""

    def __init__(self, scope: Construct, id_: str, *, resource_server_identifier: str, scopes: dict[str, str],
                 domain_prefix: str, spa_clients: Sequence[SpaClientSpec], service_clients: Sequence[ServiceClientSpec],
                 web_clients: Sequence[WebClientSpec] = (), federated_providers: Sequence[FederatedProviderSpec] = (),
                 **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self.issuer = CognitoIssuer(self, "Issuer", resource_server_identifier=resource_server_identifier,
                                    scopes=scopes, domain_prefix=domain_prefix, spa_clients=spa_clients,
                                    service_clients=service_clients, web_clients=web_clients,
                                    federated_providers=federated_providers)


class RevocationStack(AuthgateStack):
    """The stage's revocation table, shared by every API stack's authorizer and the back-channel logout endpoint: a
    logout recorded once is seen by the HTTP API, the REST API and the EKS front door alike."""

    def __init__(self, scope: Construct, id_: str, *, table_name: str | None = None, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self.revocation = RevocationTable(self, "Revocation", table_name=table_name)


@dataclass(frozen=True)
class WebSignIn:
    """Browser sign-in on an HTTP API: the web client's token handler configuration (render_token_handler) and the
    Cognito client it signs in with."""
    config: Mapping[str, Any]
    client_id: str
    client_secret: secretsmanager.ISecret


class HttpApiStack(AuthgateStack):
    """One API of the policy as an HTTP API; to backend_url if given, else to the echo backend. With `web`, the token
    handler answers the web client's auth path and cookie routes are authorized from the session cookie. When an
    issuer of the API lists revocation.logout_audiences, the back-channel logout endpoint answers
    POST /backchannel-logout and writes to `revocation_table` (the stage's; one is made here when none is given)."""

    def __init__(self, scope: Construct, id_: str, *, plan: ApiPlan, authorizer_code: lambda_.Code,
                 route_table_path: str, shortest_token_lifetime: Duration, backend_url: str | None = None,
                 alarm_topic_arn: str | None = None, web: WebSignIn | None = None,
                 revocation_table: RevocationTable | None = None, mtls_domain: MtlsDomainSettings | None = None,
                 **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        cookie_keys = CookieKeys(self, "CookieKeys", description=f"session cookie keys of {web.config['origin']}") \
            if web is not None else None
        if backend_url:
            integration = integ.HttpUrlIntegration("Backend", backend_url)
        else:
            self.echo = EchoBackend(self, "Echo")
            integration = integ.HttpLambdaIntegration("Backend", self.echo.function)
        self.http_api = AuthgateHttpApi(self, "HttpApi", plan=plan, integration=integration,
                                        authorizer_code=authorizer_code, route_table_path=route_table_path,
                                        shortest_token_lifetime=shortest_token_lifetime, cookie_keys=cookie_keys,
                                        web_origin=web.config["origin"] if web is not None else None,
                                        revocation_table=revocation_table if plan.needs_shared_store else None,
                                        mtls_domain=mtls_domain)
        if web is not None:
            self.browser_sign_in = BrowserSignIn(self, "BrowserSignIn", http_api=self.http_api.api,
                                                 code=authorizer_code, config=web.config, client_id=web.client_id,
                                                 client_secret=web.client_secret, cookie_keys=cookie_keys)
        self.backchannel_logout: BackchannelLogoutEndpoint | None = None
        if plan.logout_issuers:
            table = revocation_table or self.http_api.revocation_table or RevocationTable(self, "RevocationTable")
            self.backchannel_logout = BackchannelLogoutEndpoint(
                self, "BackchannelLogout", http_api=self.http_api.api, code=authorizer_code,
                route_table_path=route_table_path, api_name=plan.name, revocation_table=table,
                route_keys=tuple(route.route_key for route in plan.routes))
        self.monitoring = monitor_api(self, api_name=plan.name, gateway=GatewayMetrics.of_api(self.http_api.api),
                                      authorizer_kind="http_api", authorizer=self.http_api.authorizer_function,
                                      alarm_topic_arn=alarm_topic_arn)
        if self.backchannel_logout is not None:
            self.monitoring.watch_logout_endpoint(self.backchannel_logout)


class RestApiStack(AuthgateStack):
    """One API of the policy as a REST API with the Lambda authorizer and WAF; to the echo backend or backend_url."""

    def __init__(self, scope: Construct, id_: str, *, plan: ApiPlan, authorizer_code: lambda_.Code,
                 route_table_path: str, shortest_token_lifetime: Duration, backend_url: str | None = None,
                 authorizer_type: str = "request", alarm_topic_arn: str | None = None,
                 revocation_table: RevocationTable | None = None, mtls_domain: MtlsDomainSettings | None = None,
                 **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        if backend_url:
            integration: apigw.Integration = apigw.HttpIntegration(backend_url, proxy=True, http_method="ANY")
        else:
            self.echo = EchoBackend(self, "Echo")
            integration = apigw.LambdaIntegration(self.echo.function)
        self.rest_api = AuthgateRestApi(self, "RestApi", plan=plan, integration=integration,
                                        authorizer_code=authorizer_code, route_table_path=route_table_path,
                                        shortest_token_lifetime=shortest_token_lifetime,
                                        authorizer_type=authorizer_type, revocation_table=revocation_table,
                                        mtls_domain=mtls_domain)
        self.monitoring = monitor_api(self, api_name=plan.name, gateway=GatewayMetrics.of_api(self.rest_api.api),
                                      authorizer_kind="rest", authorizer=self.rest_api.authorizer_function,
                                      alarm_topic_arn=alarm_topic_arn)


class WebSocketApiStack(AuthgateStack):
    """One WebSocket API of the policy, its $connect guarded by the Lambda authorizer; messages to the echo backend
    unless a backend function is given."""

    def __init__(self, scope: Construct, id_: str, *, plan: WebSocketPlan, authorizer_code: lambda_.Code,
                 route_table_path: str, token_source: str = "query", query_param: str = "access_token",
                 backend_function: lambda_.IFunction | None = None, alarm_topic_arn: str | None = None,
                 **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        # The echo backend answers each message; a backend of your own decides for itself (management API).
        echo_answers = backend_function is None
        if backend_function is None:
            self.echo = WebSocketEchoBackend(self, "Echo")
            backend_function = self.echo.function
        integration = integ.WebSocketLambdaIntegration("Backend", backend_function)
        self.websocket_api = AuthgateWebSocketApi(
            self, "WebSocketApi", plan=plan, integration=integration, authorizer_code=authorizer_code,
            route_table_path=route_table_path, token_source=token_source, query_param=query_param,
            two_way_messages=echo_answers)
        self.monitoring = monitor_api(
            self, api_name=plan.name, gateway=GatewayMetrics.of_websocket_api(self.websocket_api.api),
            authorizer_kind="websocket", authorizer=self.websocket_api.authorizer_function,
            alarm_topic_arn=alarm_topic_arn)


class OidcLoadBalancerStack(AuthgateStack):
    """A VPC and an internet-facing ALB that signs users in with OIDC (and verifies JWTs on machine paths)."""

    def __init__(self, scope: Construct, id_: str, *, certificate_arn: str, login: OidcLogin,
                 machine_routes: Sequence[MachineRoute] = (), **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self.vpc = flow_logged_vpc(self, "Vpc")
        self.load_balancer = OidcLoginLoadBalancer(self, "Alb", name="authgate", vpc=self.vpc,
                                                   certificate_arn=certificate_arn, login=login,
                                                   machine_routes=machine_routes)


class EksFrontDoorStack(AuthgateStack):
    """A VPC with an internal ALB for the cluster, reached only through an HTTP API + VPC link."""

    def __init__(self, scope: Construct, id_: str, *, plan: ApiPlan, authorizer_code: lambda_.Code,
                 route_table_path: str, shortest_token_lifetime: Duration, alarm_topic_arn: str | None = None,
                 revocation_table: RevocationTable | None = None, mtls_domain: MtlsDomainSettings | None = None,
                 **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self.vpc = flow_logged_vpc(self, "Vpc")
        # Its own metrics namespace: the HttpApi stack's authorizer writes the same ApiName and AuthorizerKind.
        self.front_door = HttpApiVpcLinkFrontDoor(self, "FrontDoor", vpc=self.vpc, plan=plan,
                                                  authorizer_code=authorizer_code, route_table_path=route_table_path,
                                                  shortest_token_lifetime=shortest_token_lifetime,
                                                  metrics_namespace=default_metrics_namespace(self, "eks-front-door"),
                                                  revocation_table=revocation_table, mtls_domain=mtls_domain)
        self.monitoring = monitor_api(
            self, api_name=plan.name, gateway=GatewayMetrics.of_api(self.front_door.http_api.api),
            authorizer_kind="http_api", authorizer=self.front_door.http_api.authorizer_function,
            alarm_topic_arn=alarm_topic_arn)


class EksInClusterFrontDoorStack(AuthgateStack):
    """A VPC and an internet-facing ALB in front of the cluster's own gateway, which asks the forward-auth service."""

    def __init__(self, scope: Construct, id_: str, *, policy, api: str, settings, revocation_table=None,
                 cluster: Any = None, **kwargs) -> None:
        """revocation_table  the stage's table (fixed physical name), for APIs whose decisions need state every
                          replica shares; the forward-auth pods reach it through an IRSA role of `cluster`
                          (the EksSettings: its OIDC issuer and provider)."""
        super().__init__(scope, id_, **kwargs)
        self.vpc = flow_logged_vpc(self, "Vpc")
        self.table_access = None
        if revocation_table is not None:
            self.table_access = ForwardAuthTableAccess(
                self, "ForwardAuthIdentity", table=revocation_table, oidc_issuer=cluster.oidc_issuer,
                oidc_provider_arn=cluster.oidc_provider_arn, namespace=settings.namespace,
                role_name=physical_name("authgate", Stage.of(self).stage_name or "app", api, "forward-auth",
                                        limit=64))
        self.front_door = InClusterFrontDoor(self, "FrontDoor", vpc=self.vpc, policy=policy, api=api,
                                             settings=settings, shared_store=self.table_access)


class WorkloadIdentityStack(AuthgateStack):
    """IRSA roles (and Pod Identity roles) for service accounts of an existing EKS cluster."""

    def __init__(self, scope: Construct, id_: str, *, cluster_name: str, oidc_issuer: str,
                 irsa_service_accounts: Sequence[tuple[str, str]] = (),
                 pod_identity_service_accounts: Sequence[tuple[str, str]] = (),
                 oidc_provider_arn: str | None = None, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self.irsa_roles: dict[str, IrsaRole] = {}
        self.pod_identity_roles: dict[str, PodIdentityRole] = {}
        if irsa_service_accounts:
            self.provider = ClusterOidcProvider(self, "ClusterOidc", issuer_url=oidc_issuer,
                                                provider_arn=oidc_provider_arn)
            for namespace, name in irsa_service_accounts:
                self.irsa_roles[f"{namespace}/{name}"] = IrsaRole(
                    self, f"Irsa-{namespace}-{name}", provider=self.provider, namespace=namespace,
                    service_account=name)
        for namespace, name in pod_identity_service_accounts:
            self.pod_identity_roles[f"{namespace}/{name}"] = PodIdentityRole(
                self, f"PodIdentity-{namespace}-{name}", cluster_name=cluster_name, namespace=namespace,
                service_account=name)


class GithubOidcStack(AuthgateStack):
    """GitHub Actions OIDC provider plus a role one repository and ref may assume."""

    def __init__(self, scope: Construct, id_: str, *, repository: str, ref: str | None = None,
                 environment: str | None = None, provider_arn: str | None = None,
                 managed_policy_arns: Sequence[str] = (), **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        policies = [iam.ManagedPolicy.from_managed_policy_arn(self, f"Policy{i}", arn)
                    for i, arn in enumerate(managed_policy_arns)]
        self.github = GithubActionsRole(self, "GithubActions", repository=repository, ref=ref,
                                        environment=environment, provider_arn=provider_arn,
                                        managed_policies=policies)


def secret_value(secret_name: str, *, json_field: str | None = None) -> SecretValue:
    """A Secrets Manager dynamic reference: resolved by CloudFormation at deploy time, never in the template."""
    return SecretValue.secrets_manager(secret_name, json_field=json_field)
