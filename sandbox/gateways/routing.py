"""How each emulated gateway routes a request: the runtime's `Router` (lambdas/validation/route_table.py) over the
gateway's own template syntax, so the sandbox never routes a request differently from the deployed authorizers.

What differs between the gateways is said here once, and only here:
  aws-http-api     API Gateway syntax (`{name}`, a final `{name+}`), methods including ANY, a `$default` catch-all
  aws-rest-api     API Gateway syntax, ANY, no catch-all (an unmatched request is "Missing Authentication Token")
  azure-apim       URL templates: `{name}` one segment, a final `*` the rest; one operation per method (no ANY)
  gcp-api-gateway  OpenAPI paths: `{name}` one segment, a final `{name=**}` the rest; one operation per method
Precedence among matching routes is the runtime's for all of them: the most specific path (literal over one
segment over the rest, from the left), then an exact method over ANY.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

from lambdas.validation.route_table import GREEDY, LITERAL, PARAM, PathTemplate, Router

T = TypeVar("T")

HTTP_API, REST_API, APIM, GCP_API_GATEWAY = "aws-http-api", "aws-rest-api", "azure-apim", "gcp-api-gateway"
HTTP_API_CATCH_ALL = "$default"


class RoutingError(ValueError):
    """A gateway template the emulators cannot read (and the renderers never write)."""


def _segments(path: str, read: Callable[[str], tuple[int, str]]) -> PathTemplate:
    if not isinstance(path, str) or not path.startswith("/"):
        raise RoutingError(f"path template {path!r} must start with '/'")
    body = path.strip("/")
    segments = tuple(read(segment) for segment in body.split("/")) if body else ()
    if any(kind == GREEDY for kind, _ in segments[:-1]):
        raise RoutingError(f"path template {path!r}: only the last segment may match the rest of the path")
    return PathTemplate(path, segments)


def _api_gateway_segment(segment: str) -> tuple[int, str]:
    match = re.fullmatch(r"\{([^{}+]+)(\+)?\}", segment)
    if match:
        return (GREEDY if match.group(2) else PARAM, match.group(1))
    return _literal(segment)


def _apim_segment(segment: str) -> tuple[int, str]:
    if segment == "*":
        return (GREEDY, "*")
    match = re.fullmatch(r"\{([^{}*]+)\}", segment)
    return (PARAM, match.group(1)) if match else _literal(segment)


def _openapi_segment(segment: str) -> tuple[int, str]:
    match = re.fullmatch(r"\{([^{}=]+)(?:=(\*\*?))?\}", segment)
    if match:
        return (GREEDY if match.group(2) == "**" else PARAM, match.group(1))
    return _literal(segment)


def _literal(segment: str) -> tuple[int, str]:
    if not segment or "{" in segment or "}" in segment:
        raise RoutingError(f"path segment {segment!r} is neither a literal nor a whole-segment parameter")
    return (LITERAL, segment)


@dataclass(frozen=True)
class GatewayRouting:
    """One gateway's template syntax and whether it has ANY and a catch-all route."""

    name: str
    read_segment: Callable[[str], tuple[int, str]]
    any_method: bool
    catch_all: str | None

    def template(self, path: str) -> PathTemplate:
        return _segments(path, self.read_segment)

    def router(self, entries: Iterable[tuple[str, str, T]], *, catch_all: T | None = None) -> Router[T]:
        """A router over (method, path template in this gateway's syntax, value) entries."""
        if catch_all is not None and self.catch_all is None:
            raise RoutingError(f"{self.name} has no catch-all route")
        built = []
        for method, path, value in entries:
            if method.upper() == "ANY" and not self.any_method:
                raise RoutingError(f"{self.name} has no ANY method; {path!r} must name one method an operation")
            built.append((method, self.template(path), value))
        return Router(built, catch_all=catch_all)


GATEWAYS = {g.name: g for g in (
    GatewayRouting(HTTP_API, _api_gateway_segment, any_method=True, catch_all=HTTP_API_CATCH_ALL),
    GatewayRouting(REST_API, _api_gateway_segment, any_method=True, catch_all=None),
    GatewayRouting(APIM, _apim_segment, any_method=False, catch_all=None),
    GatewayRouting(GCP_API_GATEWAY, _openapi_segment, any_method=False, catch_all=None),
)}
