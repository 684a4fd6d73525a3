"""What the AWS stacks take from the auth policy beyond the route table: Cognito scopes and clients, ALB login."""
from __future__ import annotations

from lambdas.validation.profiles import BUILT_IN_SCOPES
from stacks.aws.alb_oidc.infrastructure import MachineRoute, OidcLogin
from stacks.aws.cognito_issuer.infrastructure import (FederatedProviderSpec, ServiceClientSpec, SpaClientSpec,
                                                      WebClientSpec)
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.route_plan import ApiPlan, IssuerPlan
from stacks.aws.settings import AlbSettings


def cognito_scopes(policy, plan: ApiPlan, issuer_name: str) -> tuple[str, dict[str, str]]:
    """The resource-server identifier and scopes a Cognito pool needs for the routes (and clients) of one issuer."""
    scopes: set[str] = set()
    for route_key, route in policy.apis[plan.name].routes.items():
        if issuer_name in route.issuers:
            scopes.update(route.scopes, route.scopes_all)
    for client in policy.clients.values():
        if client.issuer == issuer_name:
            scopes.update(s for s in client.scopes if s not in BUILT_IN_SCOPES)
    if not scopes:
        raise UnsupportedConfiguration(f"no route of API {plan.name!r} or client requires a scope of issuer "
                                       f"{issuer_name!r}; a Cognito resource server needs at least one")
    identifiers = {scope.split("/", 1)[0] for scope in scopes if "/" in scope}
    if len(identifiers) != 1 or any("/" not in scope for scope in scopes):
        raise UnsupportedConfiguration(
            f"Cognito puts custom scopes in access tokens as '<resource server>/<scope>'; the scopes of issuer "
            f"{issuer_name!r} ({', '.join(sorted(scopes))}) must all share one '<resource server>/' prefix")
    return identifiers.pop(), {scope: f"{scope} (authgate policy, API {plan.name})" for scope in sorted(scopes)}


def cognito_clients(policy, issuer_name: str) -> tuple[list[SpaClientSpec], list[ServiceClientSpec],
                                                      list[WebClientSpec]]:
    spa, service, web = [], [], []
    for name, client in policy.clients.items():
        if client.issuer != issuer_name:
            continue
        resource_scopes = [s for s in client.scopes if s not in BUILT_IN_SCOPES]
        if client.kind == "spa":
            spa.append(SpaClientSpec(name=name, callback_urls=tuple(client.redirect_uris),
                                     logout_urls=tuple(client.logout_uris), scopes=tuple(resource_scopes)))
        elif client.kind == "web":
            web.append(WebClientSpec(name=name, callback_urls=tuple(client.callback_uris),
                                     logout_urls=tuple(client.logout_uris), scopes=tuple(resource_scopes)))
        else:
            service.append(ServiceClientSpec(name=name, scopes=tuple(resource_scopes)))
    return spa, service, web


def cognito_federation(policy, issuer_name: str) -> list[FederatedProviderSpec]:
    """The external identity providers the policy's Cognito issuer federates."""
    return [FederatedProviderSpec(name=name, kind=spec.kind, client_id=spec.client_id,
                                  client_secret_name=spec.client_secret_name, issuer=spec.issuer,
                                  metadata_url=spec.metadata_url, attributes=dict(spec.attributes))
            for name, spec in policy.issuer(issuer_name).federation.items()]


def alb_login(settings: AlbSettings, issuer: IssuerPlan, client_secret) -> OidcLogin:
    if settings.hosted_domain_url:
        return OidcLogin.cognito(issuer=issuer.issuer, hosted_domain_url=settings.hosted_domain_url,
                                 client_id=settings.client_id, client_secret=client_secret, scope=settings.scope)
    missing = [f for f in ("authorization_endpoint", "token_endpoint", "user_info_endpoint")
               if not getattr(settings, f)]
    if missing:
        raise UnsupportedConfiguration(
            f"authgate:alb needs hosted_domain_url (Cognito) or {', '.join(missing)} (from the issuer's "
            "/.well-known/openid-configuration)")
    return OidcLogin(issuer=issuer.issuer, authorization_endpoint=settings.authorization_endpoint,
                     token_endpoint=settings.token_endpoint, user_info_endpoint=settings.user_info_endpoint,
                     client_id=settings.client_id, client_secret=client_secret, scope=settings.scope,
                     profile=issuer.profile)


def alb_machine_routes(settings: AlbSettings, issuer: IssuerPlan) -> list[MachineRoute]:
    if not settings.machine_paths:
        return []
    return [MachineRoute(path_patterns=settings.machine_paths, issuer=issuer.issuer,
                         jwks_endpoint=issuer.jwks_endpoint, audiences=issuer.audiences,
                         audience_claim="client_id" if issuer.profile == "cognito" else "aud",
                         scopes=settings.machine_scopes)]
