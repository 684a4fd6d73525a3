"""The CDK app: `cdk synth` / `cdk deploy` (cdk.json runs `python -m stacks.aws.app`). Everything comes from context."""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from aws_cdk import App, Duration, Environment, Stage, Validations

from stacks.aws import authorizer_asset as asset_builder
from stacks.aws.authorizer_code import ROUTE_TABLE_FILE, prebuilt_authorizer_code
from stacks.aws.policy_inputs import (alb_login, alb_machine_routes, cognito_clients, cognito_federation,
                                      cognito_scopes)
from stacks.aws.eks_in_cluster.infrastructure import physical_name
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings, mtls_route_keys
from stacks.aws.route_plan import ApiPlan
from stacks.aws.settings import MTLS_DOMAIN_EXAMPLE, AppSettings
from stacks.aws.stacks import (CognitoIssuerStack, EksFrontDoorStack, EksInClusterFrontDoorStack, GithubOidcStack,
                               HttpApiStack, OidcLoadBalancerStack, RestApiStack, RevocationStack, WebSignIn,
                               WebSocketApiStack, WorkloadIdentityStack, secret_value)
from stacks.aws.websocket_api.infrastructure import WebSocketPlan


def build(app: App, settings: AppSettings) -> ApiPlan:
    """Add one Stage per configured stage name, each holding the stacks the context asks for."""
    from stacks.policy import load_policy
    from stacks.policy.render.route_table import render_route_table

    policy = load_policy(settings.policy)
    for warning in policy.warnings:
        print(f"authgate: warning: {warning}", file=sys.stderr)
    if settings.api not in policy.apis:
        raise UnsupportedConfiguration(f"authgate:api {settings.api!r} is not in {settings.policy}; it defines "
                                       f"{', '.join(policy.apis)}")
    table = render_route_table(policy, apis=[settings.api])
    plan = ApiPlan.from_route_table(table, settings.api)
    lifetime = Duration.seconds(shortest_token_lifetime_seconds(settings, plan))
    staging = Path(tempfile.gettempdir()) / "authgate-authorizer-assets"

    def authorizer_code(for_table=table):
        if settings.authorizer_asset_dir:
            return prebuilt_authorizer_code(settings.authorizer_asset_dir, for_table, staging_root=staging,
                                            architecture="arm64")
        # Built locally without Docker (pip --platform) for the functions' arm64 architecture; wheels are cached.
        return asset_builder.authorizer_code(for_table, architecture="arm64")

    websocket_plan = None
    if settings.websocket:
        if settings.websocket.api not in policy.apis:
            raise UnsupportedConfiguration(f"authgate:websocket.api {settings.websocket.api!r} is not in "
                                           f"{settings.policy}; it defines {', '.join(policy.apis)}")
        # Its own table: the WebSocket authorizer trusts only the issuers its $connect names.
        websocket_plan = WebSocketPlan.from_route_table(
            render_route_table(policy, apis=[settings.websocket.api]), settings.websocket.api)

    api_props = dict(plan=plan, route_table_path=ROUTE_TABLE_FILE, shortest_token_lifetime=lifetime)
    uses_mtls = needs_mtls_domain(settings, plan)
    env = Environment(account=settings.account, region=settings.region) if settings.account else None
    for stage_name in settings.stages:
        stage = Stage(app, stage_name, env=env)

        def mtls_domain(stack_id: str, stage_name: str = stage_name) -> MtlsDomainSettings | None:
            return settings.mtls_domain.for_stack(stack_id, stage_name) if uses_mtls else None

        # One table per stage: a logout recorded by the endpoint is seen by every API stack's authorizer. In-cluster
        # replicas name it in manifests written at synth, so it then has a fixed name.
        in_cluster_reads_table = plan.needs_shared_store and settings.eks is not None \
            and settings.eks.front_door == "in-cluster"
        shared_table = RevocationStack(
            stage, "Revocation", table_name=physical_name("authgate", stage_name, plan.name, "revocation", limit=255)
            if in_cluster_reads_table else None).revocation if plan.needs_shared_store or plan.logout_issuers else None
        issuer_stack = None
        if settings.cognito and settings.cognito.issuer not in plan.issuers:
            # cdk.json turns the Cognito issuer on for the default API; another API whose routes do not accept
            # that issuer gets no user pool it would never use.
            if stage_name == settings.stages[0]:
                print(f"authgate: no Cognito issuer stack: API {settings.api!r}'s routes do not accept issuer "
                      f"{settings.cognito.issuer!r} (authgate:cognito.issuer)", file=sys.stderr)
        elif settings.cognito:
            identifier, scopes = cognito_scopes(policy, plan, settings.cognito.issuer)
            spa, service, web_clients = cognito_clients(policy, settings.cognito.issuer)
            issuer_stack = CognitoIssuerStack(
                stage, "Issuer", resource_server_identifier=identifier, scopes=scopes,
                domain_prefix=settings.cognito.domain_prefix.replace("{stage}", stage_name), spa_clients=spa,
                service_clients=service, web_clients=web_clients,
                federated_providers=cognito_federation(policy, settings.cognito.issuer))
        HttpApiStack(stage, "HttpApi", authorizer_code=authorizer_code(), backend_url=settings.backend_url,
                     alarm_topic_arn=settings.alarm_topic_arn, web=web_sign_in(settings, policy, issuer_stack),
                     revocation_table=shared_table, mtls_domain=mtls_domain("HttpApi"), **api_props)
        cookie_routes = [r.route_key for r in plan.routes if r.token_source == "cookie"]
        if cookie_routes:
            if stage_name == settings.stages[0]:
                print(f"authgate: no REST API stack: API {settings.api!r} has cookie routes "
                      f"({', '.join(cookie_routes)}), which only the HTTP API with authgate:web serves", file=sys.stderr)
        else:
            RestApiStack(stage, "RestApi", authorizer_code=authorizer_code(), backend_url=settings.backend_url,
                         authorizer_type=settings.rest_authorizer_type, alarm_topic_arn=settings.alarm_topic_arn,
                         revocation_table=shared_table if plan.needs_shared_store else None,
                         mtls_domain=mtls_domain("RestApi"), **api_props)
        if websocket_plan is not None:
            WebSocketApiStack(stage, "WebSocketApi", plan=websocket_plan, route_table_path=ROUTE_TABLE_FILE,
                              authorizer_code=authorizer_code(websocket_plan.table),
                              token_source=settings.websocket.token_source,
                              query_param=settings.websocket.query_param,
                              alarm_topic_arn=settings.alarm_topic_arn)
        if settings.alb:
            if settings.alb.issuer not in plan.issuers:
                raise UnsupportedConfiguration(f"authgate:alb.issuer {settings.alb.issuer!r} is not an issuer the "
                                               f"API's routes use; use one of {', '.join(sorted(plan.issuers))}")
            issuer = plan.issuers[settings.alb.issuer]
            secret = secret_value(settings.alb.client_secret_name, json_field=settings.alb.client_secret_json_field)
            # ALB access logging needs the region (its log-delivery principal differs by region); the
            # certificate is regional, so its ARN says where this stack must live.
            OidcLoadBalancerStack(stage, "Alb", certificate_arn=settings.alb.certificate_arn,
                                  env=regional_env(settings, region_from_arn(settings.alb.certificate_arn)),
                                  login=alb_login(settings.alb, issuer, secret),
                                  machine_routes=alb_machine_routes(settings.alb, issuer))
        if settings.eks:
            in_cluster_stack = None
            if settings.eks.front_door == "http-api-vpc-link":
                if plan.needs_shared_store and not settings.region:
                    # The front door lives in the cluster's region; the stage's table is read across stacks, which
                    # CloudFormation allows only within one environment.
                    raise UnsupportedConfiguration(
                        f"API {plan.name!r} has routes that read the shared revocation table (freshness: denylist or "
                        f"proof: dpop) and authgate:eks.front_door is http-api-vpc-link: pin authgate:account and "
                        f"authgate:region (the cluster's region) so the EksFrontDoor stack and the Revocation stack "
                        f"share one environment")
                EksFrontDoorStack(stage, "EksFrontDoor", authorizer_code=authorizer_code(),
                                  env=regional_env(settings, region_from_eks_issuer(settings.eks.oidc_issuer)),
                                  alarm_topic_arn=settings.alarm_topic_arn,
                                  revocation_table=shared_table if plan.needs_shared_store else None,
                                  mtls_domain=mtls_domain("EksFrontDoor"), **api_props)
            elif settings.eks.front_door == "in-cluster":
                in_cluster = settings.eks.in_cluster
                if in_cluster_reads_table and not (settings.account and settings.region):
                    raise UnsupportedConfiguration(
                        f"API {plan.name!r} needs state every forward-auth replica shares (freshness: denylist or "
                        f"proof: dpop routes, or an issuer that binds tokens) and authgate:eks.front_door is "
                        f"in-cluster: pin authgate:account and authgate:region (the table's), so the manifests written "
                        f"at synth can name the stage's revocation table and the pods' IRSA role")
                in_cluster_stack = EksInClusterFrontDoorStack(
                    stage, "EksInCluster", policy=policy, api=settings.api, settings=in_cluster,
                    revocation_table=shared_table if in_cluster_reads_table else None, cluster=settings.eks,
                    env=regional_env(settings, region_from_arn(in_cluster.certificate_arn)))
            elif settings.eks.front_door == "alb-oidc" and not settings.alb:
                raise UnsupportedConfiguration("authgate:eks.front_door alb-oidc is the Alb stack: set authgate:alb")
            if settings.eks.irsa or settings.eks.pod_identity:
                workload_stack = WorkloadIdentityStack(
                    stage, "WorkloadIdentity", cluster_name=settings.eks.cluster_name,
                    oidc_issuer=settings.eks.oidc_issuer, oidc_provider_arn=settings.eks.oidc_provider_arn,
                    irsa_service_accounts=settings.eks.irsa, pod_identity_service_accounts=settings.eks.pod_identity)
                if in_cluster_stack is not None and in_cluster_stack.table_access is not None \
                        and settings.eks.irsa and not settings.eks.oidc_provider_arn:
                    # The forward-auth role trusts the cluster's OIDC provider, which that stack creates.
                    in_cluster_stack.add_dependency(workload_stack)
        if settings.github:
            GithubOidcStack(stage, "GithubOidc", repository=settings.github.repository, ref=settings.github.ref,
                            environment=settings.github.environment, provider_arn=settings.github.provider_arn,
                            managed_policy_arns=settings.github.managed_policy_arns)
    return plan


def web_sign_in(settings: AppSettings, policy, issuer_stack) -> WebSignIn | None:
    """The token handler's inputs for context authgate:web: the policy's web client, signed in by the Cognito pool."""
    if settings.web is None:
        return None
    from stacks.policy.render.token_handler import render_token_handler
    client = policy.clients.get(settings.web.client)
    if client is None or client.kind != "web":
        raise UnsupportedConfiguration(f"authgate:web.client {settings.web.client!r} must name a kind: web client of "
                                       f"{settings.policy}")
    if issuer_stack is None or settings.cognito.issuer != client.issuer:
        raise UnsupportedConfiguration(f"authgate:web needs authgate:cognito for the web client's issuer "
                                       f"{client.issuer!r}: the pool is where its confidential client is created")
    issuer = issuer_stack.issuer
    return WebSignIn(config=render_token_handler(policy, settings.web.client),
                     client_id=issuer.web_clients[settings.web.client].user_pool_client_id,
                     client_secret=issuer.web_client_secrets[settings.web.client])


def needs_mtls_domain(settings: AppSettings, plan: ApiPlan) -> bool:
    """Whether the API stacks get their custom domains with mutual TLS: refuses mtls routes without
    authgate:mtls_domain, and says so when the key is set for an API that has none."""
    routes = mtls_route_keys(plan.api)
    if routes and settings.mtls_domain is None:
        raise UnsupportedConfiguration(
            f"API {plan.name!r}: route(s) {', '.join(routes)} have proof: mtls, which needs custom domains with mutual "
            f"TLS (API Gateway passes the client certificate only there, and the execute-api endpoint is switched "
            f"off); set context authgate:mtls_domain, e.g. -c 'authgate:mtls_domain={MTLS_DOMAIN_EXAMPLE}'")
    if settings.mtls_domain is not None and not routes:
        print(f"authgate: no mutual TLS domains: API {plan.name!r} has no proof: mtls routes "
              f"(authgate:mtls_domain is not used)", file=sys.stderr)
    return bool(routes)


def shortest_token_lifetime_seconds(settings: AppSettings, plan: ApiPlan) -> int:
    """The configured lifetime, lowered by any issuer that caps token age: authorizer caches never outlive it."""
    caps = [issuer.max_token_age_seconds for issuer in plan.issuers.values() if issuer.max_token_age_seconds]
    return min([settings.shortest_token_lifetime_minutes * 60, *caps])


def region_from_arn(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", parts[3]):
        raise UnsupportedConfiguration(f"{arn!r} is not a regional ARN (arn:aws:acm:<region>:<account>:...)")
    return parts[3]


def region_from_eks_issuer(issuer: str) -> str:
    match = re.fullmatch(r"https://oidc\.eks\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?/id/[A-Za-z0-9]+",
                         issuer)
    if not match:
        raise UnsupportedConfiguration(f"{issuer!r} is not an EKS OIDC issuer "
                                       "(https://oidc.eks.<region>.amazonaws.com/id/<id>)")
    return match.group(1)


def regional_env(settings: AppSettings, region: str) -> Environment:
    """A stack that must know its region: the pinned environment, which must agree, or that region alone."""
    if settings.region and settings.region != region:
        raise UnsupportedConfiguration(f"authgate:region is {settings.region} but a resource of this stack lives in "
                                       f"{region}; a stack and its load balancer certificate or cluster share a region")
    return Environment(account=settings.account, region=region)


def add_nag_checks(app: App) -> None:
    from cdk_nag import AwsSolutionsChecks
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def main() -> int:
    from stacks.policy import PolicyError

    app = App()
    try:
        settings = AppSettings.from_context(app.node.try_get_context)
        build(app, settings)
    except (PolicyError, UnsupportedConfiguration) as exc:
        # `cdk synth` shows the app's stderr: the error itself (file:line: field: why), not a traceback over it.
        print(f"authgate: {exc}", file=sys.stderr)
        return 2
    add_nag_checks(app)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
