"""IdP profiles: how each identity provider marks access vs ID tokens, carries its audience, and spells scopes,
roles, groups, client and tenant, normalised into one shape.

Telling access tokens from ID tokens (an ID token must never pass as an access token):
- Any profile: a `typ` header of `at+jwt` (or `application/at+jwt`) is an access token (RFC 9068 2.1). A `typ`
  other than `JWT`/`at+jwt` (e.g. `logout+jwt`, `dpop+jwt`, `secevent+jwt`) is not a bearer token: wrong_typ.
- generic, auth0: without `at+jwt`, a token carrying `nonce`, `at_hash` or `c_hash` (OIDC Core 2, 3.1.3.6,
  3.3.2.11) is an ID token; otherwise an access token. Issuers that set `typ: at+jwt` are classified exactly; for
  the others the audience check is the guarantee (an API's audiences must not be OAuth client ids, which is what an
  ID token's `aud` holds).
- cognito: the `token_use` claim ("access" | "id") is authoritative and required.
- entra: access tokens carry `appidacr` (v1) or `azpacr` (v2); ID tokens never do, and a `nonce` marks an ID token.
- okta: access tokens carry `cid`; ID tokens do not.
- keycloak: the `typ` claim: "Bearer" is an access token, "ID" an ID token; anything else (Refresh, Logout, ...)
  is refused.
- google (Google, Firebase, Identity Platform): Google access tokens are opaque; every JWT is an ID token.
- kubernetes: projected service-account tokens are bearer credentials bound by `aud`: access tokens.
"""
from __future__ import annotations

from typing import Callable, Mapping

from .errors import TokenRejected

# Scopes an IdP grants by itself (OpenID Connect Core 5.4 and 11; Cognito's user self-service scope): a client may
# request them without any route defining them, and they are never an API's resource-server scopes.
BUILT_IN_SCOPES = frozenset({"openid", "profile", "email", "phone", "address", "offline_access",
                             "aws.cognito.signin.user.admin"})

_ACCESS_TYP = "at+jwt"
_ID_TOKEN_MARKERS = ("nonce", "at_hash", "c_hash")
_EMPTY: tuple = ()


def normalise_typ(typ: str | None) -> str | None:
    """RFC 7515 4.1.9: media types are case-insensitive and "application/" may be omitted."""
    if typ is None:
        return None
    typ = typ.lower()
    return typ[12:] if typ.startswith("application/") else typ


# Split scope strings by their text: an issuer grants a handful of distinct scope strings, so most new tokens find
# theirs here and share one tuple (no split, no new strings kept per cached Principal). Bounded in entries and in
# the length of what is kept, so made-up scope strings cannot grow it.
_SPLIT_SCOPES: dict[str, tuple[str, ...]] = {}
_SPLIT_SCOPES_MAX = 256
_SPLIT_SCOPES_MAX_CHARS = 512


def _space_separated(value: str) -> tuple[str, ...]:
    names = _SPLIT_SCOPES.get(value)
    if names is not None:
        return names
    # SP only (RFC 6749 3.3: scope = scope-token *( SP scope-token )). str.split() also splits on tabs, line breaks
    # and Unicode spaces, which would read "a<TAB>orders:read" as granting orders:read.
    split = value.split(" ")
    names = tuple(split) if "" not in split else tuple(name for name in split if name)
    if len(value) <= _SPLIT_SCOPES_MAX_CHARS:
        if len(_SPLIT_SCOPES) >= _SPLIT_SCOPES_MAX:
            _SPLIT_SCOPES.clear()
        _SPLIT_SCOPES[value] = names
    return names


def _strings(claims: Mapping, name: str) -> tuple[str, ...]:
    """A claim that holds names: a space-separated string (OAuth `scope`) or an array of strings."""
    value = claims.get(name)
    if value is None:
        return _EMPTY
    if type(value) is str:
        return _space_separated(value)
    if type(value) is list and all(type(v) is str for v in value):
        return tuple(value)
    raise TokenRejected("malformed", f"the token's {name!r} claim must be a string or an array of strings",
                        found=type(value).__name__)


def _string(claims: Mapping, *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if value is not None:
            if type(value) is not str:
                raise TokenRejected("malformed", f"the token's {name!r} claim must be a string",
                                    found=type(value).__name__)
            return value
    return None


def _generic_use(header: Mapping, claims: Mapping) -> str:
    for marker in _ID_TOKEN_MARKERS:
        if marker in claims:
            return "id"
    return "access"


def _cognito_use(header: Mapping, claims: Mapping) -> str:
    use = claims.get("token_use")
    if use == "access" or use == "id":
        return use
    if use is None:
        raise TokenRejected("missing_claim", "a Cognito token must carry token_use", expected="token_use",
                            hint="this does not look like a Cognito user pool token; check the issuer's profile")
    raise TokenRejected("wrong_token_use", "the token's token_use is neither access nor id",
                        expected=["access", "id"], found=str(use)[:40])


def _entra_use(header: Mapping, claims: Mapping) -> str:
    if "nonce" in claims:
        return "id"
    return "access" if ("azpacr" in claims or "appidacr" in claims) else "id"


def _okta_use(header: Mapping, claims: Mapping) -> str:
    return "access" if "cid" in claims and "nonce" not in claims else "id"


def _keycloak_use(header: Mapping, claims: Mapping) -> str:
    typ = claims.get("typ")
    if typ is None:
        return _generic_use(header, claims)
    if typ == "Bearer":
        return "access"
    if typ == "ID":
        return "id"
    raise TokenRejected("wrong_token_use", "this Keycloak token is neither an access (Bearer) nor an ID token",
                        expected=["Bearer", "ID"], found=str(typ)[:40],
                        hint="send the access token, not a refresh or logout token")


def _always(use: str) -> Callable[[Mapping, Mapping], str]:
    return lambda header, claims: use


# --- normalisation: claims -> (client_id, scopes, roles, groups, tenant) -------------------------------------

_GENERIC_CLIENT_ID_CLAIMS = ("client_id", "azp", "cid", "appid")


def _generic_identity(claims: Mapping, token_use: str):
    scope = claims.get("scope")
    scopes = _space_separated(scope) if type(scope) is str else _strings(claims, "scope")
    if "scp" in claims:
        scopes = scopes + _strings(claims, "scp")
    # _string(claims, *_GENERIC_CLIENT_ID_CLAIMS) without its call for the usual case (this runs for every new
    # token); a value that is not a string goes to _string for the rejection.
    for name in _GENERIC_CLIENT_ID_CLAIMS:
        client_id = claims.get(name)
        if client_id is not None:
            if type(client_id) is not str:
                client_id = _string(claims, *_GENERIC_CLIENT_ID_CLAIMS)  # raises: not a string
            break
    return (client_id, scopes,
            _strings(claims, "roles") if "roles" in claims else _EMPTY,
            _strings(claims, "groups") if "groups" in claims else _EMPTY,
            _string(claims, "tid") if "tid" in claims else None)


def _cognito_identity(claims: Mapping, token_use: str):
    client_id = _string(claims, "client_id") if token_use == "access" else _single_aud(claims)
    return (client_id, _strings(claims, "scope"), _strings(claims, "roles"), _strings(claims, "cognito:groups"),
            None)


def _entra_identity(claims: Mapping, token_use: str):
    # v2 tokens name the client in azp, v1 tokens in appid; scp is one space-separated string.
    return (_string(claims, "azp", "appid"), _strings(claims, "scp"), _strings(claims, "roles"),
            _strings(claims, "groups"), _string(claims, "tid"))


def _google_identity(claims: Mapping, token_use: str):
    firebase = claims.get("firebase")
    tenant = firebase.get("tenant") if isinstance(firebase, Mapping) else None
    if tenant is not None and type(tenant) is not str:
        raise TokenRejected("malformed", "the token's firebase.tenant claim must be a string")
    return (_string(claims, "azp") or _single_aud(claims), _strings(claims, "scope"), _strings(claims, "roles"),
            _strings(claims, "groups"), tenant)


def _okta_identity(claims: Mapping, token_use: str):
    return (_string(claims, "cid") if token_use == "access" else _single_aud(claims), _strings(claims, "scp"),
            _strings(claims, "roles"), _strings(claims, "groups"), None)


def _auth0_identity(claims: Mapping, token_use: str):
    # With RBAC on, an API's permissions arrive in `permissions`; routes treat them like scopes.
    scopes = _strings(claims, "scope") + _strings(claims, "permissions")
    return (_string(claims, "azp", "client_id"), scopes, _strings(claims, "roles"), _strings(claims, "groups"),
            _string(claims, "org_id"))


def _keycloak_identity(claims: Mapping, token_use: str):
    roles: list[str] = []
    realm = claims.get("realm_access")
    if isinstance(realm, Mapping):
        roles.extend(_strings(realm, "roles"))
    resources = claims.get("resource_access")
    if isinstance(resources, Mapping):
        # Client roles are namespaced by client ("orders-api:admin") so a role of one client never grants another.
        for client, access in resources.items():
            if isinstance(access, Mapping):
                roles.extend(f"{client}:{role}" for role in _strings(access, "roles"))
    return (_string(claims, "azp"), _strings(claims, "scope"), tuple(roles), _strings(claims, "groups"), None)


def _kubernetes_identity(claims: Mapping, token_use: str):
    k8s = claims.get("kubernetes.io")
    namespace = k8s.get("namespace") if isinstance(k8s, Mapping) else None
    if namespace is None:
        sub = claims.get("sub")
        parts = sub.split(":") if isinstance(sub, str) else ()
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            namespace = parts[2]
    if namespace is not None and type(namespace) is not str:
        raise TokenRejected("malformed", "the token's kubernetes.io.namespace claim must be a string")
    # The groups the API server itself gives a service account (Kubernetes authentication docs).
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}") if namespace else _EMPTY
    return (None, _EMPTY, _EMPTY, groups, namespace)


def _single_aud(claims: Mapping) -> str | None:
    aud = claims.get("aud")
    if type(aud) is str:
        return aud
    if type(aud) is list and len(aud) == 1 and type(aud[0]) is str:
        return aud[0]
    return None


class Profile:
    """The rules of one IdP family. `classify` says access or id; `identity` normalises the claims."""

    __slots__ = ("name", "classify", "identity", "audience_claim_for_access")

    def __init__(self, name: str, classify: Callable[[Mapping, Mapping], str],
                 identity: Callable[[Mapping, str], tuple], audience_claim_for_access: str = "aud") -> None:
        self.name = name
        self.classify = classify
        self.identity = identity
        # Cognito access tokens carry no aud; their audience is the app client in client_id.
        self.audience_claim_for_access = audience_claim_for_access

    def audience_claim(self, token_use: str) -> str:
        return self.audience_claim_for_access if token_use == "access" else "aud"

    def token_use(self, header: Mapping, claims: Mapping) -> str:
        """Classify the token, raising wrong_typ when its `typ` header says it is no bearer token at all."""
        typ = header.get("typ")
        if typ == "at+jwt":
            return "access"
        if typ is not None:
            typ = normalise_typ(typ)
            if typ == _ACCESS_TYP:
                return "access"
            if typ != "jwt":
                raise TokenRejected("wrong_typ", f"the token's typ header {header['typ'][:40]!r} marks it as "
                                    "something other than an access or ID token", expected=["at+jwt", "JWT"],
                                    found=header["typ"][:40],
                                    hint="send an access token (RFC 9068 typ at+jwt) or, where configured, an "
                                         "ID token")
        return self.classify(header, claims)


PROFILES: dict[str, Profile] = {
    "generic": Profile("generic", _generic_use, _generic_identity),
    "cognito": Profile("cognito", _cognito_use, _cognito_identity, audience_claim_for_access="client_id"),
    "entra": Profile("entra", _entra_use, _entra_identity),
    "google": Profile("google", _always("id"), _google_identity),
    "okta": Profile("okta", _okta_use, _okta_identity),
    "auth0": Profile("auth0", _generic_use, _auth0_identity),
    "keycloak": Profile("keycloak", _keycloak_use, _keycloak_identity),
    "kubernetes": Profile("kubernetes", _always("access"), _kubernetes_identity),
}


def profile_named(name: str) -> Profile:
    return PROFILES[name]



def token_use_evidence(profile: str, header: Mapping, claims: Mapping) -> str:
    """Which header or claim made `Profile.token_use` call this token access or ID, in words: said when a token of
    the wrong kind is refused, so the user sees what to change rather than only the verdict."""
    typ = header.get("typ")
    if typ is not None and normalise_typ(typ) in ("at+jwt", _ACCESS_TYP):
        return f"its typ header is {typ[:40]!r} (RFC 9068 access token)"
    if profile == "cognito":
        return f"its token_use claim is {str(claims.get('token_use'))[:40]!r}"
    if profile == "google":
        return "the google profile takes every token as an ID token (Google's access tokens are opaque)"
    if profile == "entra":
        if "nonce" in claims:
            return "it has a nonce claim, which only ID tokens carry"
        present = [name for name in ("azpacr", "appidacr") if name in claims]
        if present:
            return f"it has {present[0]}, which Entra puts only in access tokens"
        return "it has neither azpacr (v2.0) nor appidacr (v1.0), which Entra puts in every access token"
    if profile == "okta":
        if "nonce" in claims:
            return "it has a nonce claim, which only ID tokens carry"
        return "it has cid, which Okta puts in access tokens" if "cid" in claims else (
            "it has no cid claim, which Okta puts in every access token")
    if profile == "keycloak" and claims.get("typ") is not None:
        return f"its typ claim is {str(claims['typ'])[:40]!r}"
    markers = [marker for marker in _ID_TOKEN_MARKERS if marker in claims]
    if markers:
        return f"it has {', '.join(markers)}, which only ID tokens carry"
    return f"it has none of {', '.join(_ID_TOKEN_MARKERS)} (ID-token claims) and no typ at+jwt header"
