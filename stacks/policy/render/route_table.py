"""The route table renderer: policy -> the authgate.routes/v1 JSON that Lambda authorizers and guards read."""
from __future__ import annotations

import json
from typing import Any, Iterable

from stacks.policy.compiler import compile_policy
from stacks.policy.model import AuthPolicy, IssuerSpec

ROUTE_TABLE_FORMAT = "authgate.routes/v1"


def _issuer_entry(issuer: IssuerSpec, *, checks_revocation: bool) -> dict[str, Any]:
    entry = {
        "issuer": issuer.issuer,
        "audiences": list(issuer.audiences),
        "profile": issuer.profile,
        "algorithms": list(issuer.algorithms),
        "jwks_uri": issuer.effective_jwks_uri,
        "jwks": issuer.jwks,
        "token_use": issuer.accepted_token_use,
        "leeway_seconds": issuer.leeway_seconds,
        "max_token_age_seconds": issuer.max_token_age_seconds,
        "allow_insecure_http": issuer.local_development,
    }
    # Written only when in use, so a table without revocation or binding reads as it always has.
    if issuer.introspection is not None:
        entry["introspection"] = issuer.introspection.model_dump()
    if checks_revocation or issuer.revocation.logout_audiences:
        entry["revocation"] = issuer.revocation.model_dump()
    if issuer.binding.dpop or issuer.binding.mtls:
        entry["binding"] = issuer.binding.model_dump()
    return entry


def render_route_table(policy: AuthPolicy, *, apis: Iterable[str] | None = None) -> dict[str, Any]:
    """The route table for every API (or only `apis`), with bundled key sets inlined.

    Only the issuers the selected APIs' routes name are included, so an authorizer never trusts an issuer its API
    does not use. Key order is fixed (policy order), so the JSON is byte-stable across runs.

    A WebSocket API is written with "protocol": "websocket" (an HTTP API carries no protocol member, as before), its
    "$connect" route in "routes" (route_key "$connect", method and path null: route_table.py reads "$" keys without
    them), and its message routes ($disconnect, $default, custom actions) as route keys in "connection_routes": no
    authorizer runs on them, but a deployment needs them to create the routes.
    """
    compiled = compile_policy(policy)
    selected = list(policy.apis) if apis is None else list(apis)
    for name in selected:
        policy.api(name)  # a clear KeyError for an unknown API name
    used = {issuer for name in selected for route in policy.apis[name].routes.values() for issuer in route.issuers}
    on_denylist = {issuer for name in selected for route in policy.apis[name].routes.values()
                   if route.freshness == "denylist" for issuer in route.issuers}
    table: dict[str, Any] = {
        "format": ROUTE_TABLE_FORMAT,
        "issuers": {name: _issuer_entry(spec, checks_revocation=name in on_denylist)
                    for name, spec in policy.issuers.items() if name in used},
        "apis": {},
    }
    for name in selected:
        routes = []
        compiled_api = compiled.apis[name]
        for route in compiled_api.authorized_routes:
            spec = route.spec
            entry: dict[str, Any] = {"route_key": route.route_key, "method": route.method, "path": route.path,
                                     "public": route.public, "issuers": list(route.issuers)}
            entry.update(spec.requirement_fields)
            # Narrows an issuer that accepts either kind of token; null leaves the issuer's token_use in force.
            entry["token_use"] = None if spec.token_use in (None, "any") else spec.token_use
            entry["enforcement"] = route.enforcement
            entry["enforcement_reason"] = route.reason
            for check in ("freshness", "proof"):
                if getattr(spec, check) != "none":
                    entry[check] = getattr(spec, check)
            if spec.token_source != "header":
                entry["token_source"] = spec.token_source
            routes.append(entry)
        if compiled_api.protocol == "websocket":
            table["apis"][name] = {"protocol": "websocket", "routes": routes,
                                   "connection_routes": [r.route_key for r in compiled_api.websocket_message_routes]}
        else:
            table["apis"][name] = {"routes": routes}
    return table


def route_table_json(policy: AuthPolicy, *, apis: Iterable[str] | None = None) -> str:
    """The route table as the exact text `authgate render routes` writes (2-space indent, trailing newline)."""
    return json.dumps(render_route_table(policy, apis=apis), indent=2, ensure_ascii=False) + "\n"
