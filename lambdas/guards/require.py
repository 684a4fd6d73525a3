"""The framework-neutral guard: authenticate a request's bearer token and require what a route needs.

    guard = BearerGuard(Verifier([...]))                       # or BearerGuard.from_route_table("routes.json", "orders")
    principal = guard.authenticate(headers)                    # TokenRejected (401 codes) when the token is bad
    require(principal, scopes=["orders:read"])                 # TokenRejected (403 codes) when it lacks something
    principal = guard.check(headers, "GET", "/orders/1")       # both, with the route table's requirement for the route
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from lambdas.validation.errors import TokenRejected
from lambdas.validation.requirement import Requirement
from lambdas.validation.route_table import ApiRoutes, RouteTable


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


def header_value(headers: Any, name: str) -> str | None:
    """A header by case-insensitive name from a dict, a list of (name, value) pairs (str or bytes, as ASGI gives).

    Every header read here carries identity, so one sent twice is refused: a client can add its own copy next to
    the one a gateway or load balancer writes, and reading the first (or the last) would let it choose."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    found: str | None = None
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else key
        if key.lower() == wanted:
            if found is not None:
                raise TokenRejected("malformed", f"the {name} header appears more than once",
                                    hint=f"send exactly one {name} header; strip client copies at the edge")
            found = value.decode("latin-1") if isinstance(value, bytes) else value
    return found


class BearerGuard:
    """Checks `Authorization: Bearer <jwt>` with the shared Verifier, optionally against a route table's routes."""

    def __init__(self, verifier: Any, *, routes: ApiRoutes | None = None, header: str = "authorization") -> None:
        self.verifier = verifier
        self.routes = routes
        self.header = header

    @classmethod
    def from_route_table(cls, table: Any, api: str, **verifier_options: Any) -> "BearerGuard":
        loaded = table if isinstance(table, RouteTable) else RouteTable.load(table)
        return cls(loaded.verifier(**verifier_options), routes=loaded.api(api))

    def authenticate(self, headers: Any) -> Any:
        from lambdas.authorizers.runtime import bearer_token
        return self.verifier.authenticate(bearer_token(header_value(headers, self.header)))

    def check(self, headers: Any, method: str, path: str) -> Any:
        """Authenticate and apply the route table's rule for `method path`; None for a public route without a
        token. Unknown routes are refused (claim_mismatch would mislead, so the code says route_not_found)."""
        if self.routes is None:
            raise ValueError("BearerGuard.check needs routes; build it with from_route_table or routes=...")
        route = self.routes.match(method, path)
        if route is None:
            raise TokenRejected("route_not_found", f"{method} {path[:200]} is not a route of API "
                                f"{self.routes.name!r}", hint="add the route to the policy")
        if route.public:
            return None
        principal = self.authenticate(headers)
        if not route.admits_issuer(principal.issuer_name):
            raise TokenRejected("unknown_issuer", f"route {route.route_key} does not accept tokens from issuer "
                                f"{principal.issuer_name!r}", expected=list(route.issuers), found=principal.issuer_name)
        return require(principal, route.requirement)
