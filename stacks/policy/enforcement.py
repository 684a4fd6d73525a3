"""Whether the HTTP API's native JWT authorizer can enforce a policy route: the runtime's one rule
(lambdas/validation/native_gateway.py) applied to the route as the route table will hold it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from lambdas.validation.native_gateway import native_blockers, native_scopes

if TYPE_CHECKING:
    from stacks.policy.model import AuthPolicy, RouteSpec


def route_native_blockers(policy: "AuthPolicy", route_key: str, route: "RouteSpec") -> list[str]:
    """Why the native JWT authorizer cannot enforce `route` (empty: it can)."""
    issuers = {name: policy.issuers[name].runtime_config(name) for name in route.issuers if name in policy.issuers}
    return native_blockers(route.table_route(route_key), issuers)


def route_native_scopes(route: "RouteSpec") -> tuple[str, ...]:
    """The any-of scopes the native authorizer would be given for `route`."""
    return native_scopes(route.requirement())
