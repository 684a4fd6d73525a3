"""What a cloud gateway's own JWT check can verify: where authgate may rely on it instead of its Lambda authorizer.

The policy compiler, the CDK plan and the sandbox's emulated HTTP API all read these, over the route table's own
typed entries, so the rule a route is compiled under is the rule it is deployed and emulated under.
"""
from __future__ import annotations

from typing import Mapping

from .config import IssuerConfig
from .requirement import Requirement
from .route_table import Route

# API Gateway's HTTP API JWT authorizer verifies RSA PKCS#1 v1.5 signatures only.
NATIVE_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
# Authorization scopes on one HTTP API route: the figure the product brief sets for a native route.
NATIVE_MAX_SCOPES = 10

_NATIVE_CHECKS = "the native JWT authorizer checks only iss, aud/client_id, expiry and any-of scopes"


def native_scopes(requirement: Requirement) -> tuple[str, ...]:
    """The any-of scopes the native authorizer would be given (a single all-of scope is the same rule)."""
    if requirement.scopes_any:
        return requirement.scopes_any
    if len(requirement.scopes_all) == 1:
        return requirement.scopes_all
    return ()


def per_request_checks(route: Route) -> list[tuple[str, str, str]]:
    """What `route` asks of every request beyond its token's claims, as (field, "field: value", what the check
    does): the denylist or introspection (freshness), a DPoP proof or the client certificate (proof), the server's
    DPoP nonce (dpop_nonce). A gateway that only verifies the token, or a backend that only sees the claims a gateway
    forwarded, can do none of these; the native JWT authorizer and the GCP and APIM renderers refuse with this."""
    if route.public:
        return []
    checks: list[tuple[str, str, str]] = []
    if route.freshness != "none":
        checks.append(("freshness", f"freshness: {route.freshness}",
                       "consult a denylist or the issuer's introspection endpoint"))
    if route.proof != "none":
        what = "a DPoP proof" if route.proof == "dpop" else "a client certificate binding"
        checks.append(("proof", f"proof: {route.proof}", f"check {what}"))
    if route.dpop_nonce != "none":
        checks.append(("dpop_nonce", f"dpop_nonce: {route.dpop_nonce}", "issue or check the server's DPoP nonces"))
    return checks


def gateway_blockers(route: Route, gateway: str) -> list[str]:
    """Why `gateway` (a JWT-only gateway such as GCP API Gateway or Azure API Management, named for the message)
    cannot enforce `route`'s per-request checks (empty: the route asks none). Renderers for such gateways refuse a
    route with any, rather than render it as a plain JWT route: that would accept a token the policy says must be
    re-checked or bound."""
    return [f"{setting} cannot be enforced by {gateway}: it verifies the token and cannot {what}"
            for _, setting, what in per_request_checks(route)]


def _needs_lambda(setting: str, what: str) -> str:
    return f"{setting} needs the Lambda authorizer: the native JWT authorizer cannot {what}"


def native_blockers(route: Route, issuers: Mapping[str, IssuerConfig]) -> list[str]:
    """Why the HTTP API's native JWT authorizer cannot enforce `route` (empty: it can). Public routes need none.

    The one rule: the compiler chooses with it, the loader refuses `enforcement: native` with it, and the CDK plan
    refuses a table marking a route native that it blocks."""
    if route.public:
        return []
    requirement = route.requirement
    reasons: list[str] = []
    if len(route.issuers) > 1:
        reasons.append(f"{len(route.issuers)} issuers ({', '.join(route.issuers)}) need the Lambda authorizer: an "
                       f"HTTP API route takes one JWT authorizer, which trusts one issuer")
    unsupported = [name for name, values in (
        ("roles", requirement.roles_any), ("roles_all", requirement.roles_all), ("groups", requirement.groups_any),
        ("groups_all", requirement.groups_all), ("claims", requirement.claims)) if values]
    if requirement.scopes_all and (requirement.scopes_any or len(requirement.scopes_all) > 1):
        unsupported.insert(0, "scopes_all")
    if unsupported:
        verb = "needs" if len(unsupported) == 1 else "need"
        reasons.append(f"{', '.join(unsupported)} {verb} the Lambda authorizer: {_NATIVE_CHECKS}")
    checks = {name: (setting, what) for name, setting, what in per_request_checks(route)}
    if "freshness" in checks:
        reasons.append(_needs_lambda(*checks["freshness"]))
    if route.token_source == "cookie":
        reasons.append("token_source: cookie needs the Lambda authorizer: the native JWT authorizer reads a bearer "
                       "token from a header, not the token handler's sealed session cookie")
    if "proof" in checks:
        reasons.append(_needs_lambda(*checks["proof"]))
    scopes = native_scopes(requirement)
    if len(scopes) > NATIVE_MAX_SCOPES:
        reasons.append(f"{len(scopes)} any-of scopes exceed the native JWT authorizer's limit of "
                       f"{NATIVE_MAX_SCOPES} per route")
    access_only: list[str] = []
    for name in route.issuers:
        issuer = issuers.get(name)
        if issuer is None:
            continue
        non_rsa = [alg for alg in issuer.algorithms if alg not in NATIVE_JWT_ALGORITHMS]
        if non_rsa:
            reasons.append(f"issuer {name} allows {', '.join(non_rsa)}, which the native JWT authorizer cannot "
                           f"verify (RSA {'/'.join(sorted(NATIVE_JWT_ALGORITHMS))} only)")
        if issuer.allow_insecure_http:
            reasons.append(f"issuer {name} is a loopback development issuer that a cloud gateway cannot reach")
        elif issuer.jwks is not None or issuer.jwks_file is not None:
            reasons.append(f"issuer {name}'s keys are bundled (jwks_file/jwks): the native JWT authorizer fetches "
                           f"keys only from the issuer's public discovery document")
        if issuer.max_token_age_seconds is not None:
            reasons.append(f"issuer {name} limits token age (max_token_age_seconds), which the native JWT "
                           f"authorizer cannot check")
        token_use = requirement.token_use if requirement.token_use is not None else issuer.token_use
        if token_use == "id":
            reasons.append("ID tokens (token_use: id) need the Lambda authorizer: the native JWT authorizer "
                           "cannot tell ID tokens from access tokens")
        elif token_use == "access" and not (requirement.scopes_any or requirement.scopes_all):
            access_only.append(name)
    if access_only:
        reasons.append(f"a route requiring no scope needs the Lambda authorizer to accept only access tokens "
                       f"(token_use: access): the native JWT authorizer would also accept ID tokens from "
                       f"{', '.join(access_only)}")
    return reasons
