"""Cognito issuer: a hardened user pool, a hosted sign-in domain, a resource server whose scopes come from the
policy, a public SPA client (authorization code + PKCE), confidential web clients for authgate's token handler
(authorization code, client secret kept in Secrets Manager), confidential machine clients (client credentials), and
the external identity providers the pool federates (OIDC, Google, SAML)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, aws_cognito as cognito
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.aws.checkov import skip_checkov
from stacks.aws.nag import acknowledge_nag
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
class WebClientSpec:
    """A web app signed in through authgate's token handler: authorization code with a client secret (the token
    handler is a confidential client), refresh tokens rotated with a grace period for concurrent refreshes."""
    name: str
    callback_urls: Sequence[str]
    logout_urls: Sequence[str] = ()
    scopes: Sequence[str] = ()


@dataclass(frozen=True)
class FederatedProviderSpec:
    """An external identity provider users may sign in with through the pool ("sign in with Okta / Google / SSO").

    kind                oidc (Okta, Auth0, Keycloak, Entra ID...), google or saml
    client_id           the pool's client at the provider (oidc, google)
    client_secret_name  the Secrets Manager secret holding that client's secret (oidc, google); resolved by
                        CloudFormation at deploy time, never written into the template
    issuer              the provider's issuer URL (oidc; its discovery document gives the endpoints)
    metadata_url        the provider's SAML metadata URL (saml)
    attributes          pool attribute -> the provider's claim (SAML: attribute name), e.g. {"email": "email"}
    """
    name: str
    kind: str
    client_id: str | None = None
    client_secret_name: str | None = None
    issuer: str | None = None
    metadata_url: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: {"email": "email", "fullname": "name"})


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
                 web_clients: Sequence[WebClientSpec] = (),
                 federated_providers: Sequence[FederatedProviderSpec] = (),
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
        self.refresh_token_lifetime = refresh_token_lifetime

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

        self.federated_providers = {spec.name: self._federated_provider(spec) for spec in federated_providers}
        sign_in_providers = [cognito.UserPoolClientIdentityProvider.COGNITO,
                             *(cognito.UserPoolClientIdentityProvider.custom(name) for name in self.federated_providers)]

        self.spa_clients: dict[str, cognito.UserPoolClient] = {}
        for spec in spa_clients:
            if not spec.callback_urls:
                raise UnsupportedConfiguration(f"SPA client {spec.name!r} has no callback_urls; the authorization "
                                               "code flow needs at least one")
            for url in (*spec.callback_urls, *spec.logout_urls):
                _check_redirect_url(url, client=spec.name)
            client = self._code_flow_client(
                f"Spa{_construct_id(spec.name)}", spec, sign_in_providers,
                generate_secret=False,  # a browser cannot keep a secret; PKCE protects the code instead
                auth_flows=cognito.AuthFlow(user_srp=True), refresh_grace=Duration.seconds(10))
            self.spa_clients[spec.name] = client

        self.web_clients: dict[str, cognito.UserPoolClient] = {}
        self.web_client_secrets: dict[str, secretsmanager.Secret] = {}
        for spec in web_clients:
            for url in (*spec.callback_urls, *spec.logout_urls):
                _check_redirect_url(url, client=spec.name)
            client = self._code_flow_client(
                f"Web{_construct_id(spec.name)}", spec, sign_in_providers,
                generate_secret=True,  # the token handler keeps it server-side; the browser never sees it
                auth_flows=cognito.AuthFlow(),
                # Concurrent refreshes from several token handler instances present one refresh token twice.
                refresh_grace=Duration.seconds(30))
            self.web_clients[spec.name] = client
            self.web_client_secrets[spec.name] = secretsmanager.Secret(
                self, f"WebSecret{_construct_id(spec.name)}",
                description=f"client secret of the token handler's Cognito client {spec.name}",
                secret_string_value=client.user_pool_client_secret)
            acknowledge_nag(self.web_client_secrets[spec.name], "AwsSolutions-SMG4",
                            "the value is the Cognito app client's own secret, copied at deploy time; it rotates "
                            "with the client (a new client secret), not by a Secrets Manager rotation function")
            skip_checkov(self.web_client_secrets[spec.name], "CKV_AWS_149",
                         "encrypted with the account's aws/secretsmanager key; only the token handler's role may "
                         "read it")
            _acknowledge_client_secret_reader(self)

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
        for name, client in {**self.spa_clients, **self.web_clients, **self.service_clients}.items():
            CfnOutput(self, f"ClientId{_construct_id(name)}", value=client.user_pool_client_id,
                      description=f"client id of {name} (an audience of this pool's access tokens)")

    def _federated_provider(self, spec: FederatedProviderSpec) -> cognito.UserPoolIdentityProviderBase:
        mapping = cognito.AttributeMapping(**{
            attribute: cognito.ProviderAttribute.other(claim) for attribute, claim in spec.attributes.items()})
        construct_id = f"Federated{_construct_id(spec.name)}"
        if spec.kind == "saml":
            if not spec.metadata_url:
                raise UnsupportedConfiguration(f"SAML provider {spec.name!r} needs metadata_url")
            require_https_url(spec.metadata_url, what=f"metadata_url of provider {spec.name!r}")
            return cognito.UserPoolIdentityProviderSaml(
                self, construct_id, user_pool=self.user_pool, name=spec.name, attribute_mapping=mapping,
                metadata=cognito.UserPoolIdentityProviderSamlMetadata.url(spec.metadata_url))
        if not spec.client_id or not spec.client_secret_name:
            raise UnsupportedConfiguration(f"{spec.kind} provider {spec.name!r} needs client_id and client_secret_name "
                                           "(the Secrets Manager secret holding the pool's client secret there)")
        secret = SecretValue.secrets_manager(spec.client_secret_name)
        if spec.kind == "google":
            return cognito.UserPoolIdentityProviderGoogle(
                self, construct_id, user_pool=self.user_pool, client_id=spec.client_id, client_secret_value=secret,
                scopes=["openid", "email", "profile"], attribute_mapping=mapping)
        if spec.kind != "oidc":
            raise UnsupportedConfiguration(f"provider {spec.name!r}: kind must be oidc, google or saml, got "
                                           f"{spec.kind!r}")
        if not spec.issuer:
            raise UnsupportedConfiguration(f"OIDC provider {spec.name!r} needs issuer (its discovery gives endpoints)")
        require_https_url(spec.issuer, what=f"issuer of provider {spec.name!r}")
        # A dynamic reference: CloudFormation resolves it at deploy time; the template holds only the reference.
        return cognito.UserPoolIdentityProviderOidc(
            self, construct_id, user_pool=self.user_pool, name=spec.name, client_id=spec.client_id,
            client_secret=secret.unsafe_unwrap(), issuer_url=spec.issuer, scopes=["openid", "email", "profile"],
            attribute_request_method=cognito.OidcAttributeRequestMethod.GET, attribute_mapping=mapping)

    def _code_flow_client(self, construct_id: str, spec: SpaClientSpec | WebClientSpec,
                          sign_in_providers: list[cognito.UserPoolClientIdentityProvider], *, generate_secret: bool,
                          auth_flows: cognito.AuthFlow, refresh_grace: Duration) -> cognito.UserPoolClient:
        """An authorization code client (no implicit flow) with revocable, rotating refresh tokens."""
        client = self.user_pool.add_client(
            construct_id, user_pool_client_name=spec.name, generate_secret=generate_secret, auth_flows=auth_flows,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE,
                        *self._resource_scopes_for(spec.name, spec.scopes)],
                callback_urls=list(spec.callback_urls), logout_urls=list(spec.logout_urls) or None),
            access_token_validity=self.access_token_lifetime, id_token_validity=self.access_token_lifetime,
            refresh_token_validity=self.refresh_token_lifetime, refresh_token_rotation_grace_period=refresh_grace,
            enable_token_revocation=True, prevent_user_existence_errors=True,
            supported_identity_providers=sign_in_providers)
        # A client naming a provider fails to deploy if the provider does not exist yet.
        for provider in self.federated_providers.values():
            client.node.add_dependency(provider)
        return client

    def _resource_scopes_for(self, client: str, names: Sequence[str]) -> list[cognito.OAuthScope]:
        unknown = sorted(set(names) - set(self.resource_scopes))
        if unknown:
            raise UnsupportedConfiguration(
                f"client {client!r} asks for scope(s) {', '.join(unknown)} that no route of the API uses; "
                f"known: {', '.join(sorted(self.resource_scopes)) or 'none'}")
        return [cognito.OAuthScope.resource_server(self.resource_server, self.resource_scopes[name])
                for name in names]


def _acknowledge_client_secret_reader(scope: Construct) -> None:
    # user_pool_client_secret reads the generated secret at deploy time through CDK's AwsCustomResource, whose
    # singleton function (one per stack) runs with the AWS managed basic-execution policy.
    provider = Stack.of(scope).node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
    role = provider.node.try_find_child("ServiceRole") if provider is not None else None
    if role is not None:
        acknowledge_nag(role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                              "AWSLambdaBasicExecutionRole]",
                        "CDK's deploy-time custom resource that reads the Cognito client secret once; it writes only "
                        "its own logs")


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Client"
