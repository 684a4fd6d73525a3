"""The deploy-time view of a rendered route table: which routes the gateway enforces natively, which go to Lambda.

The route table (format `authgate.routes/v1`, written by `authgate render routes`) is the one artefact every
gateway construct reads, so the constructs stay usable without the YAML policy model: hand them the table.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stacks.aws.refusals import (UnsupportedConfiguration, require_https_url, require_native_jwt_issuer,
                                 require_native_route_scopes)

ROUTE_TABLE_FORMAT = "authgate.routes/v1"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
ENFORCEMENTS = frozenset({"native", "lambda"})


@dataclass(frozen=True)
class IssuerPlan:
    name: str
    issuer: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    profile: str
    jwks_uri: str | None
    token_use: str | None
    max_token_age_seconds: int | None

    @property
    def jwks_endpoint(self) -> str:
        """Where the keys are: the table's jwks_uri, else Cognito's fixed location; other issuers must say."""
        if self.jwks_uri:
            return self.jwks_uri
        if self.profile == "cognito":
            return self.issuer.rstrip("/") + "/.well-known/jwks.json"
        raise UnsupportedConfiguration(
            f"issuer {self.name!r} has no jwks_uri and its key location cannot be derived at synth time; set "
            "`jwks_uri:` on the issuer in the policy (the jwks_uri of its /.well-known/openid-configuration)")


@dataclass(frozen=True)
class RoutePlan:
    route_key: str
    method: str
    path: str
    public: bool
    issuers: tuple[str, ...]
    scopes: tuple[str, ...]          # the any-of scopes a native JWT authorizer is configured with
    enforcement: str
    enforcement_reason: str
    # Everything the route demands of a token, comparable across routes.
    requirement: tuple = field(compare=False)

    @property
    def native(self) -> bool:
        return not self.public and self.enforcement == "native"

    @property
    def needs_lambda(self) -> bool:
        return not self.public and self.enforcement == "lambda"


@dataclass(frozen=True)
class ApiPlan:
    name: str
    routes: tuple[RoutePlan, ...]
    issuers: Mapping[str, IssuerPlan]
    table: Mapping = field(compare=False, repr=False)   # the whole route table, as the authorizer will read it

    @classmethod
    def from_route_table(cls, table: Mapping | str | Path, api: str) -> "ApiPlan":
        """Read one API out of a route table (a dict, or the path of the JSON file) and check it can be deployed."""
        if isinstance(table, (str, Path)):
            with open(table, encoding="utf-8") as handle:
                table = json.load(handle)
        if not isinstance(table, Mapping) or table.get("format") != ROUTE_TABLE_FORMAT:
            found = table.get("format") if isinstance(table, Mapping) else type(table).__name__
            raise UnsupportedConfiguration(
                f"route table format is {found!r}, expected {ROUTE_TABLE_FORMAT!r}; "
                "render it with `authgate render routes --policy FILE`")
        apis = table.get("apis") or {}
        if api not in apis:
            raise UnsupportedConfiguration(
                f"API {api!r} is not in the route table; it has: {', '.join(sorted(apis)) or 'no APIs'}")
        if (apis[api] or {}).get("protocol", "http") != "http":
            # Every HTTP and REST API construct takes an ApiPlan, so this one refusal covers them all.
            raise UnsupportedConfiguration(
                f"API {api!r} is a WebSocket API (protocol: {apis[api].get('protocol')}); the HTTP API and REST API "
                "constructs deploy HTTP routes only. Deploy it with stacks.aws.websocket_api (context "
                "authgate:websocket: {\"api\": \"" + api + "\"}) and set authgate:api to an HTTP API of the policy")
        issuers = issuer_plans(table)
        routes = tuple(_route_plan(entry, issuers) for entry in apis[api].get("routes") or ())
        if not routes:
            raise UnsupportedConfiguration(f"API {api!r} has no routes; add routes to it in the policy")
        seen: set[str] = set()
        for route in routes:
            if route.route_key in seen:
                raise UnsupportedConfiguration(f"route {route.route_key!r} appears twice in API {api!r}")
            seen.add(route.route_key)
        return cls(name=api, routes=routes, issuers=issuers, table=table)

    @property
    def native_routes(self) -> tuple[RoutePlan, ...]:
        return tuple(r for r in self.routes if r.native)

    @property
    def lambda_routes(self) -> tuple[RoutePlan, ...]:
        return tuple(r for r in self.routes if r.needs_lambda)

    @property
    def public_routes(self) -> tuple[RoutePlan, ...]:
        return tuple(r for r in self.routes if r.public)

    def issuers_used(self, routes: Sequence[RoutePlan]) -> tuple[IssuerPlan, ...]:
        names = sorted({name for route in routes for name in route.issuers})
        return tuple(self.issuers[name] for name in names)


def _strings(value, *, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise UnsupportedConfiguration(f"{where} must be a list of strings, got {value!r}")
    return tuple(value)


def issuer_plans(table: Mapping) -> dict[str, IssuerPlan]:
    """The route table's issuers, each checked for deployment (https, no local-development switch)."""
    return {name: _issuer_plan(name, spec) for name, spec in (table.get("issuers") or {}).items()}


def _issuer_plan(name: str, spec: Mapping) -> IssuerPlan:
    issuer = spec.get("issuer")
    require_https_url(issuer, what=f"issuer {name!r}")
    if spec.get("allow_insecure_http"):
        raise UnsupportedConfiguration(
            f"issuer {name!r} sets allow_insecure_http, which is for the local sandbox only; remove it before "
            "deploying to AWS")
    jwks_uri = spec.get("jwks_uri")
    if jwks_uri:
        require_https_url(jwks_uri, what=f"jwks_uri of issuer {name!r}")
    return IssuerPlan(
        name=name, issuer=issuer,
        audiences=_strings(spec.get("audiences"), where=f"issuers.{name}.audiences"),
        algorithms=_strings(spec.get("algorithms") or ("RS256",), where=f"issuers.{name}.algorithms"),
        profile=str(spec.get("profile") or "generic"), jwks_uri=jwks_uri, token_use=spec.get("token_use"),
        max_token_age_seconds=spec.get("max_token_age_seconds"))


def _route_plan(entry: Mapping, issuers: Mapping[str, IssuerPlan]) -> RoutePlan:
    route_key = entry.get("route_key", "")
    method, path = entry.get("method"), entry.get("path")
    if method not in HTTP_METHODS:
        raise UnsupportedConfiguration(f"route {route_key!r}: method {method!r} is not one of "
                                       f"{', '.join(sorted(HTTP_METHODS))}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsupportedConfiguration(f"route {route_key!r}: path {path!r} must start with '/'")
    public = bool(entry.get("public"))
    route_issuers = _strings(entry.get("issuers"), where=f"route {route_key!r} issuers")
    unknown = [name for name in route_issuers if name not in issuers]
    if unknown:
        raise UnsupportedConfiguration(f"route {route_key!r} names unknown issuer(s) {', '.join(unknown)}; "
                                       f"defined: {', '.join(sorted(issuers)) or 'none'}")
    if not public and not route_issuers:
        raise UnsupportedConfiguration(f"route {route_key!r} is not public and names no issuer; a gateway would "
                                       "have nothing to check tokens against")
    enforcement = entry.get("enforcement", "lambda")
    if enforcement not in ENFORCEMENTS:
        raise UnsupportedConfiguration(f"route {route_key!r}: enforcement {enforcement!r} is not native or lambda")
    scopes = _strings(entry.get("scopes"), where=f"route {route_key!r} scopes")
    lists = {key: tuple(sorted(_strings(entry.get(key), where=f"route {route_key!r} {key}")))
             for key in ("scopes_all", "roles", "roles_all", "groups", "groups_all")}
    claims = entry.get("claims") or {}
    if not isinstance(claims, Mapping):
        raise UnsupportedConfiguration(f"route {route_key!r} claims must be a mapping of claim -> allowed values")
    requirement = (route_issuers, tuple(sorted(scopes)), *lists.values(),
                   tuple(sorted((k, tuple(sorted(_strings(v, where=f"route {route_key!r} claims.{k}"))))
                                for k, v in claims.items())), entry.get("token_use"))
    # The native authorizer takes any-of scopes; a single all-of scope is the same rule.
    native_scopes = scopes or (lists["scopes_all"] if len(lists["scopes_all"]) == 1 else ())
    route = RoutePlan(route_key=route_key, method=method, path=path, public=public, issuers=route_issuers,
                      scopes=native_scopes, enforcement=enforcement,
                      enforcement_reason=str(entry.get("enforcement_reason") or ""), requirement=requirement)
    if route.native:
        # A route the gateway cannot fully enforce must never be deployed as native: it would let through
        # tokens the policy refuses.
        beyond_native = [key for key, values in lists.items() if values and key != "scopes_all"]
        if claims:
            beyond_native.append("claims")
        if len(lists["scopes_all"]) > 1 or (lists["scopes_all"] and scopes):
            beyond_native.append("scopes_all")
        if entry.get("token_use") == "id":
            beyond_native.append("token_use: id")
        if beyond_native:
            raise UnsupportedConfiguration(
                f"route {route_key!r} is marked native but requires {', '.join(beyond_native)}, which the HTTP API "
                "JWT authorizer cannot check; re-render the route table with `authgate render routes` (the "
                "compiler sends such routes to the Lambda authorizer)")
        if len(route_issuers) != 1:
            raise UnsupportedConfiguration(
                f"route {route_key!r} is marked native but names {len(route_issuers)} issuers; an HTTP API route "
                "has exactly one JWT authorizer. Re-render the route table (the compiler sends such routes to "
                "the Lambda authorizer)")
        only = issuers[route_issuers[0]]
        require_native_jwt_issuer(only.name, issuer=only.issuer, audiences=only.audiences,
                                  algorithms=only.algorithms)
        require_native_route_scopes(route_key, scopes)
    return route
