"""GCP Identity Platform as an OIDC issuer: sign-in methods, MFA, authorized domains, and federated OIDC providers."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.naming import require_domain

# Identity Platform signs its ID tokens with Google's securetoken keys; the issuer and audience derive from the
# project id, which is why the component needs it as a plain string.
SECURETOKEN_ISSUER_PREFIX = "https://securetoken.google.com/"
SECURETOKEN_JWKS_URI = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"

_MFA_STATES = ("DISABLED", "ENABLED", "MANDATORY")
_MFA_PROVIDERS = ("PHONE_SMS",)
_PROVIDER_ID = re.compile(r"oidc\.[a-z0-9][a-z0-9-]{0,30}")
_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


@dataclass(frozen=True, kw_only=True)
class OidcFederationProvider:
    """An upstream OIDC IdP users can sign in with (Okta, Entra, Keycloak...), federated into Identity Platform."""

    provider_id: str  # must start with "oidc."
    display_name: str
    issuer: str
    client_id: str
    client_secret: pulumi.Input[str] | None = None  # needed for the code flow; pass a Pulumi secret

    def __post_init__(self) -> None:
        if not _PROVIDER_ID.fullmatch(self.provider_id):
            raise ValueError(
                f"provider_id must be 'oidc.' followed by up to 31 lower-case letters, digits or hyphens "
                f"(for example 'oidc.corp-okta'); got {self.provider_id!r}"
            )
        if not self.issuer.startswith("https://"):
            raise ValueError(f"OIDC provider {self.provider_id}: issuer must be an https:// URL; got {self.issuer!r}")
        if not self.client_id:
            raise ValueError(f"OIDC provider {self.provider_id}: client_id is required")


@dataclass(frozen=True, kw_only=True)
class IdentityPlatformIssuerArgs:
    """How users sign in to the project's Identity Platform, and which web origins may start a sign-in."""

    project: str
    authorized_domains: Sequence[str]
    email_sign_in: bool = True
    password_required: bool = True
    phone_sign_in: bool = False
    allow_duplicate_emails: bool = False
    mfa_state: str = "ENABLED"
    mfa_providers: Sequence[str] = ("PHONE_SMS",)
    totp_adjacent_intervals: int | None = 1  # None leaves TOTP off; 0-10 windows of 30 s accepted either side
    oidc_providers: Sequence[OidcFederationProvider] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.project, str) or not _PROJECT_ID.fullmatch(self.project):
            raise ValueError(
                f"project must be a GCP project id such as 'acme-orders-prod' (the issuer is "
                f"{SECURETOKEN_ISSUER_PREFIX}<project>); got {self.project!r}"
            )
        if not self.authorized_domains:
            raise ValueError("authorized_domains must list the domains that may host sign-in, e.g. ['app.example.com']")
        for domain in self.authorized_domains:
            require_domain(domain, field="authorized_domains", allow_localhost=True)
        if not (self.email_sign_in or self.phone_sign_in or self.oidc_providers):
            raise ValueError("enable at least one sign-in method: email_sign_in, phone_sign_in or oidc_providers")
        if self.mfa_state not in _MFA_STATES:
            raise ValueError(f"mfa_state must be one of {', '.join(_MFA_STATES)}; got {self.mfa_state!r}")
        unknown = [p for p in self.mfa_providers if p not in _MFA_PROVIDERS]
        if unknown:
            raise ValueError(f"mfa_providers may contain only {', '.join(_MFA_PROVIDERS)}; got {unknown}")
        if self.mfa_state != "DISABLED" and not self.mfa_providers and self.totp_adjacent_intervals is None:
            raise ValueError(f"mfa_state {self.mfa_state} needs a second factor: set mfa_providers=['PHONE_SMS'] "
                             "or totp_adjacent_intervals")
        if self.totp_adjacent_intervals is not None and not 0 <= self.totp_adjacent_intervals <= 10:
            raise ValueError(f"totp_adjacent_intervals must be 0-10; got {self.totp_adjacent_intervals}")
        ids = [p.provider_id for p in self.oidc_providers]
        if len(ids) != len(set(ids)):
            raise ValueError(f"oidc_providers ids must be unique; got {ids}")


class IdentityPlatformIssuer(pulumi.ComponentResource):
    """Project-wide Identity Platform config plus one OauthIdpConfig per federated OIDC provider."""

    config: gcp.identityplatform.Config
    oidc_providers: dict[str, gcp.identityplatform.OauthIdpConfig]
    issuer: str
    audience: str
    jwks_uri: str

    def __init__(self, name: str, args: IdentityPlatformIssuerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:gcp:IdentityPlatformIssuer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        provider_configs = []
        if args.totp_adjacent_intervals is not None:
            provider_configs.append(gcp.identityplatform.ConfigMfaProviderConfigArgs(
                state="ENABLED",
                totp_provider_config=gcp.identityplatform.ConfigMfaProviderConfigTotpProviderConfigArgs(
                    adjacent_intervals=args.totp_adjacent_intervals),
            ))
        self.config = gcp.identityplatform.Config(
            f"{name}-config",
            project=args.project,
            authorized_domains=list(args.authorized_domains),
            sign_in=gcp.identityplatform.ConfigSignInArgs(
                allow_duplicate_emails=args.allow_duplicate_emails,
                email=gcp.identityplatform.ConfigSignInEmailArgs(
                    enabled=args.email_sign_in, password_required=args.password_required),
                phone_number=gcp.identityplatform.ConfigSignInPhoneNumberArgs(enabled=args.phone_sign_in),
            ),
            mfa=gcp.identityplatform.ConfigMfaArgs(
                state=args.mfa_state,
                enabled_providers=list(args.mfa_providers),
                provider_configs=provider_configs,
            ),
            opts=child,
        )
        self.oidc_providers = {}
        for provider in args.oidc_providers:
            self.oidc_providers[provider.provider_id] = gcp.identityplatform.OauthIdpConfig(
                f"{name}-{provider.provider_id.replace('.', '-')}",
                name=provider.provider_id,
                display_name=provider.display_name,
                issuer=provider.issuer,
                client_id=provider.client_id,
                client_secret=provider.client_secret,
                enabled=True,
                # The authorization code flow keeps tokens off the browser URL; it needs the client secret.
                response_type=gcp.identityplatform.OauthIdpConfigResponseTypeArgs(
                    code=provider.client_secret is not None, id_token=provider.client_secret is None),
                project=args.project,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config]),
            )
        # What a policy's issuers section needs to accept this project's tokens.
        self.issuer = SECURETOKEN_ISSUER_PREFIX + args.project
        self.audience = args.project
        self.jwks_uri = SECURETOKEN_JWKS_URI
        self.register_outputs({"issuer": self.issuer, "audience": self.audience, "jwks_uri": self.jwks_uri})
