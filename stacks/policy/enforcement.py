"""Whether the HTTP API's native JWT authorizer can enforce a policy route: the runtime's one rule
(lambdas/validation/native_gateway.py) applied to the route as the route table will hold it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from lambdas.validation.native_gateway import gateway_blockers, native_blockers, native_scopes

if TYPE_CHECKING:
    from stacks.policy.model import ApiSpec, AuthPolicy, RouteSpec


def route_native_blockers(policy: "AuthPolicy", route_key: str, route: "RouteSpec") -> list[str]:
    """Why the native JWT authorizer cannot enforce `route` (empty: it can)."""
    issuers = {name: policy.issuers[name].runtime_config(name) for name in route.issuers if name in policy.issuers}
    return native_blockers(route.table_route(route_key), issuers)


def route_native_scopes(route: "RouteSpec") -> tuple[str, ...]:
    """The any-of scopes the native authorizer would be given for `route`."""
    return native_scopes(route.requirement())


def refuse_per_request_checks(api_name: str, api: "ApiSpec", *, gateway: str, instead: str) -> None:
    """ValueError listing every route of `api` whose freshness, proof or dpop_nonce `gateway` (one that only
    verifies tokens) cannot enforce (the runtime's rule, native_gateway.gateway_blockers), and what to do instead.
    Rendering such a route as a plain JWT route would accept what the policy refuses."""
    problems = [f"route {key!r}: {reason}" for key, route in api.routes.items()
                for reason in gateway_blockers(route.table_route(key), gateway)]
    if problems:
        raise ValueError(f"API {api_name!r} has routes {gateway} cannot enforce: " + "; ".join(problems)
                         + f". {instead}")
