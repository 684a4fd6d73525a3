"""The framework-neutral guard: authenticate a request's bearer token and require what a route needs.

    guard = BearerGuard(Verifier([...]))                       # or BearerGuard.from_route_table("routes.json", "orders")
    principal = guard.authenticate(headers)                    # TokenRejected (401 codes) when the token is bad
    require(principal, scopes=["orders:read"])                 # TokenRejected (403 codes) when it lacks something
    principal = guard.check(headers, "GET", "/orders/1")       # both, with the route table's requirement for the route
    decision = guard.decide(headers, "GET", "/orders/1")       # the same as a RouteDecision, without raising

`check` and `decide` are the route decision every entry point shares (lambdas/validation/route_decision.py).
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from lambdas.validation.errors import TokenRejected
from lambdas.validation.possession import RequestChecks, request_checks_from_env
from lambdas.validation.requirement import Requirement
from lambdas.validation.route_decision import RouteDecision, bearer_token, decide_route
from lambdas.validation.route_table import ApiRoutes, RouteTable, needs_shared_store


def require(principal: Any, requirement: Requirement | None = None, *, scopes: Iterable[str] = (),
            scopes_all: Iterable[str] = (), roles: Iterable[str] = (), roles_all: Iterable[str] = (),
            groups: Iterable[str] = (), groups_all: Iterable[str] = (),
            claims: Mapping[str, Iterable[Any]] | None = None) -> Any:
    """Return `principal` when it meets the requirement (given whole, or as keyword conditions); raise the first
    unmet condition as TokenRejected otherwise (insufficient_scope / _role / _group, claim_mismatch: 403)."""
    if principal is None:
        raise TokenRejected("malformed", "no authenticated caller", hint="authenticate the request first")
    if requirement is None:
        requirement = Requirement(scopes_any=scopes, scopes_all=scopes_all, roles_any=roles, roles_all=roles_all,
                                  groups_any=groups, groups_all=groups_all,
                                  claims={k: tuple(v) for k, v in (claims or {}).items()})
    requirement.check(principal)
    return principal


def header_values(headers: Any, name: str) -> tuple[str, ...]:
    """Every value of a header, by case-insensitive name, from a dict or a list of (name, value) pairs (str or
    bytes, as ASGI gives them), in order."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    found = []
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else key
        if key.lower() == wanted:
            found.append(value.decode("latin-1") if isinstance(value, bytes) else value)
    return tuple(found)


def header_value(headers: Any, name: str) -> str | None:
    """The one value of a header (see header_values), None when absent.

    Every header read here carries identity, so one sent twice is refused: a client can add its own copy next to
    the one a gateway or load balancer writes, and reading the first (or the last) would let it choose."""
    found = header_values(headers, name)
    if len(found) > 1:
        raise TokenRejected("malformed", f"the {name} header appears more than once",
                            hint=f"send exactly one {name} header; strip client copies at the edge")
    return found[0] if found else None


class BearerGuard:
    """Checks `Authorization: Bearer <jwt>` with the shared Verifier, optionally against a route table's routes."""

    def __init__(self, verifier: Any, *, routes: ApiRoutes | None = None, header: str = "authorization",
                 cookie_source: Any = None, checks: RequestChecks | None = None,
                 public_origin: str | None = None) -> None:
        self.verifier = verifier
        self.routes = routes
        self.header = header
        # lambdas.token_handler.api_side.SessionCookieSource, for routes with token_source cookie.
        self.cookie_source = cookie_source
        # DPoP replay records, the denylist and introspection clients (in memory unless AUTHGATE_DENYLIST_TABLE).
        # With dpop_nonce routes, also the nonce key (AUTHGATE_DPOP_NONCE_KEY or its _ARN): refused without one.
        # A guard inside a Lambda backend whose routes need the shared table is refused without it, as an authorizer
        # is: each execution environment's own memory would never see a logout or another one's DPoP proofs.
        self._hands_out_nonces = routes is not None and routes.needs_dpop_nonces
        self.checks = checks if checks is not None else request_checks_from_env(
            os.environ, needs_shared_store=routes is not None and needs_shared_store(routes, verifier.issuers),
            needs_dpop_nonces=self._hands_out_nonces)
        # The scheme and host clients call this service by (a DPoP proof's htu), e.g. https://api.example.com;
        # None: https:// and the request's Host header.
        self.public_origin = public_origin.rstrip("/") if public_origin else None

    @classmethod
    def from_route_table(cls, table: Any, api: str, *, cookie_source: Any = None, public_origin: str | None = None,
                         **verifier_options: Any) -> "BearerGuard":
        loaded = table if isinstance(table, RouteTable) else RouteTable.load(table)
        return cls(loaded.verifier(**verifier_options), routes=loaded.api(api), cookie_source=cookie_source,
                   public_origin=public_origin)

    def authenticate(self, headers: Any) -> Any:
        return self.verifier.authenticate(bearer_token(header_value(headers, self.header)))

    def decide(self, headers: Any, method: str, path: str) -> RouteDecision:
        """The route decision for `method path` (no query string); a repeated token header is refused."""
        if self.routes is None:
            raise ValueError("BearerGuard needs routes to decide; build it with from_route_table or routes=...")
        route = self.routes.match(method, path)
        session_cookie = None
        if self.cookie_source is not None:
            from lambdas.token_handler.api_side import route_session_cookie
            session_cookie = route_session_cookie(self.cookie_source, route, method, headers,
                                                  header_values(headers, "cookie"))
        host = header_value(headers, "host")
        origin = self.public_origin or (f"https://{host}" if host else None)
        return decide_route(self.routes, self.verifier, route, header_values(headers, self.header),
                            session_cookie=session_cookie, request_method=method,
                            request_uri=origin + path if origin else None,
                            dpop_proof=header_values(headers, "dpop") or None, checks=self.checks)

    def success_headers(self, method: str, path: str) -> list[tuple[str, str]]:
        """Headers to add to an allowed response on `method path`: a fresh DPoP-Nonce on a dpop_nonce route (RFC 9449
        8.2), so the client's next proof carries a nonce that has not aged out."""
        from lambdas.validation.possession import fresh_dpop_nonce_header

        if not self._hands_out_nonces:
            return []   # no route hands out nonces: no second route match per request
        route = self.routes.match(method, path)
        nonce = fresh_dpop_nonce_header(route, self.checks)
        return [nonce] if nonce is not None else []

    def check(self, headers: Any, method: str, path: str) -> Any:
        """The principal allowed on `method path` (None on a public route without a good token), or the decision's
        TokenRejected: 401 codes, 403 codes, route_not_found for an unknown route, jwks_unavailable."""
        return self.decide(headers, method, path).principal_or_raise()
