"""Cognito issuer: a hardened user pool, a hosted sign-in domain, a resource server whose scopes come from the
policy, a public SPA client (authorization code + PKCE) and confidential machine clients (client credentials)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, aws_cognito as cognito
from constructs import Construct

from stacks.aws.refusals import UnsupportedConfiguration, require_https_url

# Access tokens are bearer credentials that cannot be recalled once issued; keep them short.
MAX_ACCESS_TOKEN_LIFETIME = Duration.minutes(15)
DOMAIN_PREFIX_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
SCOPE_NAME_PATTERN = re.compile(r"[\x21\x23-\x2e\x30-\x5b\x5d-\x7e]+")  # Cognito: no space, quote, slash, backslash


@dataclass(frozen=True)
class SpaClientSpec:
    """A browser application: authorization code + PKCE, no client secret."""
    name: str
    callback_urls: Sequence[str]
    logout_urls: Sequence[str] = ()
    scopes: Sequence[str] = ()            # resource-server scopes (as tokens carry them) it may ask for


@dataclass(frozen=True)
class ServiceClientSpec:
    """A machine caller: client credentials with a secret, resource-server scopes only."""
    name: str
    scopes: Sequence[str] = field(default_factory=tuple)


def _check_redirect_url(url: str, *, client: str) -> None:
    # Cognito allows http only for localhost; anything else must be https.
    if url.startswith("http://localhost") or url.startswith("http://127.0.0.1"):
        return
    require_https_url(url, what=f"redirect URL of client {client!r}")


class CognitoIssuer(Construct):
    """A user pool that issues the access tokens the policy's routes require.

    resource_server_identifier  the audience-like identifier scopes are prefixed with ("orders-api" gives
                                "orders-api/orders:read")
    scopes                      the scopes as access tokens carry them ("orders-api/orders:read", as the policy's
                                routes require them) -> description; each must start with the identifier
    domain_prefix               the hosted sign-in domain <prefix>.auth.<region>.amazoncognito.com
    threat_protection           needs the Plus feature plan; False keeps the Essentials plan and says so in nag
    """

    def __init__(self, scope: Construct, id_: str, *, resource_server_identifier: str,
                 scopes: dict[str, str], domain_prefix: str, spa_clients: Sequence[SpaClientSpec] = (),
                 service_clients: Sequence[ServiceClientSpec] = (),
                 access_token_lifetime: Duration = MAX_ACCESS_TOKEN_LIFETIME,
                 refresh_token_lifetime: Duration = Duration.hours(12), threat_protection: bool = True,
                 removal_policy: RemovalPolicy = RemovalPolicy.RETAIN) -> None:
        super().__init__(scope, id_)
        if access_token_lifetime.to_seconds() > MAX_ACCESS_TOKEN_LIFETIME.to_seconds():
            raise UnsupportedConfiguration(
                f"access_token_lifetime {access_token_lifetime.to_minutes()} min is longer than 15 min; access "
                "tokens cannot be recalled once issued, so keep them short and use refresh-token rotation")
        if access_token_lifetime.to_seconds() < 300:
            raise UnsupportedConfiguration("access_token_lifetime must be at least 5 minutes (Cognito's minimum)")
        if not DOMAIN_PREFIX_PATTERN.fullmatch(domain_prefix) or "cognito" in domain_prefix or "aws" in domain_prefix:
            raise UnsupportedConfiguration(
                f"domain_prefix {domain_prefix!r} must be lowercase letters, digits and hyphens (at most 63), and "
                "may not contain 'aws' or 'cognito'")
        prefix = f"{resource_server_identifier}/"
        for full_name in scopes:
            name = full_name[len(prefix):]
            if not full_name.startswith(prefix) or not SCOPE_NAME_PATTERN.fullmatch(name):
                raise UnsupportedConfiguration(
                    f"scope {full_name!r} cannot be a scope of resource server {resource_server_identifier!r}: "
                    f"Cognito puts '{prefix}<name>' in access tokens, so write it as '{prefix}<name>' in the "
                    "policy, where <name> has no space, quote, slash or backslash")
        self.access_token_lifetime = access_token_lifetime

        self.user_pool = cognito.UserPool(
            self, "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3), password_history_size=12),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=(cognito.StandardThreatProtectionMode.FULL_FUNCTION
                                             if threat_protection else None),
            deletion_protection=True,
            removal_policy=removal_policy,
        )
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN)
        self.resource_scopes = {
            full_name: cognito.ResourceServerScope(scope_name=full_name[len(prefix):],
                                                   scope_description=description or full_name)
            for full_name, description in sorted(scopes.items())}
        self.resource_server = self.user_pool.add_resource_server(
            "ResourceServer", identifier=resource_server_identifier, user_pool_resource_server_name=resource_server_identifier,
            scopes=list(self.resource_scopes.values()))

        self.spa_clients: dict[str, cognito.UserPoolClient] = {}
        for spec in spa_clients:
            if not spec.callback_urls:
                raise UnsupportedConfiguration(f"SPA client {spec.name!r} has no callback_urls; the authorization "
                                               "code flow needs at least one")
            for url in (*spec.callback_urls, *spec.logout_urls):
                _check_redirect_url(url, client=spec.name)
            client = self.user_pool.add_client(
                f"Spa{_construct_id(spec.name)}", user_pool_client_name=spec.name,
                generate_secret=False,  # a browser cannot keep a secret; PKCE protects the code instead
                auth_flows=cognito.AuthFlow(user_srp=True),
                o_auth=cognito.OAuthSettings(
                    flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                    scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE,
                            *self._resource_scopes_for(spec.name, spec.scopes)],
                    callback_urls=list(spec.callback_urls), logout_urls=list(spec.logout_urls) or None),
                access_token_validity=access_token_lifetime, id_token_validity=access_token_lifetime,
                refresh_token_validity=refresh_token_lifetime,
                refresh_token_rotation_grace_period=Duration.seconds(10),
                enable_token_revocation=True, prevent_user_existence_errors=True,
                supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO])
            self.spa_clients[spec.name] = client

        self.service_clients: dict[str, cognito.UserPoolClient] = {}
        for spec in service_clients:
            if not spec.scopes:
                raise UnsupportedConfiguration(f"service client {spec.name!r} has no scopes; client credentials "
                                               "tokens carry resource-server scopes only, so it would get none")
            client = self.user_pool.add_client(
                f"Service{_construct_id(spec.name)}", user_pool_client_name=spec.name, generate_secret=True,
                auth_flows=cognito.AuthFlow(),
                o_auth=cognito.OAuthSettings(flows=cognito.OAuthFlows(client_credentials=True),
                                             scopes=self._resource_scopes_for(spec.name, spec.scopes)),
                access_token_validity=access_token_lifetime, enable_token_revocation=True,
                prevent_user_existence_errors=True)
            self.service_clients[spec.name] = client

        region = Stack.of(self).region
        self.issuer_url = f"https://cognito-idp.{region}.amazonaws.com/{self.user_pool.user_pool_id}"
        self.jwks_url = f"{self.issuer_url}/.well-known/jwks.json"
        self.hosted_domain_url = self.domain.base_url()
        CfnOutput(self, "IssuerUrl", value=self.issuer_url, description="iss of tokens from this pool")
        CfnOutput(self, "JwksUrl", value=self.jwks_url, description="the pool's signing keys")
        CfnOutput(self, "HostedDomain", value=self.hosted_domain_url, description="sign-in and token endpoints")
        for name, client in {**self.spa_clients, **self.service_clients}.items():
            CfnOutput(self, f"ClientId{_construct_id(name)}", value=client.user_pool_client_id,
                      description=f"client id of {name} (an audience of this pool's access tokens)")

    def _resource_scopes_for(self, client: str, names: Sequence[str]) -> list[cognito.OAuthScope]:
        unknown = sorted(set(names) - set(self.resource_scopes))
        if unknown:
            raise UnsupportedConfiguration(
                f"client {client!r} asks for scope(s) {', '.join(unknown)} that no route of the API uses; "
                f"known: {', '.join(sorted(self.resource_scopes)) or 'none'}")
        return [cognito.OAuthScope.resource_server(self.resource_server, self.resource_scopes[name])
                for name in names]


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Client"
