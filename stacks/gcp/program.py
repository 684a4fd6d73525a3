"""The GCP stack: API Gateway for one policy API (+ optional Identity Platform, IAP web app, GitHub federation)."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.api_gateway import PLACEHOLDER_BACKEND_URL, ApiGateway, ApiGatewayArgs
from stacks.gcp.audit_alerts import AuditLogAlerts, AuditLogAlertsArgs
from stacks.gcp.github_federation import GithubActionsFederation, GithubActionsFederationArgs
from stacks.gcp.iap import IapWebBackend, IapWebBackendArgs
from stacks.gcp.identity_platform import IdentityPlatformIssuer, IdentityPlatformIssuerArgs, OidcFederationProvider
from stacks.pulumi_program.settings import (THRESHOLD_FIELDS, ConfigSource, StackConfigError, alarm_thresholds,
                                            checked, field_of, gcp_id_from_name, unknown_fields)

# The Google APIs the components call; enabling them in the stack makes a fresh project deployable in one `up`.
REQUIRED_SERVICES = ("apigateway.googleapis.com", "servicemanagement.googleapis.com",
                     "servicecontrol.googleapis.com", "run.googleapis.com", "iam.googleapis.com")
OPTIONAL_SERVICES = {"identityPlatform": ("identitytoolkit.googleapis.com",),
                     "iap": ("iap.googleapis.com", "compute.googleapis.com"),
                     "github": ("iamcredentials.googleapis.com", "sts.googleapis.com"),
                     "monitoring": ("logging.googleapis.com", "monitoring.googleapis.com")}


def _identity_platform(source: ConfigSource, value: dict[str, Any], project: str) -> IdentityPlatformIssuerArgs:
    key = "authgate:identityPlatform"
    unknown_fields(value, key, ("authorizedDomains", "emailSignIn", "phoneSignIn", "mfa", "oidcProviders"))
    providers = []
    for index, raw in enumerate(value.get("oidcProviders") or []):
        item_key = f"{key}.oidcProviders[{index}]"
        if not isinstance(raw, dict):
            raise StackConfigError(item_key, "must be a mapping", "oidc.corp", set_key=f"{item_key}.providerId")
        unknown_fields(raw, item_key, ("providerId", "displayName", "issuer", "clientId"))
        provider_id = field_of(raw, item_key, "providerId", str, example="oidc.corp")
        # Secrets never sit in structured config: each provider's secret is its own secret key.
        secret_key = f"authgate:oidcClientSecret-{provider_id.removeprefix('oidc.')}"
        providers.append(checked(item_key, lambda: OidcFederationProvider(
            provider_id=provider_id,
            display_name=field_of(raw, item_key, "displayName", str, example="'Corp SSO'"),
            issuer=field_of(raw, item_key, "issuer", str, example="https://corp.okta.com"),
            client_id=field_of(raw, item_key, "clientId", str, example="0oa1b2c3"),
            client_secret=source.secret(secret_key),
        )))
    return checked(key, lambda: IdentityPlatformIssuerArgs(
        project=project,
        authorized_domains=field_of(value, key, "authorizedDomains", list, example="app.example.com"),
        email_sign_in=field_of(value, key, "emailSignIn", bool, example="true", required=False, default=True),
        phone_sign_in=field_of(value, key, "phoneSignIn", bool, example="false", required=False, default=False),
        mfa_state=field_of(value, key, "mfa", str, example="ENABLED", required=False, default="ENABLED"),
        oidc_providers=providers,
    ))


def _iap(value: dict[str, Any], region: str, project: str) -> IapWebBackendArgs:
    key = "authgate:iap"
    unknown_fields(value, key, ("name", "image", "domains", "members", "rateLimitRequests",
                                "rateLimitIntervalSeconds"))
    return checked(key, lambda: IapWebBackendArgs(
        name_prefix=field_of(value, key, "name", str, example="portal", required=False, default="portal"),
        region=region,
        image=field_of(value, key, "image", str, example="europe-docker.pkg.dev/acme/web/portal:1"),
        domains=field_of(value, key, "domains", list, example="portal.example.com"),
        iap_members=field_of(value, key, "members", list, example="group:staff@example.com"),
        rate_limit_requests=field_of(value, key, "rateLimitRequests", int, example="600", required=False,
                                     default=600),
        rate_limit_interval_seconds=field_of(value, key, "rateLimitIntervalSeconds", int, example="60",
                                             required=False, default=60),
        project=project,
    ))


def _github(value: dict[str, Any], project: str) -> GithubActionsFederationArgs:
    key = "authgate:github"
    unknown_fields(value, key, ("repository", "ref", "repositoryId", "projectRoles"))
    repository_id = value.get("repositoryId")
    return checked(key, lambda: GithubActionsFederationArgs(
        repository=field_of(value, key, "repository", str, example="acme/orders-api"),
        ref=field_of(value, key, "ref", str, example="refs/heads/main", required=False),
        repository_id=None if repository_id is None else str(repository_id),
        project_roles=field_of(value, key, "projectRoles", list, example="roles/run.developer", required=False,
                               default=[]),
        project=project,
    ))


def _monitoring(value: dict[str, Any], api_name: str, project: str) -> AuditLogAlertsArgs:
    key = "authgate:monitoring"
    unknown_fields(value, key, ("notificationChannels", *THRESHOLD_FIELDS))
    thresholds = alarm_thresholds(value, key)
    return checked(key, lambda: AuditLogAlertsArgs(
        api_name=api_name, thresholds=thresholds, project=project,
        notification_channels=field_of(value, key, "notificationChannels", list,
                                       example="projects/acme/notificationChannels/123", required=False,
                                       default=[])))


def build_gcp_stack(source: ConfigSource, policy, api_name: str) -> None:
    from stacks.policy.render.openapi import render_openapi

    project = source.text("gcp:project", example="acme-orders-dev")
    region = source.text("authgate:region", example="europe-west1")
    image = source.text("authgate:backendImage", example="europe-docker.pkg.dev/acme-orders-dev/apps/orders:1.0.0")
    api_id = source.text("authgate:apiId", example=gcp_id_from_name(api_name), required=False,
                         default=gcp_id_from_name(api_name))
    # Render once now, so a policy API Google's gateway cannot enforce fails the preview, not the update, and names
    # the config key to change (ApiGatewayArgs refuses it too, for the component used on its own).
    try:
        render_openapi(policy, api_name, backend_url=PLACEHOLDER_BACKEND_URL)
    except ValueError as exc:
        raise StackConfigError("authgate:api", f"API {api_name!r} cannot be served by GCP API Gateway: {exc}",
                               api_name) from None
    optional = {name: source.object(f"authgate:{name}", example=example) for name, example in (
        ("identityPlatform", '{"authorizedDomains": ["app.example.com"]}'),
        ("iap", '{"image": "...", "domains": ["portal.example.com"], "members": ["group:staff@example.com"]}'),
        ("github", '{"repository": "acme/orders-api", "ref": "refs/heads/main"}'),
        ("monitoring", '{"notificationChannels": ["projects/acme/notificationChannels/123"]}'),
    )}
    # Check every optional section before creating anything.
    identity_args = _identity_platform(source, optional["identityPlatform"], project) \
        if optional["identityPlatform"] is not None else None
    iap_args = _iap(optional["iap"], region, project) if optional["iap"] is not None else None
    github_args = _github(optional["github"], project) if optional["github"] is not None else None
    monitoring_args = (_monitoring(optional["monitoring"], api_name, project)
                       if optional["monitoring"] is not None else None)
    gateway_args = checked("authgate:apiId", lambda: ApiGatewayArgs(
        api_id=api_id, region=region, backend_image=image, project=project,
        openapi_for_backend=lambda url: render_openapi(policy, api_name, backend_url=url)))

    services = list(REQUIRED_SERVICES)
    for name, extra in OPTIONAL_SERVICES.items():
        if optional[name] is not None:
            services.extend(extra)
    enabled = [gcp.projects.Service(f"service-{service.split('.')[0]}", service=service, project=project,
                                    disable_on_destroy=False) for service in services]
    after_services = pulumi.ResourceOptions(depends_on=enabled)

    gateway = ApiGateway(api_id, gateway_args, opts=after_services)
    pulumi.export("gatewayUrl", gateway.gateway_url)
    pulumi.export("gatewayServiceAccount", gateway.service_account.email)
    pulumi.export("backendUrl", gateway.backend.uri)

    if identity_args is not None:
        issuer = IdentityPlatformIssuer("identity-platform", identity_args, opts=after_services)
        pulumi.export("identityPlatformIssuer", issuer.issuer)
        pulumi.export("identityPlatformAudience", issuer.audience)
        pulumi.export("identityPlatformJwksUri", issuer.jwks_uri)
    if iap_args is not None:
        web = IapWebBackend(iap_args.name_prefix, iap_args, opts=after_services)
        pulumi.export("iapIpAddress", web.address.address)
    if monitoring_args is not None:
        alerts = AuditLogAlerts(f"{api_id}-alerts", monitoring_args, opts=after_services)
        pulumi.export("decisionsMetric", alerts.decisions.name)
    if github_args is not None:
        federation = GithubActionsFederation("github-actions", github_args, opts=after_services)
        pulumi.export("githubWorkloadIdentityProvider", federation.provider.name)
        pulumi.export("githubServiceAccount", federation.service_account.email)
