"""IssuerConfig: everything the Verifier needs to know about one trusted token issuer, checked when it is built."""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from .jwk import SUPPORTED_ALGORITHMS
from .records import Record, set_field

# The one list of IdP profile names, and the other names people use for the same token formats; the policy model,
# its JSON Schema and the CLI all read these.
PROFILES = ("generic", "cognito", "entra", "google", "okta", "auth0", "keycloak", "kubernetes")
PROFILE_ALIASES = {"firebase": "google", "identity_platform": "google", "identity-platform": "google",
                   "gcip": "google", "azure": "entra", "azuread": "entra", "entra_external_id": "entra"}
TOKEN_USES = ("access", "id")
# An issuer entry of the rendered route table: its members, read by IssuerConfig.from_route_table and checked by
# the route table loader (an unknown member is refused).
ROUTE_TABLE_ISSUER_FIELDS = ("issuer", "audiences", "profile", "algorithms", "jwks_uri", "jwks", "token_use",
                             "leeway_seconds", "max_token_age_seconds", "allow_insecure_http", "require_exp",
                             "required_claims", "jwks_file", "introspection", "revocation", "binding")
# A clock-skew allowance beyond a few minutes hides broken clocks and extends stolen tokens' lives.
MAX_LEEWAY_SECONDS = 300
TENANT_PLACEHOLDER = "{tenantid}"

_PROFILE_DEFAULT: Any = object()  # token_use default: "access", except profiles whose bearer tokens are ID tokens

# A user pool's issuer, in its ORIGINAL (cognito-idp.) or UPDATED (issuer-cognito-idp.) spelling; the pool id
# starts with the region the host names. Kept as text for re.fullmatch, which compiles (and caches) a pattern when
# first used: only a cognito issuer pays for it, not every cold start.
_COGNITO_ISSUER = (r"https://(issuer-)?cognito-idp\.([a-z]{2}(?:-[a-z]+)+-[0-9])\.amazonaws\.com(\.cn)?/"
                   r"(\2_[A-Za-z0-9]+)")
_COGNITO_POOL_ID = r"([a-z]{2}(?:-[a-z]+)+-[0-9])_[A-Za-z0-9]+"
COGNITO_ISSUER_HELP = ("a cognito issuer is https://cognito-idp.<region>.amazonaws.com/<user pool id> (or "
                       "issuer-cognito-idp.<region>...), e.g. https://cognito-idp.eu-west-1.amazonaws.com/"
                       "eu-west-1_AbCdEf123 (the pool id starts with its region), or the user pool id itself")


def canonical_profile(name: Any) -> str:
    """The profile a name or alias stands for; ValueError naming every accepted spelling otherwise."""
    profile = PROFILE_ALIASES.get(name, name) if isinstance(name, str) else name
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)} (also accepted: "
                         f"{', '.join(f'{a} = {p}' for a, p in PROFILE_ALIASES.items())})")
    return profile


def cognito_issuer(issuer: str) -> str:
    """The issuer URL of a Cognito user pool, given as its issuer URL or its pool id; ValueError otherwise."""
    if re.fullmatch(_COGNITO_POOL_ID, issuer):
        region = issuer.split("_", 1)[0]
        return f"https://cognito-idp.{region}.amazonaws.com/{issuer}"
    if not re.fullmatch(_COGNITO_ISSUER, issuer):
        raise ValueError(COGNITO_ISSUER_HELP)
    return issuer


def default_token_use(profile: str) -> str:
    """Google, Firebase and Identity Platform issue opaque access tokens; the JWTs APIs receive are ID tokens."""
    return "id" if profile == "google" else "access"


# Asymmetric algorithms a DPoP proof may use when the issuer's settings name none (RFC 9449 section 4.2: never none
# or a MAC). Listed by preference in the DPoP-Nonce/WWW-Authenticate "algs" parameter.
DEFAULT_DPOP_ALGORITHMS = ("ES256", "PS256", "RS256", "EdDSA")


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


class IntrospectionConfig(Record):
    """RFC 7662 introspection at the issuer. The secret is read from the environment variable `client_secret_env`
    when a call is made, so neither the route table nor a log line ever holds it.

    endpoint   None: the discovery document's introspection_endpoint"""

    __slots__ = ("client_id", "client_secret_env", "endpoint", "cache_seconds", "negative_cache_seconds",
                 "timeout_seconds")

    def __init__(self, client_id: str, client_secret_env: str, endpoint: str | None = None, cache_seconds: int = 30,
                 negative_cache_seconds: int = 5, timeout_seconds: float = 1.0) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("introspection.client_id must name the client authgate authenticates as")
        if not isinstance(client_secret_env, str) or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", client_secret_env):
            raise ValueError("introspection.client_secret_env must be an environment variable name, e.g. "
                             "CORP_INTROSPECTION_SECRET")
        if endpoint is not None and (not isinstance(endpoint, str) or not endpoint):
            raise ValueError("introspection.endpoint must be a URL or null (discovery)")
        _whole(cache_seconds, "introspection.cache_seconds", 0, 300)
        _whole(negative_cache_seconds, "introspection.negative_cache_seconds", 0, 60)
        if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)) \
                or not 0 < timeout_seconds <= 3:
            raise ValueError(f"introspection.timeout_seconds must be more than 0 and at most 3, got "
                             f"{timeout_seconds!r}")
        set_field(self, "client_id", client_id)
        set_field(self, "client_secret_env", client_secret_env)
        set_field(self, "endpoint", endpoint)
        set_field(self, "cache_seconds", cache_seconds)
        set_field(self, "negative_cache_seconds", negative_cache_seconds)
        set_field(self, "timeout_seconds", timeout_seconds)


class RevocationConfig(Record):
    """The denylist's entry lifetime and per-instance cache, and who back-channel logout tokens are addressed to."""

    __slots__ = ("max_token_lifetime_seconds", "cache_seconds", "logout_audiences")

    def __init__(self, max_token_lifetime_seconds: int = 3600, cache_seconds: int = 5,
                 logout_audiences: Sequence[str] = ()) -> None:
        _whole(max_token_lifetime_seconds, "revocation.max_token_lifetime_seconds", 60, 86_400)
        _whole(cache_seconds, "revocation.cache_seconds", 0, 60)
        audiences = tuple(logout_audiences)
        if not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("revocation.logout_audiences must be a list of client ids")
        set_field(self, "max_token_lifetime_seconds", max_token_lifetime_seconds)
        set_field(self, "cache_seconds", cache_seconds)
        set_field(self, "logout_audiences", audiences)


class BindingConfig(Record):
    """Proof of possession the issuer's access tokens carry: DPoP (cnf.jkt) and/or certificate binding
    (cnf.x5t#S256), and the rules for DPoP proofs."""

    __slots__ = ("dpop", "mtls", "dpop_algorithms", "dpop_proof_max_age_seconds")

    def __init__(self, dpop: bool = False, mtls: bool = False,
                 dpop_algorithms: Sequence[str] = DEFAULT_DPOP_ALGORITHMS, dpop_proof_max_age_seconds: int = 60) -> None:
        for name, value in (("dpop", dpop), ("mtls", mtls)):
            if not isinstance(value, bool):
                raise ValueError(f"binding.{name} must be true or false")
        algorithms = tuple(dpop_algorithms)
        bad = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
        if not algorithms or bad:
            raise ValueError(f"binding.dpop_algorithms must list asymmetric algorithms from "
                             f"{', '.join(sorted(SUPPORTED_ALGORITHMS))}; got {list(algorithms)!r}")
        _whole(dpop_proof_max_age_seconds, "binding.dpop_proof_max_age_seconds", 5, 300)
        set_field(self, "dpop", dpop)
        set_field(self, "mtls", mtls)
        set_field(self, "dpop_algorithms", algorithms)
        set_field(self, "dpop_proof_max_age_seconds", dpop_proof_max_age_seconds)


def _settings(kind: type, value: Any, name: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object")
    known = set(kind._fields)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"{name}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    return kind(**value)


class IssuerConfig(Record):
    """One trusted issuer. Built once (at Lambda init); invalid settings raise ValueError saying how to fix them.

    issuer        the exact `iss` value. Entra multi-tenant: put `{tenantid}` where the tenant id goes; the token's
                  `tid` claim must then fill it exactly. Cognito: the user pool id alone is also accepted.
    audiences     accepted `aud` values (any-of); Cognito access tokens are matched on `client_id`. Empty means no
                  audience is acceptable: every token is refused (an issuer without an audience would accept tokens
                  minted for any other API of the same IdP).
    jwks / jwks_file / jwks_uri   where keys come from; none of them: OIDC discovery from `issuer`.
    token_use     "access" (default), "id", or None for either. The google profile defaults to "id".
    """

    __slots__ = ("issuer", "audiences", "jwks", "jwks_uri", "algorithms", "profile", "name", "leeway_seconds",
                 "max_token_age_seconds", "require_exp", "token_use", "allow_insecure_http", "jwks_file",
                 "required_claims", "introspection", "revocation", "binding", "accepted_issuers")
    # accepted_issuers follows from issuer and profile: not a parameter, so not a field replace() passes on.
    _fields = __slots__[:-1]

    def __init__(self, issuer: str, audiences: Sequence[str] | str = (), jwks: Mapping | None = None,
                 jwks_uri: str | None = None, algorithms: Sequence[str] | str = ("RS256",), profile: str = "generic",
                 name: str | None = None, leeway_seconds: int = 60, max_token_age_seconds: int | None = None,
                 require_exp: bool = True, token_use: str | None = _PROFILE_DEFAULT, allow_insecure_http: bool = False,
                 jwks_file: str | None = None, required_claims: Sequence[str] | str = (),
                 introspection: IntrospectionConfig | Mapping | None = None,
                 revocation: RevocationConfig | Mapping | None = None,
                 binding: BindingConfig | Mapping | None = None) -> None:
        if not isinstance(issuer, str) or not issuer.strip():
            raise ValueError("IssuerConfig.issuer must be the issuer identifier, e.g. https://idp.example.com")
        try:
            profile = canonical_profile(profile)
            issuer = cognito_issuer(issuer) if profile == "cognito" else issuer
        except ValueError as exc:
            raise ValueError(f"IssuerConfig({issuer}): {exc}") from None
        if TENANT_PLACEHOLDER in issuer and (profile != "entra" or issuer.count(TENANT_PLACEHOLDER) != 1):
            raise ValueError(f"IssuerConfig({issuer}): {TENANT_PLACEHOLDER} is only meaningful once, in an entra "
                             "multi-tenant issuer")
        if isinstance(audiences, str):
            audiences = (audiences,)
        audiences = tuple(audiences)
        if not all(isinstance(a, str) and a for a in audiences):
            raise ValueError(f"IssuerConfig({issuer}): audiences must be non-empty strings")
        if isinstance(algorithms, str):
            algorithms = tuple(a.strip() for a in algorithms.split(","))
        algorithms = tuple(algorithms)
        if not algorithms:
            raise ValueError(f"IssuerConfig({issuer}): algorithms must list at least one algorithm")
        bad = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
        if bad:
            raise ValueError(f"IssuerConfig({issuer}): algorithm(s) {', '.join(map(str, bad))} cannot be allowed; "
                             f"choose from {', '.join(sorted(SUPPORTED_ALGORITHMS))} (none and HMAC never are)")
        if token_use is _PROFILE_DEFAULT:
            token_use = default_token_use(profile)
        if token_use not in (None, *TOKEN_USES):
            raise ValueError(f"IssuerConfig({issuer}): token_use must be 'access', 'id' or None (either), "
                             f"got {token_use!r}")
        if type(leeway_seconds) is not int or not 0 <= leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"IssuerConfig({issuer}): leeway_seconds must be an integer from 0 to "
                             f"{MAX_LEEWAY_SECONDS}, got {leeway_seconds!r}")
        age = max_token_age_seconds
        if age is not None and (type(age) is not int or age <= 0):
            raise ValueError(f"IssuerConfig({issuer}): max_token_age_seconds must be a positive integer or None")
        sources = [n for n, value in (("jwks", jwks), ("jwks_uri", jwks_uri), ("jwks_file", jwks_file))
                   if value is not None]
        if len(sources) > 1:
            raise ValueError(f"IssuerConfig({issuer}): give at most one of jwks, jwks_uri, jwks_file "
                             f"(got {', '.join(sources)})")
        if jwks is not None and not isinstance(jwks, Mapping):
            raise ValueError(f'IssuerConfig({issuer}): jwks must be a JWKS object {{"keys": [...]}}')
        if TENANT_PLACEHOLDER in issuer and not sources:
            raise ValueError(f"IssuerConfig({issuer}): a multi-tenant issuer cannot be discovered; set jwks_uri "
                             "(e.g. https://login.microsoftonline.com/common/discovery/v2.0/keys)")
        if isinstance(required_claims, str):
            required_claims = (required_claims,)
        try:
            introspection = _settings(IntrospectionConfig, introspection, "introspection")
            revocation = _settings(RevocationConfig, revocation, "revocation") or RevocationConfig()
            binding = _settings(BindingConfig, binding, "binding") or BindingConfig()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"IssuerConfig({issuer}): {exc}") from None
        for field_name, value in (
                ("issuer", issuer), ("audiences", audiences), ("jwks", jwks), ("jwks_uri", jwks_uri),
                ("algorithms", algorithms), ("profile", profile), ("name", name), ("leeway_seconds", leeway_seconds),
                ("max_token_age_seconds", max_token_age_seconds), ("require_exp", require_exp),
                ("token_use", token_use), ("allow_insecure_http", allow_insecure_http), ("jwks_file", jwks_file),
                ("required_claims", tuple(required_claims)), ("introspection", introspection),
                ("revocation", revocation), ("binding", binding),
                ("accepted_issuers", _accepted_issuers(issuer, profile))):
            set_field(self, field_name, value)

    @property
    def display_name(self) -> str:
        """The name routes use for this issuer (`name`, else the issuer identifier)."""
        return self.name or self.issuer

    @classmethod
    def from_route_table(cls, name: str, entry: Mapping) -> "IssuerConfig":
        """An issuer entry of the rendered route table (format authgate.routes/v1)."""
        kwargs = {k: entry[k] for k in ROUTE_TABLE_ISSUER_FIELDS if k in entry and entry[k] is not None}
        if "token_use" in entry and entry["token_use"] is None:
            kwargs["token_use"] = None
        return cls(name=name, **kwargs)

    def to_route_table(self, *, checks_revocation: bool = False) -> dict[str, Any]:
        """This issuer's route table entry (what from_route_table reads back). Settings at their defaults that older
        tables never carried (require_exp, required_claims, jwks_file, introspection, revocation, binding) are written
        only when in use, so a table without them reads as it always has; `checks_revocation`: a route consults the
        denylist for this issuer (its revocation settings are then written)."""
        entry: dict[str, Any] = {
            "issuer": self.issuer, "audiences": list(self.audiences), "profile": self.profile,
            "algorithms": list(self.algorithms), "jwks_uri": self.jwks_uri, "jwks": self.jwks,
            "token_use": self.token_use, "leeway_seconds": self.leeway_seconds,
            "max_token_age_seconds": self.max_token_age_seconds, "allow_insecure_http": self.allow_insecure_http}
        if not self.require_exp:
            entry["require_exp"] = False
        if self.required_claims:
            entry["required_claims"] = list(self.required_claims)
        if self.jwks_file is not None:
            entry["jwks_file"] = self.jwks_file
        if self.introspection is not None:
            entry["introspection"] = self.introspection.field_values()
        if checks_revocation or self.revocation.logout_audiences:
            entry["revocation"] = {**self.revocation.field_values(), "logout_audiences": list(self.revocation.logout_audiences)}
        if self.binding.dpop or self.binding.mtls:
            entry["binding"] = {**self.binding.field_values(), "dpop_algorithms": list(self.binding.dpop_algorithms)}
        return entry


def _accepted_issuers(issuer: str, profile: str) -> tuple[str, ...]:
    """Every exact `iss` value that names this issuer. A Cognito pool switched to the UPDATED issuer format signs
    with the same keys under https://issuer-cognito-idp.<region>..., so both spellings of that one pool are its."""
    if profile == "cognito":
        match = re.fullmatch(_COGNITO_ISSUER, issuer)
        if match:
            _, region, cn, pool = match.groups()
            suffix = f".{region}.amazonaws.com{cn or ''}/{pool}"
            return (f"https://cognito-idp{suffix}", f"https://issuer-cognito-idp{suffix}")
    return (issuer,)
