"""App Service EasyAuth (auth settings v2) for an API: Entra tokens only, and 401, never a login redirect."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_azure_native as azure_native

UNAUTHENTICATED_ACTION = "Return401"


def check_excluded_paths(paths: Sequence[str]) -> tuple[str, ...]:
    """Paths EasyAuth lets through without a token: exact paths only."""
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/") or "*" in path:
            raise ValueError(f"excluded_paths entry {path!r} must be an exact path starting with '/' "
                             "(EasyAuth does not match wildcards here)")
    return tuple(paths)


@dataclass(frozen=True, kw_only=True)
class AppServiceEasyAuthArgs:
    """Which web app to protect, the Entra issuer and audiences it accepts, and the paths left open."""

    resource_group_name: pulumi.Input[str]
    web_app_name: pulumi.Input[str]
    client_id: pulumi.Input[str]  # the API app registration's client id
    open_id_issuer: pulumi.Input[str]  # e.g. https://login.microsoftonline.com/<tenant>/v2.0
    allowed_audiences: Sequence[pulumi.Input[str]]
    allowed_client_applications: Sequence[pulumi.Input[str]] = field(default_factory=tuple)  # empty: any client
    excluded_paths: Sequence[str] = field(default_factory=tuple)  # public routes, e.g. /health

    def __post_init__(self) -> None:
        if not self.allowed_audiences:
            raise ValueError("allowed_audiences must list the API's audiences (its client id for v2 tokens, and "
                             "its identifier URI if v1 tokens are expected)")
        if isinstance(self.open_id_issuer, str) and not self.open_id_issuer.startswith("https://"):
            raise ValueError(f"open_id_issuer must be an https:// issuer URL; got {self.open_id_issuer!r}")
        object.__setattr__(self, "excluded_paths", check_excluded_paths(self.excluded_paths))


class AppServiceEasyAuth(pulumi.ComponentResource):
    """WebAppAuthSettingsV2 requiring authentication, returning 401 to unauthenticated API callers, https only."""

    settings: azure_native.web.WebAppAuthSettingsV2

    def __init__(self, name: str, args: AppServiceEasyAuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:AppServiceEasyAuth", name, None, opts)
        self.settings = azure_native.web.WebAppAuthSettingsV2(
            f"{name}-auth",
            name=args.web_app_name,
            resource_group_name=args.resource_group_name,
            platform=azure_native.web.AuthPlatformArgs(enabled=True),
            global_validation=azure_native.web.GlobalValidationArgs(
                require_authentication=True,
                # An API client cannot follow a browser login redirect; it needs a 401 it can act on.
                unauthenticated_client_action=UNAUTHENTICATED_ACTION,
                excluded_paths=list(args.excluded_paths) or None,
            ),
            http_settings=azure_native.web.HttpSettingsArgs(require_https=True),
            identity_providers=azure_native.web.IdentityProvidersArgs(
                azure_active_directory=azure_native.web.AzureActiveDirectoryArgs(
                    enabled=True,
                    registration=azure_native.web.AzureActiveDirectoryRegistrationArgs(
                        client_id=args.client_id, open_id_issuer=args.open_id_issuer),
                    validation=azure_native.web.AzureActiveDirectoryValidationArgs(
                        allowed_audiences=list(args.allowed_audiences),
                        default_authorization_policy=azure_native.web.DefaultAuthorizationPolicyArgs(
                            allowed_applications=list(args.allowed_client_applications),
                        ) if args.allowed_client_applications else None,
                    ),
                ),
            ),
            # Bearer-token APIs keep no server-side session.
            login=azure_native.web.LoginArgs(token_store=azure_native.web.TokenStoreArgs(enabled=False)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"unauthenticated_client_action": UNAUTHENTICATED_ACTION})
