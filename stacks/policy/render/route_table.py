"""The route table renderer: policy -> the authgate.routes/v1 JSON that Lambda authorizers and guards read.

The table's shape is lambdas/validation/route_table.py's (the codec the runtime loads it with): this renderer
builds its typed entries from the compiled policy and lets the codec write them.
"""
from __future__ import annotations

from typing import Any, Iterable

from lambdas.validation.route_table import ApiRoutes, RouteTable
from stacks.policy.compiler import compile_policy
from stacks.policy.model import AuthPolicy

__all__ = ["render_route_table", "route_table", "route_table_json"]


def route_table(policy: AuthPolicy, *, apis: Iterable[str] | None = None) -> RouteTable:
    """The route table for every API (or only `apis`), with bundled key sets inlined.

    Only the issuers the selected APIs' routes name are included, so an authorizer never trusts an issuer its API
    does not use. Order is the policy's, so the JSON is byte-stable across runs.

    A WebSocket API carries "protocol": "websocket", its "$connect" route in "routes" (method and path null) and its
    message routes ($disconnect, $default, custom actions) as route keys in "connection_routes": no authorizer runs
    on them, but a deployment needs them to create the routes.
    """
    compiled = compile_policy(policy)
    selected = list(policy.apis) if apis is None else list(apis)
    for name in selected:
        policy.api(name)  # a clear KeyError for an unknown API name
    used = {issuer for name in selected for route in policy.apis[name].routes.values() for issuer in route.issuers}
    issuers = {name: spec.runtime_config(name) for name, spec in policy.issuers.items() if name in used}
    tables = {}
    for name in selected:
        compiled_api = compiled.apis[name]
        routes = [route.spec.table_route(route.route_key, enforcement=route.enforcement, reason=route.reason)
                  for route in compiled_api.authorized_routes]
        tables[name] = ApiRoutes.of(name, routes, protocol=compiled_api.protocol,
                                    connection_routes=[r.route_key for r in compiled_api.websocket_message_routes])
    return RouteTable(issuers, tables, source="<rendered route table>")


def render_route_table(policy: AuthPolicy, *, apis: Iterable[str] | None = None) -> dict[str, Any]:
    """The route table as JSON-ready data (see `route_table`)."""
    return route_table(policy, apis=apis).to_document()


def route_table_json(policy: AuthPolicy, *, apis: Iterable[str] | None = None) -> str:
    """The route table as the exact text `authgate render routes` writes (2-space indent, trailing newline)."""
    return route_table(policy, apis=apis).to_json()
