"""Whether the HTTP API's native JWT authorizer can enforce a route, and if not, every reason why not."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from lambdas.validation.native_gateway import NATIVE_JWT_ALGORITHMS, NATIVE_MAX_SCOPES

if TYPE_CHECKING:
    from stacks.policy.model import IssuerSpec, RouteSpec

_NATIVE_CHECKS = "the native JWT authorizer checks only iss, aud/client_id, expiry and any-of scopes"


def native_scopes(route: "RouteSpec") -> tuple[str, ...]:
    """The any-of scopes the native authorizer would be given (a single all-of scope is the same rule)."""
    if route.scopes:
        return tuple(route.scopes)
    if len(route.scopes_all) == 1:
        return tuple(route.scopes_all)
    return ()


def native_blockers(route: "RouteSpec", issuers: Mapping[str, "IssuerSpec"]) -> list[str]:
    """Why the native JWT authorizer cannot enforce `route` (empty: it can). Public routes need no authorizer."""
    if route.public:
        return []
    reasons: list[str] = []
    if len(route.issuers) > 1:
        reasons.append(f"{len(route.issuers)} issuers ({', '.join(route.issuers)}) need the Lambda authorizer: an "
                       f"HTTP API route takes one JWT authorizer, which trusts one issuer")
    unsupported = [field for field in ("roles", "roles_all", "groups", "groups_all", "claims") if getattr(route, field)]
    if route.scopes_all and (route.scopes or len(route.scopes_all) > 1):
        unsupported.insert(0, "scopes_all")
    if unsupported:
        verb = "needs" if len(unsupported) == 1 else "need"
        reasons.append(f"{', '.join(unsupported)} {verb} the Lambda authorizer: {_NATIVE_CHECKS}")
    if route.freshness != "none":
        reasons.append(f"freshness: {route.freshness} needs the Lambda authorizer: the native JWT authorizer cannot "
                       f"consult a denylist or the issuer's introspection endpoint")
    if route.token_source == "cookie":
        reasons.append("token_source: cookie needs the Lambda authorizer: the native JWT authorizer reads a bearer "
                       "token from a header, not the token handler's sealed session cookie")
    if route.proof != "none":
        reasons.append(f"proof: {route.proof} needs the Lambda authorizer: the native JWT authorizer cannot check "
                       f"a {'DPoP proof' if route.proof == 'dpop' else 'client certificate binding'}")
    scopes = native_scopes(route)
    access_only: list[str] = []
    if len(scopes) > NATIVE_MAX_SCOPES:
        reasons.append(f"{len(scopes)} any-of scopes exceed the native JWT authorizer's limit of "
                       f"{NATIVE_MAX_SCOPES} per route")
    for name in route.issuers:
        issuer = issuers.get(name)
        if issuer is None:
            continue
        non_rsa = [alg for alg in issuer.algorithms if alg not in NATIVE_JWT_ALGORITHMS]
        if non_rsa:
            reasons.append(f"issuer {name} allows {', '.join(non_rsa)}, which the native JWT authorizer cannot "
                           f"verify (RSA RS256/RS384/RS512 only)")
        if issuer.local_development:
            reasons.append(f"issuer {name} is a loopback development issuer that a cloud gateway cannot reach")
        elif issuer.jwks is not None:
            reasons.append(f"issuer {name}'s keys are bundled (jwks_file/jwks): the native JWT authorizer fetches "
                           f"keys only from the issuer's public discovery document")
        if issuer.max_token_age_seconds is not None:
            reasons.append(f"issuer {name} limits token age (max_token_age_seconds), which the native JWT "
                           f"authorizer cannot check")
        token_use = route.token_use if route.token_use not in (None, "any") else issuer.token_use
        if token_use == "id":
            reasons.append("ID tokens (token_use: id) need the Lambda authorizer: the native JWT authorizer "
                           "cannot tell ID tokens from access tokens")
        elif token_use == "access" and not (route.scopes or route.scopes_all):
            access_only.append(name)
    if access_only:
        reasons.append(f"a route requiring no scope needs the Lambda authorizer to accept only access tokens "
                       f"(token_use: access): the native JWT authorizer would also accept ID tokens from "
                       f"{', '.join(access_only)}")
    return reasons
