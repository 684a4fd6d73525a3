"""The HTTP API authorizer's identity sources: when caching is on, which sources keep a cached answer from leaking.

API Gateway caches an HTTP API Lambda authorizer's answer keyed by its identity sources. A simple response
(`isAuthorized: true`) carries no route: if two routes need different things and the cache key is only the token, a
token allowed on `GET /orders` would be let through `DELETE /orders/{id}` from the cache. Adding `$context.routeKey`
to the identity sources makes the cache per route. The CDK construct calls `http_api_identity_sources` to build the
list; the handler calls `check_http_api_identity_sources` at init (the construct passes the same settings through
AUTHGATE_RESULT_TTL_SECONDS and AUTHGATE_IDENTITY_SOURCES), so the rule holds even if the construct is bypassed.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from lambdas.validation.route_table import ApiRoutes, Route

ROUTE_KEY_SOURCE = "$context.routeKey"
DEFAULT_TOKEN_SOURCE = "$request.header.Authorization"


def requirements_differ(routes: Iterable[Route]) -> bool:
    """Whether two protected routes ask for different things (issuers or requirement): then a cached simple
    response for one must never answer for another."""
    seen = {("public",) if route.public else (route.issuers, route.requirement) for route in routes}
    return len(seen) > 1


def http_api_identity_sources(api: ApiRoutes | Sequence[Route], *, result_ttl_seconds: int,
                              response: str = "simple", token_source: str = DEFAULT_TOKEN_SOURCE) -> list[str]:
    """The identity sources for an HTTP API Lambda authorizer protecting `api`'s routes.

    `response` is "simple" or "iam". IAM responses are policies that already cover every route, so they need no
    route key; simple responses do whenever results are cached and the routes differ.
    """
    routes = api.routes if isinstance(api, ApiRoutes) else tuple(api)
    if response not in ("simple", "iam"):
        raise ValueError(f"response must be 'simple' or 'iam', found {response!r}")
    if not isinstance(result_ttl_seconds, int) or isinstance(result_ttl_seconds, bool) or result_ttl_seconds < 0:
        raise ValueError(f"result_ttl_seconds must be a non-negative integer, found {result_ttl_seconds!r}")
    sources = [token_source]
    if result_ttl_seconds > 0 and response == "simple" and requirements_differ(routes):
        sources.append(ROUTE_KEY_SOURCE)
    return sources


def check_http_api_identity_sources(api: ApiRoutes, identity_sources: Sequence[str], *, result_ttl_seconds: int,
                                    response: str = "simple") -> None:
    """Raise ValueError when this caching setup would let one route's cached answer serve another route."""
    needed = http_api_identity_sources(api, result_ttl_seconds=result_ttl_seconds, response=response)
    if ROUTE_KEY_SOURCE in needed and ROUTE_KEY_SOURCE not in identity_sources:
        raise ValueError(f"API {api.name!r}: results are cached for {result_ttl_seconds}s with simple responses and "
                         f"its routes need different things, so the identity sources must include "
                         f"{ROUTE_KEY_SOURCE} (found {', '.join(identity_sources) or 'none'}); use "
                         f"http_api_identity_sources() to build them, or disable caching")
