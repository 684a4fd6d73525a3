"""The typed auth policy: issuers defined once, APIs whose routes state requirements, and the clients that get tokens."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo,
                      field_validator, model_validator)

from lambdas.validation.config import (DEFAULT_DPOP_ALGORITHMS, PROFILE_ALIASES, PROFILES as PROFILE_NAMES,
                                      BindingConfig, IntrospectionConfig, IssuerConfig, RevocationConfig)
from lambdas.validation.requirement import Requirement
from lambdas.validation.route_table import Route
from lambdas.validation.jwk import ASYMMETRIC_ALGORITHMS, parse_jwk
from lambdas.validation.profiles import BUILT_IN_SCOPES
from stacks.policy.errors import Problem
from stacks.policy.profiles import PROFILES, check_issuer_url, check_key_url
from stacks.policy.route_keys import (WEBSOCKET_CONNECT, RouteKey, WebSocketRouteKey, parse_route_key,
                                      parse_websocket_route_key)

# Names and aliases (an alias is read as its profile before anything else looks at it; the schema offers both).
ProfileName = Literal[PROFILE_NAMES + tuple(PROFILE_ALIASES)]
Algorithm = Literal[ASYMMETRIC_ALGORITHMS]
TokenUse = Literal["access", "id", "any"]
Enforcement = Literal["auto", "native", "lambda"]
ApiProtocol = Literal["http", "websocket"]
Freshness = Literal["none", "denylist", "introspect"]
Proof = Literal["none", "dpop", "mtls"]
DpopNonce = Literal["none", "required"]
TokenSource = Literal["header", "cookie"]
# RFC 9449 proofs are signed by the client's own key: asymmetric algorithms only (never none or HMAC).
DpopAlgorithm = Literal["RS256", "PS256", "ES256", "ES384", "EdDSA"]
# An environment variable name: where a secret is read from at runtime, so the policy never holds it.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")

# RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'.
_SCOPE_TOKEN = re.compile(r'[\x21\x23-\x5B\x5D-\x7E]+')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Checked by the verifier on every token; a route rule on them would be either redundant or contradictory.
VERIFIER_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat"})
# Scopes a client may request that no route needs to define (OIDC and Cognito built-ins).
STANDARD_SCOPES = BUILT_IN_SCOPES
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _scope(value: str) -> str:
    if not _SCOPE_TOKEN.fullmatch(value):
        raise ValueError(f"{value!r} is not a scope: a scope is one token of printable ASCII without spaces, quotes "
                         f"or backslashes (RFC 6749 §3.3), e.g. orders:read or orders-api/orders.read")
    return value


def _label(value: str) -> str:
    if not value or _CONTROL.search(value) or value != value.strip():
        raise ValueError(f"{value!r}: give a non-empty value without control characters or surrounding spaces")
    return value


Scope = Annotated[str, AfterValidator(_scope)]
Label = Annotated[str, AfterValidator(_label)]
ClaimValues = Annotated[list[Label], Field(min_length=1)]


def _unique(values: list[str], what: str) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists {value!r} twice; give each once")
        seen.add(value)
    return values


class PolicyModel(BaseModel):
    # strict: a policy says what it means. YAML reads `public: "yes"` as a string and `leeway_seconds: "30"` as a
    # string; lax mode would quietly turn them into true and 30, so a typo would change the rule without a word.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, strict=True)


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (upper-case letters, digits and '_', e.g. "
                         f"CORP_INTROSPECTION_SECRET); the policy names where the secret is, never the secret")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


class IntrospectionSpec(PolicyModel):
    """How authgate asks the issuer whether a token is still active (RFC 7662), for `freshness: introspect` routes
    and opaque (non-JWT) access tokens."""

    endpoint: str | None = Field(None, description=(
        "The introspection endpoint (https); default: introspection_endpoint from the issuer's discovery document"))
    client_id: Label = Field(description="The client authgate authenticates as at the endpoint (HTTP Basic)")
    client_secret_env: EnvName = Field(description=(
        "Name of the environment variable that holds that client's secret at runtime (never the secret itself)"))
    cache_seconds: int = Field(30, ge=0, le=300, description=(
        "How long an active answer is reused (never beyond the token's exp); the staleness a revocation can have"))
    negative_cache_seconds: int = Field(5, ge=0, le=60, description="How long an inactive answer is reused")
    timeout_seconds: float = Field(1.0, gt=0, le=3, description=(
        "Deadline for one introspection call, inside the authorizer's time budget"))


class RevocationSpec(PolicyModel):
    """How revocations from this issuer are recorded and consulted (the shared denylist)."""

    max_token_lifetime_seconds: int = Field(3600, ge=60, le=86_400, description=(
        "The longest lifetime of this issuer's tokens; denylist entries expire after it (a revoked token is "
        "expired by then)"))
    cache_seconds: int = Field(5, ge=0, le=60, description=(
        "How long an authorizer instance reuses a denylist lookup: the staleness bound of a revocation"))
    logout_audiences: list[Label] = Field(default_factory=list, description=(
        "Client ids whose OpenID back-channel logout tokens from this issuer are accepted (the logout token's aud)"))


class BindingSpec(PolicyModel):
    """Whether the issuer binds access tokens to a client key (RFC 9449 DPoP) or TLS certificate (RFC 8705)."""

    dpop: bool = Field(False, description="The issuer issues DPoP-bound access tokens (cnf.jkt)")
    mtls: bool = Field(False, description="The issuer issues certificate-bound access tokens (cnf.x5t#S256)")
    dpop_algorithms: list[DpopAlgorithm] = Field(default_factory=lambda: list(DEFAULT_DPOP_ALGORITHMS),
                                                 min_length=1, description="Algorithms accepted for DPoP proofs")
    dpop_proof_max_age_seconds: int = Field(60, ge=5, le=300, description=(
        "How far a DPoP proof's iat may lie from now (each way); also how long its jti is remembered"))


class FederatedProviderSpec(PolicyModel):
    """An external identity provider a Cognito pool lets users sign in with ("sign in with Okta / Google / SSO")."""

    kind: Literal["oidc", "google", "saml"] = Field(description=(
        "oidc (Okta, Auth0, Keycloak, Entra ID, any OpenID provider), google, or saml (enterprise SSO)"))
    issuer: str | None = Field(None, description="oidc: the provider's issuer URL (https); its discovery gives endpoints")
    client_id: str | None = Field(None, description="oidc, google: the pool's client id at the provider")
    client_secret_name: str | None = Field(None, description=(
        "oidc, google: the Secrets Manager secret holding that client's secret (never the secret itself)"))
    metadata_url: str | None = Field(None, description="saml: the provider's metadata URL (https)")
    attributes: dict[str, str] = Field(default_factory=lambda: {"email": "email", "fullname": "name"}, description=(
        "Pool attribute -> the provider's claim (SAML: attribute name)"))

    @model_validator(mode="after")
    def _kind_fields(self) -> "FederatedProviderSpec":
        needed = {"oidc": ("issuer", "client_id", "client_secret_name"), "google": ("client_id", "client_secret_name"),
                  "saml": ("metadata_url",)}[self.kind]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} provider needs {', '.join(missing)}")
        extra = [name for name in ("issuer", "client_id", "client_secret_name", "metadata_url")
                 if name not in needed and getattr(self, name)]
        if extra:
            raise ValueError(f"{', '.join(extra)} do(es) not apply to a {self.kind} provider; remove it")
        for name in ("issuer", "metadata_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith("https://"):
                raise ValueError(f"{name} {value!r} must be an https:// URL")
        return self


class IssuerSpec(PolicyModel):
    """An identity provider whose tokens the APIs accept. Defined once; routes name it."""

    # Declared first: the issuer and key URL checks depend on them (pydantic validates fields in order).
    local_development: bool = Field(False, description=(
        "Allow http:// for a loopback issuer (127.0.0.1, ::1, localhost). Local sandbox only"))
    profile: ProfileName = Field("generic", description="Issuer kind; sets defaults and issuer-specific checks")
    issuer: str = Field(description="The exact `iss` value, e.g. https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12")
    audiences: list[Label] = Field(min_length=1, description=(
        "Accepted `aud` values (Cognito access tokens: the app client ids, matched against client_id)"))
    algorithms: list[Algorithm] = Field(default=None, min_length=1, validate_default=False, description=(
        "Allowed signature algorithms; default per profile (RS256). none and HMAC are never allowed"))
    jwks_uri: str | None = Field(None, description="Key set URL; default: the profile's well-known URL or discovery")
    jwks_file: str | None = Field(None, description=(
        "A JWK set bundled with the deployment, relative to the policy file (no egress to the issuer needed)"))
    jwks: dict[str, Any] | None = Field(None, description="An inline public JWK set (alternative to jwks_file)")
    token_use: TokenUse = Field(default=None, validate_default=False, description=(
        "Which tokens to accept: access (default for most profiles), id, or any"))
    leeway_seconds: int = Field(60, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat")
    max_token_age_seconds: int | None = Field(None, gt=0, description="Refuse tokens whose iat is older than this")
    scopes: list[Scope] = Field(default_factory=list, description=(
        "Scopes this issuer defines beyond those the routes require (clients may request them)"))
    introspection: IntrospectionSpec | None = Field(None, description=(
        "RFC 7662 token introspection: needed by freshness: introspect routes and for opaque access tokens"))
    revocation: RevocationSpec = Field(default_factory=RevocationSpec, description=(
        "The denylist (freshness: denylist routes) and back-channel logout"))
    binding: BindingSpec = Field(default_factory=BindingSpec, description=(
        "Proof of possession this issuer's tokens carry (routes with proof: dpop or mtls)"))
    federation: dict[str, FederatedProviderSpec] = Field(default_factory=dict, description=(
        "cognito only: external identity providers the pool federates, by the name users pick at sign-in"))
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_profile_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        profile_name = data.get("profile", "generic")
        if isinstance(profile_name, str) and profile_name in PROFILE_ALIASES:
            profile_name = data["profile"] = PROFILE_ALIASES[profile_name]
        profile = PROFILES.get(profile_name) if isinstance(profile_name, str) else None
        if profile is not None:
            if data.get("algorithms") is None:
                data["algorithms"] = list(profile.algorithms)
            if data.get("token_use") is None:
                data["token_use"] = profile.token_use
        if data.get("jwks_file") is not None:
            from_file = _read_jwks_file(data["jwks_file"], info)
            # A dumped-and-reloaded spec carries both; a file that disagrees with an inline set is a mistake.
            if data.get("jwks") is not None and data["jwks"] != from_file:
                raise ValueError("give either jwks_file or an inline jwks, not both")
            data["jwks"] = from_file
        return data

    @field_validator("issuer")
    @classmethod
    def _issuer_shape(cls, value: str, info: ValidationInfo) -> str:
        check_issuer_url(value, local_development=bool(info.data.get("local_development", False)))
        profile = PROFILES.get(info.data.get("profile", "generic"))
        if profile is not None:
            profile.check_issuer(value)
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri_shape(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            check_key_url(value, what="jwks_uri", local_development=bool(info.data.get("local_development", False)))
        return value

    @field_validator("audiences", "scopes")
    @classmethod
    def _no_duplicates(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _unique(value, info.field_name)

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        return _unique(value, "algorithms")

    @field_validator("jwks")
    @classmethod
    def _public_key_set(cls, value: dict | None) -> dict | None:
        if value is None:
            return None
        keys = value.get("keys")
        if not isinstance(keys, list) or not keys:
            raise ValueError('a JWK set is an object {"keys": [...]} with at least one key')
        for index, key in enumerate(keys):
            if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
                raise ValueError(f"keys[{index}]: kty must be RSA, EC or OKP (symmetric 'oct' keys are refused: "
                                 f"anyone holding them could mint tokens)")
            private = [m for m in _PRIVATE_JWK_MEMBERS if m in key]
            if private:
                raise ValueError(f"keys[{index}] holds private key material ({', '.join(private)}); bundle only the "
                                 f"public key set the issuer publishes")
            if key.get("use", "sig") == "sig":
                # The runtime's own key checks (size, curve point, ROCA, alg binding...): a bundled signing key it
                # would refuse is a deployment that cannot verify that issuer's tokens.
                try:
                    parse_jwk(key)
                except ValueError as exc:
                    raise ValueError(f"keys[{index}] would be refused when tokens are verified: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistency(self) -> "IssuerSpec":
        if self.federation and self.profile != "cognito":
            raise ValueError("federation is configured on a Cognito user pool (profile: cognito); other issuers "
                             "federate in their own console")
        if self.introspection is not None and self.introspection.endpoint is not None:
            check_key_url(self.introspection.endpoint, what="introspection.endpoint",
                          local_development=self.local_development)
        if self.jwks is not None:
            for index, key in enumerate(self.jwks["keys"]):
                alg = key.get("alg")
                if alg is not None and alg not in self.algorithms:
                    raise ValueError(f"jwks keys[{index}] is for {alg}, which algorithms ({', '.join(self.algorithms)}) "
                                     f"does not allow; add {alg} to algorithms or bundle the right key set")
        return self

    # ---- derived values renderers share -------------------------------------------------------------------
    @property
    def effective_jwks_uri(self) -> str | None:
        """The key set URL: explicit, else the profile's well-known location, else None (use OIDC discovery)."""
        if self.jwks_uri:
            return self.jwks_uri
        if self.jwks is not None:
            return None
        return PROFILES[self.profile].default_jwks_uri(self.issuer)

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def accepted_token_use(self) -> str | None:
        """The route table's token_use: "access", "id", or None for either."""
        return None if self.token_use == "any" else self.token_use

    def runtime_config(self, name: str) -> IssuerConfig:
        """What the runtime trusts this issuer with (the route table's issuer entry, as typed data)."""
        return IssuerConfig(
            issuer=self.issuer, audiences=tuple(self.audiences), profile=self.profile, name=name,
            algorithms=tuple(self.algorithms), jwks_uri=self.effective_jwks_uri, jwks=self.jwks,
            token_use=self.accepted_token_use, leeway_seconds=self.leeway_seconds,
            max_token_age_seconds=self.max_token_age_seconds, allow_insecure_http=self.local_development,
            introspection=(IntrospectionConfig(**self.introspection.model_dump())
                           if self.introspection is not None else None),
            revocation=RevocationConfig(**self.revocation.model_dump()),
            binding=BindingConfig(**self.binding.model_dump()))


def _read_jwks_file(path_text: Any, info: ValidationInfo) -> Any:
    if not isinstance(path_text, str) or not path_text:
        raise ValueError("jwks_file must be a path relative to the policy file")
    base_dir = Path((info.context or {}).get("base_dir") or ".")
    path = Path(path_text)
    resolved = path if path.is_absolute() else base_dir / path
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"jwks_file {path_text!r} not found (looked at {resolved}); paths are relative to the "
                         f"policy file") from None
    except OSError as exc:
        raise ValueError(f"jwks_file {path_text!r} cannot be read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"jwks_file {path_text!r} is not JSON (line {exc.lineno}: {exc.msg}); it must hold a JWK "
                         f'set {{"keys": [...]}}') from None


class RouteSpec(PolicyModel):
    """What a caller needs for one route. Lists are any-of; the *_all lists are all-of; claims: name -> allowed values."""

    public: bool = Field(False, description="No token needed (health checks, discovery). Excludes every other rule")
    issuers: list[str] = Field(default_factory=list, description="Names of the issuers whose tokens this route accepts")
    scopes: list[Scope] = Field(default_factory=list, description="The token needs at least one of these scopes")
    scopes_all: list[Scope] = Field(default_factory=list, description="The token needs every one of these scopes")
    roles: list[Label] = Field(default_factory=list, description="At least one of these roles")
    roles_all: list[Label] = Field(default_factory=list, description="Every one of these roles")
    groups: list[Label] = Field(default_factory=list, description="At least one of these groups")
    groups_all: list[Label] = Field(default_factory=list, description="Every one of these groups")
    claims: dict[str, ClaimValues] = Field(default_factory=dict, description=(
        "Claim name -> allowed string values (any-of), e.g. {tenant: [acme]}"))
    token_use: TokenUse | None = Field(None, description=(
        "Narrow an issuer that accepts any token to access or id tokens on this route"))
    enforcement: Enforcement = Field("auto", description=(
        "auto: native JWT authorizer where it can enforce the route, else the Lambda authorizer; native or lambda "
        "force one (native fails the policy when it cannot enforce the route)"))
    freshness: Freshness = Field("none", description=(
        "Re-check revocation on each call: none (signature and expiry only), denylist (the shared denylist of "
        "revoked tokens, sessions and subjects) or introspect (ask the issuer, RFC 7662). For high-risk routes"))
    proof: Proof = Field("none", description=(
        "Proof of possession: none, dpop (RFC 9449: Authorization: DPoP plus a DPoP proof; Bearer refused) or mtls "
        "(RFC 8705: the token is bound to the client certificate of a mutual TLS connection)"))
    dpop_nonce: DpopNonce = Field("none", description=(
        "With proof: dpop, required makes every DPoP proof carry a nonce the server provided (RFC 9449 section 9): "
        "a proof without the current one is refused with error use_dpop_nonce and a fresh DPoP-Nonce header, so a "
        "proof cannot be made long before it is used. Nonces are HMAC-SHA256 over a 60 s step with the key in "
        "AUTHGATE_DPOP_NONCE_KEY, accepted for at most 120 s. Served by the forward-auth service and the backend "
        "guards; API Gateway authorizers cannot send the header, so synth refuses it there"))
    token_source: TokenSource = Field("header", description=(
        "Where the access token comes from: header (Authorization: Bearer) or cookie (the session cookie of "
        "authgate's token handler, for a browser app signed in through a web client; state-changing methods then "
        "need the X-Authgate-Csrf header and the app's Origin)"))
    description: str | None = None

    @field_validator("issuers", "scopes", "scopes_all", "roles", "roles_all", "groups", "groups_all")
    @classmethod
    def _no_duplicates(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _unique(value, info.field_name)

    @field_validator("claims")
    @classmethod
    def _claim_rules(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, allowed in value.items():
            _label(name)
            if name in VERIFIER_CLAIMS:
                raise ValueError(f"claim {name!r} is checked by the verifier for every token (set it on the issuer: "
                                 f"issuer, audiences, leeway_seconds); remove it from claims")
            _unique(allowed, f"claims.{name}")
        return value

    @model_validator(mode="after")
    def _public_or_protected(self) -> "RouteSpec":
        if self.public:
            extra = [name for name in ("issuers", "scopes", "scopes_all", "roles", "roles_all", "groups",
                                       "groups_all", "claims") if getattr(self, name)]
            if self.token_use is not None:
                extra.append("token_use")
            if self.enforcement != "auto":
                extra.append("enforcement")
            extra.extend(name for name in ("freshness", "proof", "dpop_nonce") if getattr(self, name) != "none")
            if self.token_source != "header":
                extra.append("token_source")
            if extra:
                raise ValueError(f"a public route takes no token, so {', '.join(extra)} cannot apply; remove "
                                 f"{'them' if len(extra) > 1 else 'it'} or drop public: true")
        # That a protected route names its issuers is checked in checks.py, which knows the API's protocol: a
        # WebSocket message route names none (its connection was authorized on $connect).
        return self

    def requirement(self) -> Requirement:
        """What a token must carry on this route, as the runtime checks it."""
        return Requirement(scopes_any=self.scopes, scopes_all=self.scopes_all, roles_any=self.roles,
                           roles_all=self.roles_all, groups_any=self.groups, groups_all=self.groups_all,
                           claims=self.claims, token_use=None if self.token_use in (None, "any") else self.token_use)

    def table_route(self, route_key: str, *, enforcement: str = "lambda", reason: str = "") -> Route:
        """This route as the route table holds it."""
        return Route.build(route_key, public=self.public, issuers=self.issuers, requirement=self.requirement(),
                           enforcement=enforcement, enforcement_reason=reason, freshness=self.freshness,
                           proof=self.proof, token_source=self.token_source, dpop_nonce=self.dpop_nonce)

    @property
    def requirement_fields(self) -> dict[str, Any]:
        """The authorization rules as plain lists, in the route table's field order."""
        return {"scopes": list(self.scopes), "scopes_all": list(self.scopes_all), "roles": list(self.roles),
                "roles_all": list(self.roles_all), "groups": list(self.groups), "groups_all": list(self.groups_all),
                "claims": {name: list(values) for name, values in self.claims.items()}}


class RateLimitSpec(PolicyModel):
    """Calls each caller may make per period (APIM rate-limit-by-key; gateway throttling elsewhere)."""

    calls: int = Field(100, ge=1, le=1_000_000)
    period_seconds: int = Field(60, ge=1, le=300)


class ApiSpec(PolicyModel):
    """One API: its routes keyed "METHOD /path" (API Gateway syntax), or for a WebSocket API "$connect", "$disconnect",
    "$default" and custom action names; plus optional presentation details."""

    protocol: ApiProtocol = Field("http", description=(
        "http (REST or HTTP API routes keyed \"METHOD /path\") or websocket (an API Gateway WebSocket API: routes "
        "$connect, $disconnect, $default and custom actions; only $connect carries requirements, because API Gateway "
        "authorizes a WebSocket connection once, on $connect)"))
    title: str | None = None
    description: str | None = None
    rate_limit: RateLimitSpec = Field(default_factory=RateLimitSpec)
    routes: dict[str, RouteSpec] = Field(min_length=1)

    @property
    def is_websocket(self) -> bool:
        return self.protocol == "websocket"

    def route_keys(self) -> dict[str, RouteKey | WebSocketRouteKey]:
        parse = parse_websocket_route_key if self.is_websocket else parse_route_key
        return {key: parse(key) for key in self.routes}

    @property
    def connect_route(self) -> RouteSpec | None:
        """A WebSocket API's $connect route (the one its authorizer guards); None for an HTTP API."""
        return self.routes.get(WEBSOCKET_CONNECT) if self.is_websocket else None


class ClientSpec(PolicyModel):
    """An application that gets tokens: a SPA (authorization code + PKCE in the browser), a web app whose sign-in
    runs through authgate's token handler (a confidential client keeping tokens in HttpOnly cookies), or a service
    (client credentials)."""

    kind: Literal["spa", "web", "service"]
    issuer: str = Field(description="Name of the issuer that issues this client's tokens")
    scopes: list[Scope] = Field(default_factory=list, description="Scopes the client may request")
    audience: str | None = Field(None, description="The audience (API) the client calls; one of the issuer's audiences")
    redirect_uris: list[str] = Field(default_factory=list, description="SPA only: exact sign-in callback URLs")
    logout_uris: list[str] = Field(default_factory=list, description="spa and web: exact sign-out return URLs")
    origin: str | None = Field(None, description=(
        "web only: the app's origin (https://host[:port]); the token handler serves it under auth_path and the "
        "issuer sends the code to origin + auth_path + /callback"))
    auth_path: str = Field("/auth", pattern=r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$",
                           description="web only: the path prefix the token handler answers under")
    session_seconds: int = Field(8 * 3600, ge=60, le=30 * 86400, description=(
        "web only: absolute session lifetime; after it the user signs in again whatever the refresh token allows"))
    description: str | None = None

    @field_validator("scopes", "redirect_uris", "logout_uris")
    @classmethod
    def _no_duplicates(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _unique(value, info.field_name)

    @property
    def callback_uris(self) -> list[str]:
        """Where the issuer may send the code: the SPA's redirect_uris, or the token handler's callback."""
        if self.kind == "web" and self.origin:
            return [self.origin.rstrip("/") + self.auth_path + "/callback"]
        return list(self.redirect_uris)

    @model_validator(mode="after")
    def _kind_rules(self) -> "ClientSpec":
        if self.kind in ("spa", "web"):
            if self.kind == "spa" and not self.redirect_uris:
                raise ValueError("a spa client needs redirect_uris (the exact URLs the issuer may send the "
                                 "authorization code to)")
            if self.kind == "web":
                if not self.origin:
                    raise ValueError("a web client needs origin (e.g. https://shop.example.com): the token handler's "
                                     "callback is origin + auth_path + /callback")
                if self.redirect_uris:
                    raise ValueError("a web client's callback is derived from origin and auth_path; remove "
                                     "redirect_uris")
                _check_origin(self.origin)
            for field, uris in (("redirect_uris", self.callback_uris), ("logout_uris", self.logout_uris)):
                for uri in uris:
                    _check_callback_uri(uri, field)
        else:
            if self.redirect_uris or self.logout_uris:
                raise ValueError("a service client uses client credentials and has no browser redirects; remove "
                                 "redirect_uris and logout_uris")
            if not self.scopes:
                raise ValueError("a service client lists the scopes it requests (client credentials tokens carry "
                                 "only granted scopes)")
            if "openid" in self.scopes:
                raise ValueError("openid is for user sign-in; a client credentials token has no user")
        if self.kind != "web" and self.origin is not None:
            raise ValueError("origin is for web clients (the token handler); remove it or set kind: web")
        return self


def _check_origin(origin: str) -> None:
    from urllib.parse import urlsplit
    parts = urlsplit(origin)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") or parts.query \
            or parts.fragment or parts.username is not None:
        raise ValueError(f"origin: {origin!r} must be scheme://host[:port] with nothing after it, e.g. "
                         "https://shop.example.com")


def _check_callback_uri(uri: str, field: str) -> None:
    from urllib.parse import urlsplit

    from lambdas.validation.fetcher import is_loopback_host
    parts = urlsplit(uri)
    if "*" in uri:
        raise ValueError(f"{field}: {uri!r} has a wildcard; redirect URIs are matched exactly (RFC 9700 §4.1.3)")
    if parts.fragment:
        raise ValueError(f"{field}: {uri!r} has a fragment; redirect URIs must not (RFC 6749 §3.1.2)")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    raise ValueError(f"{field}: {uri!r} must be https:// (http:// only for loopback hosts during development)")


class AuthPolicy(PolicyModel):
    """A whole policy file. Cross references (routes and clients naming issuers, route keys) are checked here."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_ref: str | None = Field(None, alias="$schema", description="JSON Schema of this file, for editors")
    description: str | None = None
    issuers: dict[str, IssuerSpec] = Field(min_length=1)
    apis: dict[str, ApiSpec] = Field(min_length=1)
    clients: dict[str, ClientSpec] = Field(default_factory=dict)

    _source_path: Path | None = PrivateAttr(default=None)
    _warnings: tuple[Problem, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _cross_references(self) -> "AuthPolicy":
        from stacks.policy.checks import check_policy
        check_policy(self)
        return self

    # ---- lookups ----------------------------------------------------------------------------------------------
    @property
    def source_path(self) -> Path | None:
        """The file this policy was loaded from (None when built from a dict)."""
        return self._source_path

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """What is valid but probably not meant (e.g. an issuer no route uses); the loader fills in file and line."""
        return self._warnings

    def api(self, name: str) -> ApiSpec:
        try:
            return self.apis[name]
        except KeyError:
            raise KeyError(f"no API named {name!r}; the policy defines: {', '.join(self.apis)}") from None

    def issuer(self, name: str) -> IssuerSpec:
        try:
            return self.issuers[name]
        except KeyError:
            raise KeyError(f"no issuer named {name!r}; the policy defines: {', '.join(self.issuers)}") from None

    def iter_routes(self) -> Iterator[tuple[str, RouteKey | WebSocketRouteKey, RouteSpec]]:
        """Every (api name, parsed route key, route) in policy order (WebSocketRouteKey for a WebSocket API)."""
        for api_name, api in self.apis.items():
            for key, parsed in api.route_keys().items():
                yield api_name, parsed, api.routes[key]

    def _routes(self) -> Iterator[RouteSpec]:
        for api in self.apis.values():
            yield from api.routes.values()

    def issuer_scopes(self, name: str) -> tuple[str, ...]:
        """Every scope issuer `name` defines: its declared scopes plus the union the routes naming it require. Sorted."""
        issuer = self.issuer(name)
        found = set(issuer.scopes)
        for route in self._routes():
            if name in route.issuers:
                found.update(route.scopes)
                found.update(route.scopes_all)
        return tuple(sorted(found))

    def scopes_by_issuer(self) -> dict[str, tuple[str, ...]]:
        return {name: self.issuer_scopes(name) for name in self.issuers}

    def issuer_roles(self, name: str) -> tuple[str, ...]:
        """Every role the routes accepting issuer `name` check (e.g. the Entra app roles to define). Sorted."""
        self.issuer(name)
        found: set[str] = set()
        for route in self._routes():
            if name in route.issuers:
                found.update(route.roles)
                found.update(route.roles_all)
        return tuple(sorted(found))

    def clients_of(self, issuer_name: str) -> dict[str, ClientSpec]:
        return {name: c for name, c in self.clients.items() if c.issuer == issuer_name}
