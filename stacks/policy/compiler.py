"""The policy compiler: for every route, which gateway mechanism enforces it (native JWT authorizer or Lambda) and why."""
from __future__ import annotations

from dataclasses import dataclass

from stacks.policy.enforcement import route_native_blockers, route_native_scopes
from stacks.policy.model import AuthPolicy, RouteSpec
from stacks.policy.route_keys import WEBSOCKET_CONNECT, parse_route_key

# The route table's vocabulary: "native" (the gateway's own JWT authorizer, or nothing for a public route) or
# "lambda" (the authorizer function reading the route table).
NATIVE = "native"
LAMBDA = "lambda"
# A WebSocket message route ($disconnect, $default, custom actions): no authorizer runs on it; it carries messages
# over a connection its API's $connect route authorized. Never written to the route table's routes.
CONNECTION = "connection"
WEBSOCKET_CONNECT_REASON = ("WebSocket APIs authorize on $connect with a Lambda REQUEST authorizer; there is no "
                            "native JWT authorizer for them")
WEBSOCKET_MESSAGE_REASON = ("WebSocket message route: API Gateway runs no authorizer here; the connection was "
                            "authorized once, on $connect")


@dataclass(frozen=True)
class CompiledRoute:
    api: str
    route_key: str
    method: str | None         # None for WebSocket routes (they have no method or path)
    path: str | None
    public: bool
    issuers: tuple[str, ...]
    enforcement: str
    reason: str
    # The any-of scopes a native JWT authorizer is configured with (empty for Lambda and public routes).
    native_scopes: tuple[str, ...]
    spec: RouteSpec

    @property
    def needs_native_authorizer(self) -> bool:
        return not self.public and self.enforcement == NATIVE

    @property
    def needs_lambda_authorizer(self) -> bool:
        return not self.public and self.enforcement == LAMBDA

    @property
    def is_websocket_message_route(self) -> bool:
        return self.enforcement == CONNECTION


@dataclass(frozen=True)
class CompiledApi:
    name: str
    routes: tuple[CompiledRoute, ...]
    protocol: str = "http"

    @property
    def authorized_routes(self) -> tuple[CompiledRoute, ...]:
        """The routes a gateway decides on (all of an HTTP API; a WebSocket API's $connect)."""
        return tuple(route for route in self.routes if not route.is_websocket_message_route)

    @property
    def websocket_message_routes(self) -> tuple[CompiledRoute, ...]:
        return tuple(route for route in self.routes if route.is_websocket_message_route)

    @property
    def needs_lambda_authorizer(self) -> bool:
        return any(route.needs_lambda_authorizer for route in self.routes)

    @property
    def native_issuers(self) -> tuple[str, ...]:
        """Issuers that need a native JWT authorizer on this API, in first-use order."""
        seen: dict[str, None] = {}
        for route in self.routes:
            if route.needs_native_authorizer:
                seen.setdefault(route.issuers[0], None)
        return tuple(seen)


@dataclass(frozen=True)
class CompiledPolicy:
    policy: AuthPolicy
    apis: dict[str, CompiledApi]

    def api(self, name: str) -> CompiledApi:
        try:
            return self.apis[name]
        except KeyError:
            raise KeyError(f"no API named {name!r}; the policy defines: {', '.join(self.apis)}") from None

    def describe(self) -> str:
        """One line a route: which mechanism enforces it and why (what `authgate synth` prints)."""
        lines = []
        for api in self.apis.values():
            lines.append(f"api {api.name}:" if api.protocol == "http" else f"api {api.name} ({api.protocol}):")
            width = max(len(route.route_key) for route in api.routes)
            for route in api.routes:
                mechanism = "public" if route.public else route.enforcement
                lines.append(f"  {route.route_key.ljust(width)}  {mechanism:<6}  {route.reason}")
        return "\n".join(lines)


def compile_websocket_route(api_name: str, route_key: str, route: RouteSpec) -> CompiledRoute:
    """$connect goes to the Lambda REQUEST authorizer (or nothing when public); other routes ride the connection."""
    common = dict(api=api_name, route_key=route_key, method=None, path=None, public=route.public,
                  issuers=tuple(route.issuers), native_scopes=(), spec=route)
    if route_key != WEBSOCKET_CONNECT:
        return CompiledRoute(**common, enforcement=CONNECTION, reason=WEBSOCKET_MESSAGE_REASON)
    if route.public:
        return CompiledRoute(**common, enforcement=NATIVE, reason="public: anyone may connect, so no authorizer")
    return CompiledRoute(**common, enforcement=LAMBDA, reason=WEBSOCKET_CONNECT_REASON)


def compile_route(policy: AuthPolicy, api_name: str, route_key: str, route: RouteSpec) -> CompiledRoute:
    if policy.api(api_name).is_websocket:
        return compile_websocket_route(api_name, route_key, route)
    key = parse_route_key(route_key)
    common = dict(api=api_name, route_key=key.key, method=key.method, path=key.path, public=route.public,
                  issuers=tuple(route.issuers), spec=route)
    if route.public:
        return CompiledRoute(**common, enforcement=NATIVE, native_scopes=(),
                             reason="public: no token needed, so no authorizer")
    blockers = route_native_blockers(policy, key.key, route)
    if route.enforcement == LAMBDA:
        why = "; ".join(blockers) if blockers else "the native JWT authorizer could enforce it"
        return CompiledRoute(**common, enforcement=LAMBDA, native_scopes=(),
                             reason=f"enforcement: lambda set in the policy ({why})")
    if blockers:
        # The loader already refused enforcement: native with blockers; auto falls back to the Lambda authorizer.
        return CompiledRoute(**common, enforcement=LAMBDA, native_scopes=(), reason="; ".join(blockers))
    scopes = route_native_scopes(route)
    issuer_name = route.issuers[0]
    issuer = policy.issuers[issuer_name]
    audience_claim = "client_id" if issuer.profile == "cognito" else "aud"
    checks = f"iss of {issuer_name}, {audience_claim}"
    checks += f", any of scopes {', '.join(scopes)}" if scopes else ""
    return CompiledRoute(**common, enforcement=NATIVE, native_scopes=scopes,
                         reason=f"native JWT authorizer: the route needs only {checks}")


def compile_policy(policy: AuthPolicy) -> CompiledPolicy:
    apis = {name: CompiledApi(name, tuple(compile_route(policy, name, key, route) for key, route in api.routes.items()),
                              protocol=api.protocol)
            for name, api in policy.apis.items()}
    return CompiledPolicy(policy=policy, apis=apis)
