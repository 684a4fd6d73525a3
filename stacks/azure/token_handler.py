"""Browser sign-in on Azure: authgate's token handler (its ASGI app under `authgate serve token-handler`) as a Linux
container App Service app on the SPA's origin, reading its two secrets from Key Vault through its managed identity."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_azure_native as azure_native

# Built-in role "Key Vault Secrets User": read secret values, nothing else.
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def key_vault_reference(secret_uri: str) -> str:
    """An App Service app setting that App Service resolves from Key Vault with the app's identity."""
    return f"@Microsoft.KeyVault(SecretUri={secret_uri})"


@dataclass(frozen=True, kw_only=True)
class TokenHandlerWebAppArgs:
    """resource_group_name / location / plan_id   where it runs (an existing Linux App Service plan)
    image            the authgate image (Dockerfile; started as `authgate serve token-handler`)
    config           the web client's token handler configuration (`render_token_handler`), no secret in it
    key_vault_id     the vault holding both secrets (the app's identity gets Key Vault Secrets User on it)
    client_secret_uri / cookie_keys_uri   the two secrets' URIs in that vault
    """

    name: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    plan_id: pulumi.Input[str]
    image: str
    config: Mapping[str, Any]
    key_vault_id: pulumi.Input[str]
    client_secret_uri: str
    cookie_keys_uri: str

    def __post_init__(self) -> None:
        if self.config.get("format") != "authgate.token-handler/v1":
            raise ValueError("config must be the token handler configuration `authgate render token-handler` writes")
        for field_name in ("client_secret_uri", "cookie_keys_uri"):
            uri = getattr(self, field_name)
            if not (uri.startswith("https://") and ".vault.azure.net/secrets/" in uri):
                raise ValueError(f"{field_name} {uri!r} must be a Key Vault secret URI "
                                 "(https://<vault>.vault.azure.net/secrets/<name>)")


class TokenHandlerWebApp(pulumi.ComponentResource):
    """A Linux container web app running the token handler: https only, TLS 1.2+, FTP off, a system-assigned
    identity allowed to read the vault's secrets, and the secrets as Key Vault references (never values)."""

    web_app: azure_native.web.WebApp
    role_assignment: azure_native.authorization.RoleAssignment

    def __init__(self, name: str, args: TokenHandlerWebAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:TokenHandlerWebApp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = {
            "AUTHGATE_TOKEN_HANDLER_CONFIG": json.dumps(dict(args.config), sort_keys=True),
            "AUTHGATE_CLIENT_SECRET": key_vault_reference(args.client_secret_uri),
            "AUTHGATE_COOKIE_KEYS": key_vault_reference(args.cookie_keys_uri),
            "WEBSITES_PORT": "8080",
        }
        self.web_app = azure_native.web.WebApp(
            f"{name}-app", name=args.name, resource_group_name=args.resource_group_name, location=args.location,
            server_farm_id=args.plan_id, https_only=True, kind="app,linux,container",
            identity=azure_native.web.ManagedServiceIdentityArgs(
                type=azure_native.web.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
            site_config=azure_native.web.SiteConfigArgs(
                linux_fx_version=f"DOCKER|{args.image}", app_command_line="serve token-handler --listen 0.0.0.0:8080",
                min_tls_version="1.2", ftps_state="Disabled", http20_enabled=True,
                app_settings=[azure_native.web.NameValuePairArgs(name=k, value=v) for k, v in sorted(settings.items())]),
            opts=child)
        principal_id = self.web_app.identity.apply(lambda identity: identity.principal_id if identity else None)
        self.role_assignment = azure_native.authorization.RoleAssignment(
            f"{name}-secrets-user", scope=args.key_vault_id, principal_id=principal_id, principal_type="ServicePrincipal",
            role_definition_id=pulumi.Output.from_input(args.key_vault_id).apply(
                lambda vault: f"{vault.split('/resourceGroups/')[0]}/providers/Microsoft.Authorization/roleDefinitions/"
                              f"{KEY_VAULT_SECRETS_USER}"),
            opts=child)
        self.register_outputs({"default_host_name": self.web_app.default_host_name})
