"""The rendered route table (authgate.routes/v1): loading it, checking it, and matching requests to its routes.

Authorizers, backend guards and the sandbox all read the same JSON file that `authgate render routes` writes; this
module is the one place that knows its shape. Loading is strict (every field checked, unknown format refused) because
the Lambda reads it once at init and a mistake there must stop the function from starting, not surface as a
silently-open route. Path matching follows API Gateway: `{name}` matches one segment, a final `{name+}` one or more
segments, and when several routes match, the most specific wins (literal over `{name}` over `{name+}`, segment by
segment from the left, then an exact method over ANY).
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, Sequence, TypeVar

from .config import ROUTE_TABLE_ISSUER_FIELDS, IssuerConfig
from .records import Record, set_field
from .requirement import Requirement

FORMAT = "authgate.routes/v1"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
# WebSocket route keys ($connect, $disconnect, $default, custom action names) and the HTTP API catch-all.
SPECIAL_ROUTE_PREFIX = "$"

_REQUIREMENT_FIELDS = ("scopes", "scopes_all", "roles", "roles_all", "groups", "groups_all")
_ISSUER_FIELDS = frozenset(ROUTE_TABLE_ISSUER_FIELDS)
PROTOCOLS = ("http", "websocket")
FRESHNESS = ("none", "denylist", "introspect")
PROOFS = ("none", "dpop", "mtls")
DPOP_NONCES = ("none", "required")
# Where a route takes its access token from: the Authorization header, or the token handler's session cookie.
TOKEN_SOURCES = ("header", "cookie")

# Segment kinds, ordered by how specific API Gateway considers them when several routes match.
LITERAL, PARAM, GREEDY = 2, 1, 0


class RouteTableError(ValueError):
    """The route table file is missing, unreadable or malformed. The message names the file, the field and the fix."""


class PathTemplate(Record):
    """A route path in API Gateway syntax, compiled for matching: one (kind, literal) pair per segment."""

    __slots__ = ("path", "segments")

    def __init__(self, path: str, segments: tuple[tuple[int, str], ...]) -> None:
        set_field(self, "path", path)
        set_field(self, "segments", segments)

    @classmethod
    def parse(cls, path: str, *, where: str) -> "PathTemplate":
        if not isinstance(path, str) or not path.startswith("/"):
            raise RouteTableError(f"{where}: path must be a string starting with '/', found {path!r}")
        if path == "/":
            return cls(path, ())
        raw = path[1:].split("/")
        segments: list[tuple[int, str]] = []
        for index, segment in enumerate(raw):
            if not segment:
                raise RouteTableError(f"{where}: path {path!r} has an empty segment; remove the doubled or "
                                      f"trailing '/'")
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if name.endswith("+"):
                    if index != len(raw) - 1:
                        raise RouteTableError(f"{where}: greedy parameter {segment} must be the last segment of "
                                              f"{path!r}")
                    segments.append((GREEDY, name[:-1]))
                else:
                    segments.append((PARAM, name))
                if not segments[-1][1]:
                    raise RouteTableError(f"{where}: path {path!r} has a parameter without a name")
            elif "{" in segment or "}" in segment:
                raise RouteTableError(f"{where}: segment {segment!r} of {path!r} mixes text and a parameter; a "
                                      f"parameter is a whole segment like {{id}}")
            else:
                segments.append((LITERAL, segment))
        return cls(path, tuple(segments))

    @property
    def specificity(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.segments)

    @property
    def has_parameters(self) -> bool:
        return any(kind != LITERAL for kind, _ in self.segments)

    def matches(self, request_segments: Sequence[str]) -> bool:
        own = self.segments
        if own and own[-1][0] == GREEDY:
            if len(request_segments) < len(own):
                return False
        elif len(request_segments) != len(own):
            return False
        for (kind, literal), value in zip(own, request_segments):
            if kind == LITERAL and value != literal:
                return False
            if kind == GREEDY:
                return True
        return True

    def parameters(self, request_segments: Sequence[str]) -> dict[str, str]:
        """The path parameters of a request this template matches (a greedy one holds the rest of the path)."""
        values: dict[str, str] = {}
        for index, (kind, name) in enumerate(self.segments):
            if kind == GREEDY:
                values[name] = "/".join(request_segments[index:])
            elif kind == PARAM:
                values[name] = request_segments[index]
        return values

    def iam_resource_glob(self) -> str:
        """The path as an IAM resource pattern: every parameter becomes `*` (which in IAM also crosses '/')."""
        if not self.segments:
            return ""
        return "/".join("*" if kind != LITERAL else literal for kind, literal in self.segments)


def split_request_path(path: str) -> tuple[str, ...] | None:
    """A request path as API Gateway routes it: segments between '/', one trailing '/' ignored.

    None for a path with an empty segment (`//admin`, `/a//b`, `/a//`): what API Gateway routes those to is not
    verifiable offline, and reading `//admin` as `/admin` let a cached policy's `GET/*` admit what a fresh decision
    refused. Such a path matches no route (fails closed), and the IAM policies deny every ARN holding `//`."""
    body = path[1:] if path.startswith("/") else path
    if not body:
        return ()
    if body.endswith("/"):
        body = body[:-1]
    segments = tuple(body.split("/"))
    return None if "" in segments else segments


T = TypeVar("T")


class RouteMatch(Record, Generic[T]):
    """What a request was routed to: the entry's value, its template and the request's path parameters."""

    __slots__ = ("value", "template", "parameters")

    def __init__(self, value: T, template: PathTemplate | None, parameters: Mapping[str, str]) -> None:
        set_field(self, "value", value)
        set_field(self, "template", template)
        set_field(self, "parameters", parameters)


class Router(Generic[T]):
    """Selects among (method, PathTemplate, value) entries the one API Gateway would route a request to.

    The most specific path wins, compared segment by segment from the left (literal over {name} over {name+}); on
    equal paths an exact method wins over ANY; `catch_all` (the HTTP API's $default) takes what nothing else
    matches, except a path with an empty segment, which matches nothing (see `split_request_path`)."""

    __slots__ = ("_tree", "catch_all")

    def __init__(self, entries: Iterable[tuple[str, PathTemplate, T]], *, catch_all: T | None = None) -> None:
        self._tree: _RouteTree = _RouteTree()
        for method, template, value in entries:
            self._tree.add(method.upper(), template, value)
        self.catch_all = catch_all

    def select(self, method: str, path: str) -> RouteMatch[T] | None:
        segments = split_request_path(path)
        if segments is None:
            return None
        best = self._tree.find(method.upper(), segments, 0)
        if best is None:
            return None if self.catch_all is None else RouteMatch(self.catch_all, None, {})
        template, value = best
        return RouteMatch(value, template, template.parameters(segments))

    def match(self, method: str, path: str) -> T | None:
        found = self.select(method, path)
        return None if found is None else found.value


class _RouteTree:
    """Templates as a segment tree, so selecting a route costs the path's depth, not the number of routes.

    Searching a node's children literal first, then {name}, then {name+} finds the most specific match first: two
    templates matching one request first differ in kind at some segment, and the more specific kind there wins. Where
    a match ends, an exact method wins over ANY. Of equal templates with one method, the first added stays."""

    __slots__ = ("literal", "param", "ends", "greedy")

    def __init__(self) -> None:
        self.literal: dict[str, _RouteTree] = {}
        self.param: _RouteTree | None = None
        self.ends: dict[str, tuple[PathTemplate, Any]] = {}    # method -> entry whose template ends here
        self.greedy: dict[str, tuple[PathTemplate, Any]] = {}  # method -> entry whose {name+} takes the rest

    def add(self, method: str, template: PathTemplate, value: Any) -> None:
        node = self
        for kind, literal in template.segments:
            if kind == GREEDY:
                node.greedy.setdefault(method, (template, value))
                return
            if kind == LITERAL:
                node = node.literal.setdefault(literal, _RouteTree())
            else:
                if node.param is None:
                    node.param = _RouteTree()
                node = node.param
        node.ends.setdefault(method, (template, value))

    def find(self, method: str, segments: Sequence[str], index: int) -> tuple[PathTemplate, Any] | None:
        if index == len(segments):
            return self.ends.get(method) or self.ends.get("ANY")
        child = self.literal.get(segments[index])
        found = child.find(method, segments, index + 1) if child is not None else None
        if found is None and self.param is not None:
            found = self.param.find(method, segments, index + 1)
        if found is None and self.greedy:
            found = self.greedy.get(method) or self.greedy.get("ANY")
        return found


class Route(Record):
    """One route of an API: what a request to it must present. `public` routes need no token at all.

    template      None for special route keys such as $connect or $default
    freshness     none | denylist | introspect: re-check revocation on every call
    proof         none | dpop | mtls: proof of possession the caller must show
    token_source  header | cookie (the token handler's session cookie)
    dpop_nonce    none | required: DPoP proofs must carry the server's nonce (proof dpop)"""

    __slots__ = ("route_key", "method", "template", "public", "issuers", "requirement", "enforcement",
                 "enforcement_reason", "freshness", "proof", "token_source", "dpop_nonce", "_hash")

    def __init__(self, route_key: str, method: str, template: PathTemplate | None, public: bool,
                 issuers: tuple[str, ...], requirement: Requirement, enforcement: str, enforcement_reason: str = "",
                 freshness: str = "none", proof: str = "none", token_source: str = "header",
                 dpop_nonce: str = "none") -> None:
        set_field(self, "route_key", route_key)
        set_field(self, "method", method)
        set_field(self, "template", template)
        set_field(self, "public", public)
        set_field(self, "issuers", issuers)
        set_field(self, "requirement", requirement)
        set_field(self, "enforcement", enforcement)
        set_field(self, "enforcement_reason", enforcement_reason)
        set_field(self, "freshness", freshness)
        set_field(self, "proof", proof)
        set_field(self, "token_source", token_source)
        set_field(self, "dpop_nonce", dpop_nonce)
        # Routes are hashed whenever a set of satisfied routes is built or consulted: hash the fields once.
        set_field(self, "_hash", Record.__hash__(self))

    def __hash__(self) -> int:
        return self._hash

    @property
    def path(self) -> str:
        return self.template.path if self.template else self.route_key

    @property
    def is_special(self) -> bool:
        return self.template is None

    def matches(self, method: str, request_segments: Sequence[str]) -> bool:
        if self.template is None:
            return False
        if self.method != "ANY" and self.method != method.upper():
            return False
        return self.template.matches(request_segments)

    @property
    def needs_shared_store(self) -> bool:
        """Whether deciding this route writes or reads state every instance must share: DPoP replay records (proof
        dpop) or the denylist (freshness denylist)."""
        return self.proof == "dpop" or self.freshness == "denylist"

    @property
    def checked_per_request(self) -> bool:
        """Whether every request needs its own check beyond the token (a DPoP proof, the client certificate, the
        denylist or introspection): no cached authorizer answer may stand in for it."""
        return self.proof != "none" or self.freshness != "none"

    def admits_issuer(self, issuer_name: str | None) -> bool:
        """Whether a principal from the issuer named `issuer_name` may use this route at all."""
        return self.public or (issuer_name is not None and issuer_name in self.issuers)

    @classmethod
    def build(cls, route_key: str, *, public: bool, issuers: Sequence[str], requirement: Requirement,
              enforcement: str = "lambda", enforcement_reason: str = "", freshness: str = "none",
              proof: str = "none", token_source: str = "header", dpop_nonce: str = "none") -> "Route":
        """A route from its route key ("GET /orders/{id}", or a "$" key such as $connect); RouteTableError when
        the key is not one."""
        if route_key.startswith(SPECIAL_ROUTE_PREFIX):
            method, template = "ANY", None
        else:
            method, _, path = route_key.partition(" ")
            if method not in METHODS:
                raise RouteTableError(f"route {route_key!r}: the method must be one of {', '.join(sorted(METHODS))}")
            template = PathTemplate.parse(path, where=f"route {route_key!r}")
        return cls(route_key=route_key, method=method, template=template, public=public, issuers=tuple(issuers),
                   requirement=requirement, enforcement=enforcement, enforcement_reason=enforcement_reason,
                   freshness=freshness, proof=proof, token_source=token_source, dpop_nonce=dpop_nonce)

    def to_entry(self) -> dict[str, Any]:
        """This route's entry in the route table (what the loader reads back)."""
        entry: dict[str, Any] = {"route_key": self.route_key, "method": None if self.is_special else self.method,
                                 "path": None if self.is_special else self.path, "public": self.public,
                                 "issuers": list(self.issuers)}
        entry.update(self.requirement.to_route())
        entry["token_use"] = self.requirement.token_use   # null leaves the issuer's token_use in force
        entry["enforcement"] = self.enforcement
        entry["enforcement_reason"] = self.enforcement_reason
        # Written only when in use, so a table without revocation or proof checks reads as it always has.
        if self.freshness != "none":
            entry["freshness"] = self.freshness
        if self.proof != "none":
            entry["proof"] = self.proof
        if self.token_source != "header":
            entry["token_source"] = self.token_source
        if self.dpop_nonce != "none":
            entry["dpop_nonce"] = self.dpop_nonce
        return entry


class ApiRoutes(Record):
    """The routes of one API, in table order, with lookups by route key and by request.

    protocol           http | websocket
    connection_routes  a WebSocket API's message routes ($disconnect, $default, actions): no authorizer runs on
                       them, but a deployment creates them"""

    __slots__ = ("name", "routes", "protocol", "connection_routes", "_by_key", "_derived")

    def __init__(self, name: str, routes: tuple[Route, ...], protocol: str = "http",
                 connection_routes: tuple[str, ...] = ()) -> None:
        set_field(self, "name", name)
        set_field(self, "routes", routes)
        set_field(self, "protocol", protocol)
        set_field(self, "connection_routes", connection_routes)
        set_field(self, "_by_key", {route.route_key: route for route in routes})
        set_field(self, "_derived", {})

    @classmethod
    def of(cls, name: str, routes: Iterable[Route], *, protocol: str = "http",
           connection_routes: Iterable[str] = ()) -> "ApiRoutes":
        """The API's routes in order; RouteTableError for a route key given twice or an unknown protocol."""
        by_key: dict[str, Route] = {}
        for route in routes:
            if route.route_key in by_key:
                raise RouteTableError(f"API {name!r}: route key {route.route_key!r} appears twice")
            by_key[route.route_key] = route
        if protocol not in PROTOCOLS:
            raise RouteTableError(f"API {name!r}: protocol must be one of {', '.join(PROTOCOLS)}, found {protocol!r}")
        return cls(name, tuple(by_key.values()), protocol, tuple(connection_routes))

    def to_entry(self) -> dict[str, Any]:
        """This API's entry in the route table. An HTTP API carries no protocol member (tables always read so)."""
        routes = [route.to_entry() for route in self.routes]
        if self.protocol == "http":
            return {"routes": routes}
        return {"protocol": self.protocol, "routes": routes, "connection_routes": list(self.connection_routes)}

    @property
    def needs_shared_store(self) -> bool:
        """Whether deciding this API's requests writes or reads state every instance must share: DPoP replay
        records (a dpop route), the denylist (a denylist route)."""
        return any(route.needs_shared_store for route in self.routes)

    @property
    def needs_dpop_nonces(self) -> bool:
        """Whether a route of this API requires server-provided DPoP nonces (so its entry points need the key)."""
        return any(route.dpop_nonce == "required" for route in self.routes)

    def route(self, route_key: str) -> Route | None:
        """The route with exactly this route key (HTTP API and WebSocket events carry it), or None."""
        return self._by_key.get(route_key)

    def match(self, method: str, path: str) -> Route | None:
        """The route API Gateway would send `method path` to, or None when no route matches (see `Router`; a
        `$default` route is the catch-all)."""
        return self.router.match(method, path)

    @property
    def router(self) -> "Router[Route]":
        return self.derived("router", lambda: Router(((r.method, r.template, r) for r in self.routes
                                                      if r.template is not None),
                                                     catch_all=self._by_key.get("$default")))

    def derived(self, name: str, build: Callable[[], T]) -> T:
        """What `build()` computes from these routes (the router, the route decision's index of permissions),
        computed once: the routes never change."""
        value = self._derived.get(name)
        if value is None:
            value = self._derived[name] = build()
        return value


def needs_shared_store(api: ApiRoutes, issuers: Iterable[IssuerConfig]) -> bool:
    """Whether deciding `api`'s requests reads or writes state every instance must share: what its routes need
    (ApiRoutes.needs_shared_store), or the replay records of DPoP proofs, which a token bound by any issuer of its
    routes brings with it on every route (its proof is checked wherever it is presented). The one rule the entry
    points (which refuse to start without a shared store where instances share no memory), the stacks (which create
    the table) and the in-cluster renderer (which wires it) all read. Stops at the first need: it runs at every
    authorizer's init."""
    return next(_shared_store_needs(api, issuers), None) is not None


def shared_store_reasons(api: ApiRoutes, issuers: Iterable[IssuerConfig]) -> list[str]:
    """Why `api` needs a shared store, one reason per route or issuer (empty: it does not), for refusals."""
    reasons = []
    for need in _shared_store_needs(api, issuers):
        if isinstance(need, Route):
            reasons.append(f"{need.route_key}: " + ", ".join(
                ([f"proof {need.proof}"] if need.proof == "dpop" else []) +
                ([f"freshness {need.freshness}"] if need.freshness == "denylist" else [])))
        else:
            reasons.append(f"issuer {need.display_name} binds tokens (binding.dpop)")
    return reasons


def _shared_store_needs(api: ApiRoutes, issuers: Iterable[IssuerConfig]) -> Iterator[Route | IssuerConfig]:
    """Each route of `api` that needs the shared store, then each issuer of its routes that binds tokens: the rule."""
    yield from (route for route in api.routes if route.needs_shared_store)
    used = {name for route in api.routes for name in route.issuers}
    yield from (issuer for issuer in issuers if issuer.binding.dpop and issuer.display_name in used)


class RouteTable:
    """A loaded route table: issuer configurations and the routes of each API."""

    def __init__(self, issuers: Mapping[str, IssuerConfig], apis: Mapping[str, ApiRoutes], *, source: str) -> None:
        self.issuers = dict(issuers)
        self.apis = dict(apis)
        self.source = source

    @classmethod
    def load(cls, path_or_dict: str | os.PathLike | Mapping[str, Any]) -> "RouteTable":
        """Read and check a route table from a JSON file path or an already-parsed dict."""
        if isinstance(path_or_dict, Mapping):
            return cls._from_document(path_or_dict, source="<route table dict>")
        source = os.fspath(path_or_dict)
        try:
            with open(source, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            raise RouteTableError(f"route table {source!r} does not exist; write it with "
                                  f"`authgate render routes --policy FILE` and bundle it with the function") from None
        except OSError as exc:
            raise RouteTableError(f"route table {source!r} cannot be read: {exc.strerror}") from None
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RouteTableError(f"route table {source!r} is not valid JSON ({exc}); regenerate it with "
                                  f"`authgate render routes`") from None
        except RecursionError:
            raise RouteTableError(f"route table {source!r} is nested too deeply to be a route table; regenerate it "
                                  f"with `authgate render routes`") from None
        return cls._from_document(document, source=source)

    @classmethod
    def _from_document(cls, document: Any, *, source: str) -> "RouteTable":
        if not isinstance(document, Mapping):
            raise RouteTableError(f"{source}: the route table must be a JSON object")
        found_format = document.get("format")
        if found_format != FORMAT:
            raise RouteTableError(f"{source}: format is {found_format!r}, this code reads {FORMAT!r}; regenerate the "
                                  f"table with `authgate render routes --policy FILE` of the authgate version that "
                                  f"deploys it")
        issuers_doc = _mapping(document.get("issuers"), f"{source}: issuers")
        issuers = {name: _issuer_config(name, spec, f"{source}: issuers.{name}")
                   for name, spec in issuers_doc.items()}
        apis_doc = _mapping(document.get("apis"), f"{source}: apis")
        apis = {name: _api_routes(name, spec, issuers, f"{source}: apis.{name}") for name, spec in apis_doc.items()}
        return cls(issuers, apis, source=source)

    def api(self, name: str) -> ApiRoutes:
        try:
            return self.apis[name]
        except KeyError:
            known = ", ".join(sorted(self.apis)) or "none"
            raise RouteTableError(f"{self.source}: no API named {name!r} (the table has: {known}); set the API name "
                                  f"to one of those") from None

    def needs_shared_store(self, api_name: str) -> bool:
        """`needs_shared_store` for the API named `api_name` and this table's issuers."""
        return needs_shared_store(self.api(api_name), self.issuers.values())

    def to_document(self) -> dict[str, Any]:
        """The route table as JSON-ready data: what `load` reads back, key order fixed (byte-stable output)."""
        on_denylist = {name for api in self.apis.values() for route in api.routes if route.freshness == "denylist"
                       for name in route.issuers}
        return {"format": FORMAT,
                "issuers": {name: config.to_route_table(checks_revocation=name in on_denylist)
                            for name, config in self.issuers.items()},
                "apis": {name: api.to_entry() for name, api in self.apis.items()}}

    def to_json(self) -> str:
        """The exact text `authgate render routes` writes (2-space indent, trailing newline)."""
        return json.dumps(self.to_document(), indent=2, ensure_ascii=False) + "\n"

    def verifier(self, **verifier_options: Any):
        """A Verifier over every issuer of the table (options such as clock or fetcher go to the Verifier)."""
        from .verifier import Verifier  # the crypto stack loads only when a verifier is wanted
        return Verifier(list(self.issuers.values()), **verifier_options)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RouteTableError(f"{where} must be a JSON object, found {type(value).__name__}")
    return value


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise RouteTableError(f"{where} must be a list of non-empty strings, found {value!r}")
    return tuple(value)


def _issuer_config(name: str, spec: Any, where: str) -> IssuerConfig:
    spec = _mapping(spec, where)
    unknown = sorted(set(spec) - _ISSUER_FIELDS)
    if unknown:
        raise RouteTableError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(sorted(_ISSUER_FIELDS))}")
    issuer = spec.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise RouteTableError(f"{where}.issuer must be the issuer URL (the tokens' iss), found {issuer!r}")
    _string_list(spec.get("audiences"), f"{where}.audiences")
    for key in ("allow_insecure_http", "require_exp"):
        if spec.get(key) is not None and not isinstance(spec[key], bool):
            raise RouteTableError(f"{where}.{key} must be true or false, found {spec[key]!r}")
    if spec.get("jwks") is not None and not isinstance(_mapping(spec["jwks"], f"{where}.jwks").get("keys"), list):
        raise RouteTableError(f'{where}.jwks must be a JWKS object with a "keys" list')
    try:
        return IssuerConfig.from_route_table(name, spec)
    except (TypeError, ValueError) as exc:
        raise RouteTableError(f"{where}: {exc}") from None


def _api_routes(name: str, spec: Any, issuers: Mapping[str, IssuerConfig], where: str) -> ApiRoutes:
    spec = _mapping(spec, where)
    unknown = sorted(set(spec) - {"routes", "protocol", "connection_routes"})
    if unknown:
        raise RouteTableError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: connection_routes, "
                              f"protocol, routes")
    routes_doc = spec.get("routes")
    if not isinstance(routes_doc, list):
        raise RouteTableError(f"{where}.routes must be a list of route objects")
    routes = [_route(entry, issuers, f"{where}.routes[{index}]") for index, entry in enumerate(routes_doc)]
    connection_routes = _string_list(spec.get("connection_routes"), f"{where}.connection_routes")
    if connection_routes and spec.get("protocol") != "websocket":
        raise RouteTableError(f"{where}.connection_routes belong to a WebSocket API (protocol: websocket)")
    try:
        return ApiRoutes.of(name, routes, protocol=spec.get("protocol", "http"), connection_routes=connection_routes)
    except RouteTableError as exc:
        raise RouteTableError(f"{where}: {exc}") from None


def _route(entry: Any, issuers: Mapping[str, IssuerConfig], where: str) -> Route:
    entry = _mapping(entry, where)
    route_key = entry.get("route_key")
    if not isinstance(route_key, str) or not route_key:
        raise RouteTableError(f"{where}.route_key must be a string like \"GET /orders/{{id}}\", found {route_key!r}")
    where = f"{where} ({route_key})"
    public = entry.get("public", False)
    if not isinstance(public, bool):
        raise RouteTableError(f"{where}.public must be true or false, found {public!r}")
    route_issuers = _string_list(entry.get("issuers"), f"{where}.issuers")
    unknown = [issuer for issuer in route_issuers if issuer not in issuers]
    if unknown:
        raise RouteTableError(f"{where}.issuers names {', '.join(unknown)}, which the table's issuers section does "
                              f"not define (defined: {', '.join(sorted(issuers)) or 'none'})")
    if not public and not route_issuers:
        raise RouteTableError(f"{where}: a non-public route must name at least one issuer; mark it public: true "
                              f"if it needs no token")
    for key in _REQUIREMENT_FIELDS:
        _string_list(entry.get(key), f"{where}.{key}")
    claims = entry.get("claims") or {}
    claims = _mapping(claims, f"{where}.claims")
    for claim, allowed in claims.items():
        _string_list(allowed, f"{where}.claims.{claim}")
    enforcement = entry.get("enforcement", "lambda")
    if enforcement not in ("native", "lambda"):
        raise RouteTableError(f"{where}.enforcement must be \"native\" or \"lambda\", found {enforcement!r}")
    reason = entry.get("enforcement_reason") or ""
    if not route_key.startswith(SPECIAL_ROUTE_PREFIX):
        method = entry.get("method")
        path = entry.get("path")
        if method is None and path is None and " " in route_key:
            method, path = route_key.split(" ", 1)
        if method not in METHODS:
            raise RouteTableError(f"{where}.method must be one of {', '.join(sorted(METHODS))}, found {method!r}")
        PathTemplate.parse(path, where=where)
        if route_key != f"{method} {path}":
            raise RouteTableError(f"{where}: route_key does not agree with method {method!r} and path {path!r}")
    freshness = entry.get("freshness", "none")
    if freshness not in FRESHNESS:
        raise RouteTableError(f"{where}.freshness must be one of {', '.join(FRESHNESS)}, found {freshness!r}")
    proof = entry.get("proof", "none")
    if proof not in PROOFS:
        raise RouteTableError(f"{where}.proof must be one of {', '.join(PROOFS)}, found {proof!r}")
    dpop_nonce = entry.get("dpop_nonce", "none")
    if dpop_nonce not in DPOP_NONCES:
        raise RouteTableError(f"{where}.dpop_nonce must be one of {', '.join(DPOP_NONCES)}, found {dpop_nonce!r}")
    if dpop_nonce != "none" and proof != "dpop":
        raise RouteTableError(f"{where}: dpop_nonce {dpop_nonce} applies to DPoP proofs, and the route has proof "
                              f"{proof}")
    token_source = entry.get("token_source", "header")
    if token_source not in TOKEN_SOURCES:
        raise RouteTableError(f"{where}.token_source must be one of {', '.join(TOKEN_SOURCES)}, found "
                              f"{token_source!r}")
    for name in route_issuers:
        issuer = issuers[name]
        if freshness == "introspect" and issuer.introspection is None:
            raise RouteTableError(f"{where}: freshness introspect needs issuer {name} to have introspection settings")
        if proof != "none" and not getattr(issuer.binding, proof):
            raise RouteTableError(f"{where}: proof {proof} needs issuer {name} to bind its tokens (binding.{proof})")
    try:
        requirement = Requirement.from_route(entry)
    except (TypeError, ValueError) as exc:
        raise RouteTableError(f"{where}: {exc}") from None
    return Route.build(route_key, public=public, issuers=route_issuers, requirement=requirement,
                       enforcement=enforcement, enforcement_reason=str(reason), freshness=freshness, proof=proof,
                       token_source=token_source, dpop_nonce=dpop_nonce)


__all__ = ["FORMAT", "needs_shared_store", "shared_store_reasons", "LITERAL", "PARAM", "GREEDY", "RouteTable", "RouteTableError", "ApiRoutes", "Route", "PathTemplate",
           "Router", "RouteMatch", "split_request_path"]
