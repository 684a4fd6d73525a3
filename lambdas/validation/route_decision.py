"""The route decision: what one request may do, from the route table, the request and its credentials.

Every entry point (the Lambda authorizers, the backend guards, the forward-auth service, the sandbox) decides here,
in the same order, so no two of them can disagree about a request:

  1. the route: the one `ApiRoutes.match` selects for method and path (or the one a gateway already selected);
  2. the credential: exactly one `Authorization` value, `Bearer <jwt>` or the bare JWT, verified by the Verifier;
  3. public routes are public whatever the credential says (a valid token still yields its principal);
  4. an unknown route is forbidden (`route_not_found`) once the caller is authenticated;
  5. the route must accept the token's issuer, then its requirement must hold (every unmet condition is listed).

  6. proof of possession and freshness (possession.RequestChecks): a DPoP-bound token needs its proof and a
     certificate-bound one its certificate on every route; a route's `proof` and `freshness` add theirs, and its
     `dpop_nonce` the server's nonce in the proof (a refusal then carries the nonce to retry with).

Request facts (the DPoP proof, the request URI and method as the gateway saw them, the client certificate) are
keyword-only arguments of `decide_route`, which `decide_request` forwards them to, so each is checked once, here,
for every entry point.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Iterable, Sequence

from .errors import UNAVAILABLE_CODES, TokenRejected
from .possession import RequestChecks, RequestFacts, authorization_credentials
from .records import Record, set_field
from .route_table import ApiRoutes, Route

_BEARER_HINT = "send the access token as: Authorization: Bearer <token>"


class Outcome(str, Enum):
    """What the request gets. The values are what audit lines write."""

    ALLOW = "allow"                # the principal satisfies the route
    PUBLIC = "public"              # the route needs no token (a valid one still yields its principal)
    UNAUTHORIZED = "unauthorized"  # no token, a bad token, a token for another issuer or of the wrong use: 401
    FORBIDDEN = "forbidden"        # a valid token lacking what the route needs, or an unknown route: 403
    UNAVAILABLE = "unavailable"    # the issuer's keys cannot be had now: fail closed, uncached (500/503)


_STATUS = {Outcome.ALLOW: 200, Outcome.PUBLIC: 200, Outcome.UNAUTHORIZED: 401, Outcome.FORBIDDEN: 403,
           Outcome.UNAVAILABLE: 503}


class RouteDecision(Record):
    """One request's decision.

    outcome    an Outcome
    route      the route decided for, None when the request matches no route
    principal  the verified Principal, whenever the token was good (also on public and forbidden outcomes)
    rejection  why it was not allowed (the first failure), with its code, message, expected/found and hint
    missing    forbidden: every condition of the route the principal does not meet (the first is `rejection`)
    satisfied  with all_routes=True and a good token: every route of the API this principal may call (one shared
               frozenset per combination of permissions, see `satisfied_routes`)
    """

    __slots__ = ("outcome", "route", "principal", "rejection", "missing", "satisfied")

    def __init__(self, outcome: Outcome, route: Route | None, principal: Any = None,
                 rejection: TokenRejected | None = None, missing: tuple[TokenRejected, ...] = (),
                 satisfied: frozenset[Route] = frozenset()) -> None:
        set_field(self, "outcome", outcome)
        set_field(self, "route", route)
        set_field(self, "principal", principal)
        set_field(self, "rejection", rejection)
        set_field(self, "missing", missing)
        set_field(self, "satisfied", satisfied)

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW or self.outcome is Outcome.PUBLIC

    @property
    def code(self) -> str | None:
        return self.rejection.code if self.rejection is not None else None

    @property
    def message(self) -> str | None:
        return self.rejection.message if self.rejection is not None else None

    @property
    def status(self) -> int:
        """The HTTP status a service answering itself gives (API Gateway shapes its own from the outcome)."""
        return _STATUS[self.outcome]

    def principal_or_raise(self) -> Any:
        """The principal when allowed (None on a public route without a good token); the rejection otherwise."""
        if self.rejection is not None and not self.allowed:
            raise self.rejection
        return self.principal


def bearer_token(value: str | Sequence[str] | None) -> str:
    """The token from an Authorization value: "Bearer <jwt>" (scheme in any case) or the bare JWT; a DPoP-scheme
    value is refused here (only the route decision, which checks its proof, accepts one). A list or tuple is
    every value of a header sent more than once; more than one is refused (see authorization_credentials)."""
    scheme, token = authorization_credentials(value)
    if scheme != "bearer":
        raise TokenRejected("malformed", "the Authorization scheme is not Bearer", expected="Bearer",
                            found="DPoP", hint=_BEARER_HINT)
    return token


def decide_request(api: ApiRoutes, verifier: Any, method: str, path: str,
                   authorization: str | Sequence[str] | None, *, all_routes: bool = False,
                   **request_facts: Any) -> RouteDecision:
    """Decide `method path` (the path without its query string) on `api` for a request whose Authorization header
    holds `authorization` (None when absent, a sequence when the header was sent more than once).

    `verifier` is the Verifier over the table's issuers (`RouteTable.verifier()`). With `all_routes`, a good token's
    decision also lists every route of the API it may call (what a cacheable IAM policy needs). Other keyword
    arguments are request facts for `decide_route` (the method is passed on as request_method)."""
    request_facts.setdefault("request_method", method)
    return decide_route(api, verifier, api.match(method, path), authorization, all_routes=all_routes,
                        **request_facts)


def decide_route(api: ApiRoutes, verifier: Any, route: Route | None, authorization: str | Sequence[str] | None, *,
                 all_routes: bool = False, session_cookie: Any = None, request_method: str | None = None,
                 request_uri: str | None = None, dpop_proof: str | Sequence[str] | None = None,
                 client_certificate: str | None = None, checks: RequestChecks | None = None) -> RouteDecision:
    """Decide for a route already selected (a gateway's routeKey, `$connect`), None for a request matching none.

    `session_cookie` is the entry point's reading of the token handler's session cookie
    (lambdas.token_handler.api_side.CookieCredential: the access token in it, or why the request is refused as
    possibly cross-site), None when the entry point reads no cookies. A route with token_source cookie takes its
    token from there and ignores the Authorization header; every other route ignores cookies.

    Request facts, as the entry point's gateway saw them: request_method and request_uri (scheme://host/path, for
    a DPoP proof's htm and htu), dpop_proof (the DPoP header; a sequence when sent more than once) and
    client_certificate (the mutual TLS client certificate's PEM, from the gateway or a trusted proxy). `checks` holds
    the entry point's stores (DPoP replay, denylist, introspection clients); without it, a route or token that
    needs one fails closed."""
    try:
        if route is not None and route.token_source == "cookie":
            scheme, token = "bearer", _session_token(route, session_cookie)
        else:
            scheme, token = authorization_credentials(authorization)
        principal = _authenticate(verifier, route, token, checks)
    except TokenRejected as exc:
        if route is not None and route.public:
            return RouteDecision(Outcome.PUBLIC, route)
        if exc.code in UNAVAILABLE_CODES:
            return RouteDecision(Outcome.UNAVAILABLE, route, rejection=exc)
        # A possibly cross-site request is refused whatever its session: 403, like a missing permission.
        outcome = Outcome.FORBIDDEN if exc.code == "csrf_refused" else Outcome.UNAUTHORIZED
        return RouteDecision(outcome, route, rejection=exc)
    decision = decide_for_principal(api, route, principal, all_routes=all_routes)
    if decision.outcome is not Outcome.ALLOW:
        return decision
    if isinstance(dpop_proof, (list, tuple)):
        dpop_proof = tuple(dpop_proof) if len(dpop_proof) != 1 else dpop_proof[0]
    facts = RequestFacts(scheme=scheme, method=request_method or decision.route.method, uri=request_uri,
                         dpop_proof=dpop_proof, client_certificate=client_certificate)
    try:
        (checks or _NO_STORES).check(proof=decision.route.proof, freshness=decision.route.freshness,
                                     issuer=_issuer_config(verifier, principal.issuer_name), principal=principal,
                                     token=token, facts=facts, dpop_nonce=decision.route.dpop_nonce == "required")
    except TokenRejected as exc:
        outcome = Outcome.UNAVAILABLE if exc.code in UNAVAILABLE_CODES else Outcome.UNAUTHORIZED
        return RouteDecision(outcome, decision.route, principal, exc, satisfied=decision.satisfied)
    return decision


# An entry point that configured no stores: DPoP proofs, the denylist and introspection then fail closed.
_NO_STORES = RequestChecks()


def _issuer_config(verifier: Any, issuer_name: str) -> Any:
    for config in verifier.issuers:
        if config.display_name == issuer_name:
            return config
    raise TokenRejected("unknown_issuer", f"no issuer named {issuer_name!r} in the verifier")


def _authenticate(verifier: Any, route: Route | None, token: str, checks: RequestChecks | None) -> Any:
    """The principal of a JWT (the Verifier), or of an opaque access token: introspected at the one issuer of the
    route that has introspection settings (sending a token to several issuers would leak it to all of them)."""
    if token.count(".") == 2 or route is None or route.public:
        return verifier.authenticate(token)
    introspecting = [c for c in verifier.issuers if c.display_name in route.issuers and c.introspection is not None]
    if len(introspecting) != 1:
        return verifier.authenticate(token)  # refused as malformed: not a JWT, and no one issuer to ask
    return (checks or _NO_STORES).introspection_client(introspecting[0]).principal(token)


def _session_token(route: Route, session_cookie: Any) -> str:
    if session_cookie is None:
        raise TokenRejected("malformed", f"route {route.route_key} takes the session cookie, and this entry point "
                            "reads none", hint="configure AUTHGATE_COOKIE_KEYS and AUTHGATE_WEB_ORIGIN (the token "
                            "handler's cookie keys and the web app's origin)")
    if session_cookie.refusal is not None:
        raise TokenRejected("csrf_refused", session_cookie.refusal,
                            hint="send state-changing requests from the app's own pages with X-Authgate-Csrf: 1")
    if session_cookie.token is None:
        raise TokenRejected("malformed", "the request carries no usable session cookie (absent, expired, altered "
                            "or sealed with a retired key)", hint="sign in through the token handler's /login")
    return session_cookie.token


def decide_for_principal(api: ApiRoutes | None, route: Route | None, principal: Any, *,
                         all_routes: bool = False) -> RouteDecision:
    """Steps 3-5 for a caller already authenticated some other way (a gateway's verified userinfo header)."""
    satisfied = satisfied_routes(api, principal) if all_routes and api is not None else frozenset()
    if route is None:
        where = f" of API {api.name!r}" if api is not None else ""
        return RouteDecision(Outcome.FORBIDDEN, None, principal, TokenRejected(
            "route_not_found", f"the request matches no route{where} in the route table",
            hint="add the route to the policy, or call a route it defines"), satisfied=satisfied)
    if route.public:
        return RouteDecision(Outcome.PUBLIC, route, principal, satisfied=satisfied)
    if not route.admits_issuer(principal.issuer_name):
        return RouteDecision(Outcome.UNAUTHORIZED, route, principal, TokenRejected(
            "unknown_issuer", f"route {route.route_key} does not accept tokens from issuer {principal.issuer_name!r}",
            expected=list(route.issuers), found=principal.issuer_name,
            hint=f"call it with a token from {', '.join(route.issuers)}"), satisfied=satisfied)
    failures = tuple(route.requirement.failures(principal))
    if failures:
        # A route's token_use mismatch (wrong_token_use) is a bad credential, not a missing permission: 401.
        outcome = Outcome.FORBIDDEN if failures[0].status == 403 else Outcome.UNAUTHORIZED
        return RouteDecision(outcome, route, principal, failures[0], failures, satisfied)
    return RouteDecision(Outcome.ALLOW, route, principal, satisfied=satisfied)


# What a claims-only entry point answers for a route whose per-request check it cannot make: the code the route
# decision gives when that check's proof or store is missing, so clients and alarms see the same reason.
_UNCHECKABLE_CODES = {"dpop": "dpop_required", "mtls": "certificate_required", "denylist": "denylist_unavailable",
                      "introspect": "introspection_unavailable"}


def decide_for_forwarded_claims(api: ApiRoutes | None, route: Route | None, principal: Any, *,
                                forwarded_by: str) -> RouteDecision:
    """`decide_for_principal` for a caller whose claims a gateway verified and forwarded (GCP API Gateway's
    userinfo header, EasyAuth's principal), named by `forwarded_by`.

    Such a request carries no DPoP proof, client certificate or token to re-check, so a route whose proof or
    freshness needs one is refused here (fail closed), never allowed on the claims alone. The renderers for those
    gateways refuse such routes already (native_gateway.gateway_blockers); this holds when a gateway was set up
    some other way."""
    decision = decide_for_principal(api, route, principal)
    if decision.outcome is not Outcome.ALLOW or not decision.route.checked_per_request:
        return decision
    from .native_gateway import gateway_blockers

    allowed = decision.route
    setting = allowed.proof if allowed.proof != "none" else allowed.freshness
    code = _UNCHECKABLE_CODES[setting]
    rejection = TokenRejected(code, "; ".join(gateway_blockers(allowed, forwarded_by)),
                              hint="serve this route where every request is checked (an authgate authorizer or "
                                   "forward-auth), or set its proof and freshness to none")
    outcome = Outcome.UNAVAILABLE if code in UNAVAILABLE_CODES else Outcome.UNAUTHORIZED
    return RouteDecision(outcome, allowed, principal, rejection)


def routes_satisfied_by(routes: Iterable[Route], principal: Any) -> list[Route]:
    """The routes among `routes` that this principal may call on its token alone: public ones, and those whose
    issuers include the principal's and whose requirement it meets (the rule of `decide_for_principal`, without the
    explanations)."""
    issuer_name = principal.issuer_name
    # What is listed here may be allowed from a cached answer without this code running again, so a route whose
    # freshness or proof is checked per request is never listed, and a bound token (cnf) gets only public routes:
    # its proof or certificate must be checked on every call.
    bound = "cnf" in principal.claims
    return [route for route in routes
            if route.public or (not bound and not route.checked_per_request and route.admits_issuer(issuer_name)
                                and route.requirement.is_satisfied_by(principal))]


def satisfied_routes(api: ApiRoutes, principal: Any) -> frozenset[Route]:
    """The routes of `api` this principal may call, as `routes_satisfied_by` finds them, at the cost of the API's
    distinct permissions rather than its routes.

    Routes that ask the same thing (public, issuers, requirement) are one permission; each is checked once per
    principal, and each combination of permissions met maps to one frozenset, built once. So a decision over
    thousands of routes costs what a few permissions cost, and the same object (its hash cached) comes back for
    every principal with the same permissions, which is what the IAM policy cache is keyed by."""
    return api.derived("permissions", lambda: _Permissions(api.routes)).satisfied(principal)


def permission_groups(routes: Iterable[Route]) -> list[tuple[Route, ...]]:
    """`routes` grouped by everything `routes_satisfied_by` asks of a route (public, checked per request, issuers,
    requirement): one group per permission, in table order. A principal may call every route of a group or none."""
    groups: dict[tuple, list[Route]] = {}
    for route in routes:
        key = (route.public, route.checked_per_request, route.issuers, route.requirement)
        groups.setdefault(key, []).append(route)
    return [tuple(group) for group in groups.values()]


class _Permissions:
    """An API's routes grouped by what they ask, and the route set of each combination of groups met."""

    _MAX_COMBINATIONS = 1024  # distinct permission combinations remembered; past it, the memo starts over

    def __init__(self, routes: Iterable[Route]) -> None:
        self._groups = tuple((group[0], group) for group in permission_groups(routes))
        self._sets: dict[tuple[int, ...], frozenset[Route]] = {}

    def satisfied(self, principal: Any) -> frozenset[Route]:
        key = tuple(index for index, (sample, _) in enumerate(self._groups)
                    if routes_satisfied_by((sample,), principal))
        found = self._sets.get(key)
        if found is None:
            if len(self._sets) >= self._MAX_COMBINATIONS:
                self._sets.clear()
            found = self._sets[key] = frozenset(route for index in key for route in self._groups[index][1])
        return found


__all__ = ["Outcome", "RouteDecision", "bearer_token", "decide_request", "decide_route", "decide_for_principal",
           "decide_for_forwarded_claims", "routes_satisfied_by", "satisfied_routes", "permission_groups"]
