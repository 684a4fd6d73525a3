"""Entra ID app registrations: the API (scopes, app roles, v2 tokens), a SPA client (PKCE) and a daemon client."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_azuread as azuread

# Scope and role ids must stay the same from one `pulumi up` to the next (clients and assignments refer to them),
# so they are derived from the API name and the value rather than generated at random.
_ID_NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-5c6d-9e0f-a1b2c3d4e5f6")
# Entra's allowed characters for scope and app role values; no spaces, and a value may not start with '.'.
_PERMISSION_VALUE = re.compile(r"[A-Za-z0-9:!#$%&'()*+,\-./;=?@\[\]^_{}~]{1,120}")
_AUTHORITIES = ("entra", "external_id")
_SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs")


def permission_id(api_name: str, kind: str, value: str) -> str:
    """The stable id of a scope ("scope") or app role ("role") named value on the API api_name."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{api_name}/{kind}/{value}"))


def v2_issuer(tenant_id: str, authority: str = "entra") -> str:
    """The `iss` of v2.0 tokens: Entra ID workforce tenants, or Entra External ID (ciamlogin.com) tenants."""
    if authority == "external_id":
        return f"https://{tenant_id}.ciamlogin.com/{tenant_id}/v2.0"
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def _check_values(values: Sequence[str], field_name: str) -> tuple[str, ...]:
    values = tuple(values)
    for value in values:
        if not isinstance(value, str) or not _PERMISSION_VALUE.fullmatch(value) or value.startswith("."):
            raise ValueError(
                f"{field_name} entry {value!r} cannot be an Entra permission value: use up to 120 letters, digits "
                "and :!#$%&'()*+,-./;=?@[]^_{{}}~ with no spaces, not starting with '.' (e.g. 'orders.read')")
    if len(set(values)) != len(values):
        raise ValueError(f"{field_name} lists a value twice: {list(values)}")
    return values


def check_redirect_uris(uris: Sequence[str], field_name: str) -> tuple[str, ...]:
    uris = tuple(uris)
    for uri in uris:
        loopback = uri.startswith(("http://localhost", "http://127.0.0.1"))
        if not (uri.startswith("https://") or loopback) or "*" in uri or "#" in uri:
            raise ValueError(f"{field_name} entry {uri!r} must be an exact https:// URL (http:// only for localhost), "
                             "without wildcards or fragments")
    return uris


@dataclass(frozen=True, kw_only=True)
class EntraApiArgs:
    """The API's app registration: what callers may ask for (scopes for users, app roles for users and daemons)."""

    api_name: str
    display_name: str
    scopes: Sequence[str] = field(default_factory=tuple)
    app_roles: Sequence[str] = field(default_factory=tuple)
    identifier_uri: str | None = None  # default api://<client id>, which Entra always accepts
    sign_in_audience: str = "AzureADMyOrg"
    authority: str = "entra"
    tenant_id: pulumi.Input[str] | None = None  # for the issuer output; default: the tenant Pulumi signs in to

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,62}", self.api_name):
            raise ValueError(f"api_name must be a policy API name such as 'billing'; got {self.api_name!r}")
        object.__setattr__(self, "scopes", _check_values(self.scopes, "scopes"))
        object.__setattr__(self, "app_roles", _check_values(self.app_roles, "app_roles"))
        if not self.scopes and not self.app_roles:
            raise ValueError("an API registration needs at least one scope or app role for callers to request")
        if self.identifier_uri is not None and not re.fullmatch(r"(api|https)://[^\s*]+", self.identifier_uri):
            raise ValueError(f"identifier_uri must look like 'api://billing' or 'https://contoso.com/billing' "
                             f"with no wildcard; got {self.identifier_uri!r}")
        if self.sign_in_audience not in _SIGN_IN_AUDIENCES:
            raise ValueError(f"sign_in_audience must be one of {', '.join(_SIGN_IN_AUDIENCES)} (personal Microsoft "
                             f"accounts cannot get v2 tokens for this API's roles); got {self.sign_in_audience!r}")
        if self.authority not in _AUTHORITIES:
            raise ValueError(f"authority must be 'entra' (workforce) or 'external_id' (customers); "
                             f"Azure AD B2C is closed to new customers; got {self.authority!r}")


class EntraApi(pulumi.ComponentResource):
    """API app registration with v2 access tokens, its identifier URI, and its service principal."""

    application: azuread.Application
    service_principal: azuread.ServicePrincipal
    scope_ids: dict[str, str]
    role_ids: dict[str, str]
    client_id: pulumi.Output[str]
    identifier_uri: pulumi.Output[str]
    issuer: pulumi.Output[str]

    def __init__(self, name: str, args: EntraApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:EntraApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.scope_ids = {v: permission_id(args.api_name, "scope", v) for v in args.scopes}
        self.role_ids = {v: permission_id(args.api_name, "role", v) for v in args.app_roles}

        self.application = azuread.Application(
            f"{name}-app",
            display_name=args.display_name,
            sign_in_audience=args.sign_in_audience,
            api=azuread.ApplicationApiArgs(
                # v2 tokens: iss is .../v2.0 and aud is the client id, which is what the policy's issuer expects.
                requested_access_token_version=2,
                oauth2_permission_scopes=[azuread.ApplicationApiOauth2PermissionScopeArgs(
                    id=scope_id, value=value, type="User", enabled=True,
                    admin_consent_display_name=value, admin_consent_description=f"{args.api_name}: {value}",
                    user_consent_display_name=value, user_consent_description=f"{args.api_name}: {value}",
                ) for value, scope_id in self.scope_ids.items()],
            ),
            app_roles=[azuread.ApplicationAppRoleArgs(
                id=role_id, value=value, display_name=value, enabled=True,
                description=f"{args.api_name}: {value}",
                allowed_member_types=["User", "Application"],
            ) for value, role_id in self.role_ids.items()],
            opts=child,
        )
        identifier = args.identifier_uri or self.application.client_id.apply(lambda cid: f"api://{cid}")
        azuread.ApplicationIdentifierUri(
            f"{name}-identifier-uri",
            application_id=self.application.id,
            identifier_uri=identifier,
            opts=child,
        )
        self.service_principal = azuread.ServicePrincipal(
            f"{name}-sp",
            client_id=self.application.client_id,
            # Only users and daemons given a role (or consent to a scope) get tokens for this API.
            app_role_assignment_required=bool(args.app_roles),
            opts=child,
        )
        tenant = args.tenant_id if args.tenant_id is not None else azuread.get_client_config_output().tenant_id
        self.client_id = self.application.client_id
        self.identifier_uri = pulumi.Output.from_input(identifier)
        self.issuer = pulumi.Output.from_input(tenant).apply(lambda tid: v2_issuer(tid, args.authority))
        self.register_outputs({"client_id": self.client_id, "identifier_uri": self.identifier_uri,
                               "issuer": self.issuer, "audience": self.client_id})


@dataclass(frozen=True, kw_only=True)
class EntraSpaClientArgs:
    """A browser app signing users in with the authorization code flow and PKCE (no secret)."""

    display_name: str
    api: EntraApi
    redirect_uris: Sequence[str]
    scopes: Sequence[str]  # the API scopes the SPA requests

    def __post_init__(self) -> None:
        if not self.redirect_uris:
            raise ValueError("redirect_uris must list where Entra may send the authorization code, "
                             "e.g. ['https://app.example.com/auth/callback']")
        object.__setattr__(self, "redirect_uris", check_redirect_uris(self.redirect_uris, "redirect_uris"))
        unknown = [s for s in self.scopes if s not in self.api.scope_ids]
        if unknown:
            raise ValueError(f"scopes {unknown} are not defined by the API; it defines {sorted(self.api.scope_ids)}")


class EntraSpaClient(pulumi.ComponentResource):
    """SPA registration: redirect URIs on the spa platform, which Entra serves only with PKCE."""

    application: azuread.Application
    client_id: pulumi.Output[str]

    def __init__(self, name: str, args: EntraSpaClientArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:EntraSpaClient", name, None, opts)
        self.application = azuread.Application(
            f"{name}-app",
            display_name=args.display_name,
            sign_in_audience="AzureADMyOrg",
            single_page_application=azuread.ApplicationSinglePageApplicationArgs(
                redirect_uris=list(args.redirect_uris)),
            required_resource_accesses=[azuread.ApplicationRequiredResourceAccessArgs(
                resource_app_id=args.api.client_id,
                resource_accesses=[azuread.ApplicationRequiredResourceAccessResourceAccessArgs(
                    id=args.api.scope_ids[s], type="Scope") for s in args.scopes],
            )] if args.scopes else [],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.client_id = self.application.client_id
        self.register_outputs({"client_id": self.client_id})


@dataclass(frozen=True, kw_only=True)
class EntraDaemonClientArgs:
    """A service calling the API with client credentials; it gets exactly the app roles listed."""

    display_name: str
    api: EntraApi
    app_roles: Sequence[str]
    # Off by default: prefer a certificate or a federated credential, which leave no shared secret in state.
    create_client_secret: bool = False
    client_secret_lifetime: str = "2160h"

    def __post_init__(self) -> None:
        if not self.app_roles:
            raise ValueError("app_roles must name at least one role of the API; client credentials carry roles only")
        unknown = [r for r in self.app_roles if r not in self.api.role_ids]
        if unknown:
            raise ValueError(f"app_roles {unknown} are not defined by the API; it defines {sorted(self.api.role_ids)}")


class EntraDaemonClient(pulumi.ComponentResource):
    """Daemon registration and service principal, with an app role assignment per role on the API."""

    application: azuread.Application
    service_principal: azuread.ServicePrincipal
    role_assignments: list[azuread.AppRoleAssignment]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str] | None

    def __init__(self, name: str, args: EntraDaemonClientArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:EntraDaemonClient", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.application = azuread.Application(
            f"{name}-app", display_name=args.display_name, sign_in_audience="AzureADMyOrg", opts=child)
        self.service_principal = azuread.ServicePrincipal(
            f"{name}-sp", client_id=self.application.client_id, opts=child)
        self.role_assignments = [azuread.AppRoleAssignment(
            f"{name}-role-{args.api.role_ids[role]}",
            app_role_id=args.api.role_ids[role],
            principal_object_id=self.service_principal.object_id,
            resource_object_id=args.api.service_principal.object_id,
            opts=child,
        ) for role in args.app_roles]
        self.client_secret = None
        if args.create_client_secret:
            password = azuread.ApplicationPassword(
                f"{name}-secret", application_id=self.application.id, display_name="authgate client credentials",
                end_date_relative=args.client_secret_lifetime, opts=child)
            self.client_secret = pulumi.Output.secret(password.value)
        self.client_id = self.application.client_id
        outputs = {"client_id": self.client_id}
        if self.client_secret is not None:
            outputs["client_secret"] = self.client_secret
        self.register_outputs(outputs)
