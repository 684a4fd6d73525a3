"""Route keys (`METHOD /path`) in API Gateway syntax: `{name}` is one path segment, a final `{name+}` the greedy rest."""
from __future__ import annotations

import re
from dataclasses import dataclass

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
# RFC 3986 pchar without percent-encoding: what a literal path segment may hold.
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*,;=:@-]+")
_PARAMETER_SEGMENT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")

ROUTE_KEY_HELP = ('a route key is "METHOD /path": METHOD one of ' + ", ".join(METHODS)
                  + '; the path starts with "/", segments are literals, {name} (one segment) or a final {name+} '
                    '(the rest of the path), e.g. "GET /orders/{id}" or "ANY /files/{path+}"')


@dataclass(frozen=True)
class PathParameter:
    name: str
    greedy: bool


@dataclass(frozen=True)
class RouteKey:
    method: str
    path: str
    segments: tuple[str | PathParameter, ...]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def parameters(self) -> tuple[PathParameter, ...]:
        return tuple(s for s in self.segments if isinstance(s, PathParameter))

    @property
    def shape(self) -> tuple[str, ...]:
        """The path with parameter names erased: two routes with one shape are the same route to API Gateway."""
        return tuple(("{+}" if s.greedy else "{}") if isinstance(s, PathParameter) else s for s in self.segments)

    def conflicts_with(self, other: "RouteKey") -> bool:
        return self.shape == other.shape and (self.method == other.method)


def parse_route_key(text: str) -> RouteKey:
    """Parse and check a route key; ValueError says what is wrong and what a route key looks like."""
    if not isinstance(text, str):
        raise ValueError(f"route key must be a string; {ROUTE_KEY_HELP}")
    parts = text.split(" ")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"{text!r} is not a route key; {ROUTE_KEY_HELP}")
    method, path = parts
    if method not in METHODS:
        hint = f" (write it in upper case: {method.upper()!r})" if method.upper() in METHODS else ""
        raise ValueError(f"{text!r}: unknown method {method!r}{hint}; {ROUTE_KEY_HELP}")
    if not path.startswith("/"):
        raise ValueError(f"{text!r}: the path must start with '/'; {ROUTE_KEY_HELP}")
    if path == "/":
        return RouteKey(method, path, ())
    if path.endswith("/"):
        raise ValueError(f"{text!r}: remove the trailing '/' (API Gateway treats /a/ and /a as one route)")
    segments: list[str | PathParameter] = []
    seen: set[str] = set()
    raw_segments = path[1:].split("/")
    for index, raw in enumerate(raw_segments):
        if raw == "":
            raise ValueError(f"{text!r}: empty path segment ('//'); {ROUTE_KEY_HELP}")
        match = _PARAMETER_SEGMENT.fullmatch(raw)
        if match:
            name, greedy = match.group(1), bool(match.group(2))
            if greedy and index != len(raw_segments) - 1:
                raise ValueError(f"{text!r}: a greedy parameter {{{name}+}} must be the last segment")
            if name in seen:
                raise ValueError(f"{text!r}: path parameter {{{name}}} appears twice; give each a distinct name")
            seen.add(name)
            segments.append(PathParameter(name, greedy))
        elif "{" in raw or "}" in raw:
            raise ValueError(f"{text!r}: segment {raw!r} mixes text and a parameter; a parameter must be a whole "
                             f"segment like {{id}}")
        elif not _LITERAL_SEGMENT.fullmatch(raw):
            raise ValueError(f"{text!r}: segment {raw!r} has characters a path cannot hold unencoded; "
                             f"use letters, digits and -._~!$&'()*,;=:@")
        else:
            segments.append(raw)
    return RouteKey(method, path, tuple(segments))


# ---- WebSocket APIs -----------------------------------------------------------------------------------------------
# API Gateway runs a WebSocket API's authorizer on $connect only; every other route carries messages over a connection
# that $connect already authorized.
WEBSOCKET_CONNECT = "$connect"
WEBSOCKET_PREDEFINED_ROUTES = ("$connect", "$disconnect", "$default")
# A custom action key: the value the route selection expression (default $request.body.action) yields. Keys starting
# with '$' are reserved by API Gateway; the length bound is API Gateway's.
_ACTION_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}")

WEBSOCKET_ROUTE_KEY_HELP = ('a WebSocket route key is $connect, $disconnect, $default or a custom action name '
                            '(letters, digits and _.:/- , up to 128 characters, not starting with "$"), e.g. '
                            '"sendMessage"')


@dataclass(frozen=True)
class WebSocketRouteKey:
    key: str

    @property
    def is_connect(self) -> bool:
        return self.key == WEBSOCKET_CONNECT

    @property
    def is_custom_action(self) -> bool:
        return not self.key.startswith("$")


def parse_websocket_route_key(text: str) -> WebSocketRouteKey:
    """Check a WebSocket API route key; ValueError says what is wrong and what such keys look like."""
    if not isinstance(text, str):
        raise ValueError(f"route key must be a string; {WEBSOCKET_ROUTE_KEY_HELP}")
    if text.startswith("$"):
        if text not in WEBSOCKET_PREDEFINED_ROUTES:
            raise ValueError(f"{text!r} is not a WebSocket route key: of the keys starting with '$' API Gateway "
                             f"knows only {', '.join(WEBSOCKET_PREDEFINED_ROUTES)}; {WEBSOCKET_ROUTE_KEY_HELP}")
        return WebSocketRouteKey(text)
    if " " in text and text.split(" ", 1)[0] in METHODS:
        raise ValueError(f"{text!r} is an HTTP route key, but this API has protocol: websocket; "
                         f"{WEBSOCKET_ROUTE_KEY_HELP} (or put HTTP routes in an API of their own)")
    if not _ACTION_KEY.fullmatch(text):
        raise ValueError(f"{text!r} is not a WebSocket route key; {WEBSOCKET_ROUTE_KEY_HELP}")
    return WebSocketRouteKey(text)
