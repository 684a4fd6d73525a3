"""Synth-time refusals: combinations AWS cannot enforce, stopped with an error that says what and how to fix it.

Every check here runs while the app is synthesized, so a bad combination never reaches CloudFormation (where it
would either fail late or, worse, deploy an authorizer that enforces less than the policy says).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

# API Gateway's upper bound for an authorizer's result cache.
MAX_AUTHORIZER_CACHE_SECONDS = 3600
# Issuers whose tokens are minted by a client SDK, not by an OAuth authorization endpoint an ALB could redirect to.
SDK_ONLY_ISSUER_HOSTS = frozenset({"securetoken.google.com"})
SDK_ONLY_PROFILES = frozenset({"firebase", "identity_platform", "gcp_identity_platform"})


class UnsupportedConfiguration(ValueError):
    """A construct was asked for something AWS cannot do (or cannot do safely); the message says how to fix it."""


def require_https_url(url: str, *, what: str) -> None:
    """Cloud deployments fetch keys and discovery documents over TLS only; http:// is for the local sandbox."""
    if not isinstance(url, str) or not url:
        raise UnsupportedConfiguration(f"{what} is empty; give an https:// URL")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise UnsupportedConfiguration(
            f"{what} {url!r} is not an https:// URL; AWS gateways fetch issuer metadata and keys over TLS only "
            "(http:// issuers are for the local sandbox: run them with `authgate local`, not `cdk deploy`)")
    if parts.query or parts.fragment:
        raise UnsupportedConfiguration(f"{what} {url!r} carries a query or fragment; an issuer URL may not")


def require_native_jwt_issuer(name: str, *, issuer: str, audiences: Sequence[str]) -> None:
    """What a deployed HTTP API JWT authorizer needs from its issuer beyond the native rule
    (lambdas/validation/native_gateway.py: RSA keys, the scope limit...): https, and at least one audience."""
    require_https_url(issuer, what=f"issuer {name!r}")
    if not audiences:
        raise UnsupportedConfiguration(
            f"issuer {name!r} has no audiences; the HTTP API JWT authorizer must check aud (or Cognito's client_id): "
            "add `audiences: [...]` to the issuer in the policy")


def require_alb_oidc_provider(issuer: str, *, profile: str | None = None) -> None:
    """The ALB runs the authorization-code flow itself, so the issuer must expose authorize/token endpoints."""
    require_https_url(issuer, what="ALB OIDC issuer")
    host = urlsplit(issuer).hostname or ""
    if host in SDK_ONLY_ISSUER_HOSTS or (profile or "").lower() in SDK_ONLY_PROFILES:
        raise UnsupportedConfiguration(
            f"issuer {issuer!r} is Firebase / Identity Platform, which has no OAuth authorization and token "
            "endpoints for the ALB's authenticate-oidc action to use. Sign users in with the Firebase SDK and put "
            "the token check behind API Gateway (HTTP API JWT authorizer or the Lambda authorizer) instead")


def require_cache_within_token_lifetime(cache_seconds: int, token_lifetime_seconds: int, *, what: str) -> None:
    """A cached Allow must not outlive the shortest token it was granted for."""
    if cache_seconds < 0:
        raise UnsupportedConfiguration(f"{what} cache TTL is negative ({cache_seconds}s); use 0 to turn caching off")
    if cache_seconds > MAX_AUTHORIZER_CACHE_SECONDS:
        raise UnsupportedConfiguration(
            f"{what} cache TTL {cache_seconds}s exceeds API Gateway's maximum of {MAX_AUTHORIZER_CACHE_SECONDS}s")
    if token_lifetime_seconds <= 0:
        raise UnsupportedConfiguration(f"{what}: the shortest token lifetime must be positive, got "
                                       f"{token_lifetime_seconds}s")
    if cache_seconds > token_lifetime_seconds:
        raise UnsupportedConfiguration(
            f"{what} cache TTL {cache_seconds}s is longer than the shortest token lifetime "
            f"{token_lifetime_seconds}s: a cached Allow would outlive the token. Lower the cache TTL to at most "
            f"{token_lifetime_seconds}s")


def authorizer_cache_for_api(plan: Any, requested_seconds: int | None, default_seconds: int, *,
                             what: str) -> int:
    """The authorizer result cache TTL for an API (an ApiPlan). A route checked on every request (a DPoP proof, a
    client certificate, the denylist, introspection) cannot be answered from a cached result: a DPoP proof is
    single-use and a cached Allow would let it be replayed, and a revocation would wait out the cache. Nor can any
    route of an issuer that binds tokens (binding.dpop): a DPoP-bound token's proof is checked wherever it is
    presented, and a cached Allow keyed on `Authorization: DPoP <token>` would admit a stolen token with any proof
    or none. Such an API gets no cache by default, and an explicit cache is refused."""
    per_request = [route.route_key for route in plan.api.routes if route.checked_per_request]
    binding = [issuer.name for issuer in plan.issuers_used(plan.routes) if issuer.binds_dpop]
    if not per_request and not binding:
        return default_seconds if requested_seconds is None else requested_seconds
    if requested_seconds:
        why = (f"route(s) {', '.join(per_request)} are checked on every request (proof or freshness)" if per_request
               else f"issuer(s) {', '.join(binding)} bind tokens to DPoP keys, whose proofs are checked on every route")
        raise UnsupportedConfiguration(
            f"{what} cache TTL {requested_seconds}s is refused: {why}, and a cached answer would replay a single-use "
            f"DPoP proof or outlive a revocation. Set the cache TTL to 0 (the default for such APIs)")
    return 0


def refuse_dpop_nonce_routes(api_routes: Any, *, what: str) -> None:
    """API Gateway cannot deliver server-provided DPoP nonces: RFC 9449 section 9 has the resource server answer a
    proof without its nonce with 401, `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` header, and
    no Lambda authorizer can put a value of its own in a refusal's headers. An HTTP API answers an authorizer's
    refusal with its fixed 401/403 and has no gateway responses; a REST API's gateway responses set headers only
    from static values and request parameters (the authorizer's context reaches body templates, on a Deny, as a
    403). A client would never learn the nonce and every request to the route would fail, so synth refuses."""
    routes = [route.route_key for route in api_routes.routes if route.dpop_nonce != "none"]
    if routes:
        raise UnsupportedConfiguration(
            f"{what}: route(s) {', '.join(routes)} have dpop_nonce: required, and API Gateway cannot send a "
            f"Lambda authorizer's DPoP-Nonce header to the client (a refusal's headers are fixed: HTTP APIs have no "
            f"gateway responses, REST gateway responses map only static values and request parameters into "
            f"headers), so no client could ever present the nonce. Remove dpop_nonce from these routes for API "
            f"Gateway (their DPoP proofs are still checked, iat within binding.dpop_proof_max_age_seconds), or serve "
            f"the API where authgate answers the client itself: the forward-auth service behind NGINX, Envoy "
            f"Gateway or Istio (authgate render nginx | gateway-api | istio), or the backend guard (lambdas.guards)")
