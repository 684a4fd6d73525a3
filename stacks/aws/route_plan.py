"""The deploy-time view of a rendered route table: which routes the gateway enforces natively, which go to Lambda.

The route table (format `authgate.routes/v1`, written by `authgate render routes`) is the one artefact every
gateway construct reads, so the constructs stay usable without the YAML policy model: hand them the table. It is
read with the runtime's own codec (lambdas/validation/route_table.py); this module adds only what a deployment
refuses on top (https issuers, no local-development switch, routes marked native that the native JWT authorizer
cannot enforce, by the one rule in lambdas/validation/native_gateway.py).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lambdas.validation.config import IssuerConfig
from lambdas.validation.native_gateway import native_blockers, native_scopes
from lambdas.validation.route_table import ApiRoutes, Route, RouteTable, RouteTableError
from stacks.aws.refusals import UnsupportedConfiguration, require_https_url, require_native_jwt_issuer


def load_route_table(table: Mapping | str | Path) -> RouteTable:
    """The route table (a dict, or the path of the JSON file), read as the authorizers read it."""
    try:
        return RouteTable.load(table)
    except RouteTableError as exc:
        raise UnsupportedConfiguration(str(exc)) from None


def api_of(loaded: RouteTable, api: str) -> ApiRoutes:
    if api not in loaded.apis:
        raise UnsupportedConfiguration(
            f"API {api!r} is not in the route table; it has: {', '.join(sorted(loaded.apis)) or 'no APIs'}")
    return loaded.apis[api]


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
    logout_audiences: tuple[str, ...] = ()   # revocation.logout_audiences: whose logout tokens are accepted
    binds_dpop: bool = False                 # binding.dpop: its tokens may carry cnf.jkt, whose proof any route checks

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
    token_source: str = "header"     # header | cookie (the token handler's session cookie)

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
    api: ApiRoutes = field(compare=False, repr=False)   # the same API, loaded
    # Whether its decisions need the shared revocation table (route_table.needs_shared_store: denylist or DPoP
    # routes, or an issuer that binds tokens, whose proofs any route checks).
    needs_shared_store: bool = field(default=False, compare=False)

    @classmethod
    def from_route_table(cls, table: Mapping | str | Path, api: str) -> "ApiPlan":
        """Read one API out of a route table (a dict, or the path of the JSON file) and check it can be deployed."""
        loaded = load_route_table(table)
        routes_of = api_of(loaded, api)
        if routes_of.protocol != "http":
            # Every HTTP and REST API construct takes an ApiPlan, so this one refusal covers them all.
            raise UnsupportedConfiguration(
                f"API {api!r} is a WebSocket API (protocol: {routes_of.protocol}); the HTTP API and REST API "
                "constructs deploy HTTP routes only. Deploy it with stacks.aws.websocket_api (context "
                "authgate:websocket: {\"api\": \"" + api + "\"}) and set authgate:api to an HTTP API of the policy")
        issuers = issuer_plans(loaded)
        routes = tuple(_route_plan(route, loaded.issuers) for route in routes_of.routes)
        if not routes:
            raise UnsupportedConfiguration(f"API {api!r} has no routes; add routes to it in the policy")
        return cls(name=api, routes=routes, issuers=issuers, api=routes_of,
                   needs_shared_store=loaded.needs_shared_store(api),
                   table=table if isinstance(table, Mapping) else loaded.to_document())

    @property
    def native_routes(self) -> tuple[RoutePlan, ...]:
        return tuple(r for r in self.routes if r.native)

    @property
    def lambda_routes(self) -> tuple[RoutePlan, ...]:
        return tuple(r for r in self.routes if r.needs_lambda)

    @property
    def public_routes(self) -> tuple[RoutePlan, ...]:
        return tuple(r for r in self.routes if r.public)

    @property
    def logout_issuers(self) -> tuple[str, ...]:
        """The issuers whose back-channel logout tokens the API's logout endpoint records (revocation.logout_audiences
        in the policy); none means the API gets no logout endpoint."""
        return tuple(name for name, issuer in sorted(self.issuers.items()) if issuer.logout_audiences)

    def issuers_used(self, routes: Sequence[RoutePlan]) -> tuple[IssuerPlan, ...]:
        names = sorted({name for route in routes for name in route.issuers})
        return tuple(self.issuers[name] for name in names)


def issuer_plans(loaded: RouteTable) -> dict[str, IssuerPlan]:
    """The route table's issuers, each checked for deployment (https, no local-development switch)."""
    return {name: _issuer_plan(name, config) for name, config in loaded.issuers.items()}


def _issuer_plan(name: str, config: IssuerConfig) -> IssuerPlan:
    require_https_url(config.issuer, what=f"issuer {name!r}")
    if config.allow_insecure_http:
        raise UnsupportedConfiguration(
            f"issuer {name!r} sets allow_insecure_http, which is for the local sandbox only; remove it before "
            "deploying to AWS")
    if config.jwks_uri:
        require_https_url(config.jwks_uri, what=f"jwks_uri of issuer {name!r}")
    return IssuerPlan(name=name, issuer=config.issuer, audiences=tuple(config.audiences),
                      algorithms=tuple(config.algorithms), profile=config.profile, jwks_uri=config.jwks_uri,
                      token_use=config.token_use, max_token_age_seconds=config.max_token_age_seconds,
                      logout_audiences=tuple(config.revocation.logout_audiences), binds_dpop=config.binding.dpop)


def _route_plan(route: Route, issuers: Mapping[str, IssuerConfig]) -> RoutePlan:
    if route.is_special:
        raise UnsupportedConfiguration(f"route {route.route_key!r} is not an HTTP route (METHOD /path); re-render "
                                       "the route table with `authgate render routes`")
    plan = RoutePlan(route_key=route.route_key, method=route.method, path=route.path, public=route.public,
                     issuers=route.issuers, scopes=native_scopes(route.requirement), enforcement=route.enforcement,
                     enforcement_reason=route.enforcement_reason, token_source=route.token_source)
    if plan.native:
        # A route the gateway cannot fully enforce must never be deployed as native: it would let through
        # tokens the policy refuses.
        blockers = native_blockers(route, issuers)
        if blockers:
            raise UnsupportedConfiguration(
                f"route {route.route_key!r} is marked native but {'; '.join(blockers)}. Re-render the route table "
                "with `authgate render routes` (the compiler sends such routes to the Lambda authorizer)")
        only = issuers[route.issuers[0]]
        require_native_jwt_issuer(route.issuers[0], issuer=only.issuer, audiences=only.audiences)
    return plan
