"""Which request a proxy is asking about: the forward-auth header conventions, read strictly.

A proxy that delegates authentication sends the decision service a check request describing the client's request:
  nginx    NGINX `auth_request`: `X-Original-Method` and `X-Original-URI` (set by the rendered server block)
  traefik  Traefik ForwardAuth (and others copying it): `X-Forwarded-Method` and `X-Forwarded-Uri`
  envoy    Envoy / Envoy Gateway / Istio HTTP `ext_authz`: the check request keeps the client's method, and its path
           is the client's path appended to the service's path prefix (e.g. `/ext-authz/orders/42`)
`auto` accepts any of them, and refuses a check request in which two conventions describe different requests: a
client may add its own `X-Forwarded-Uri` next to the `X-Original-URI` its proxy sets, and which one counts must
never be the client's choice. A convention header sent twice is refused for the same reason.

The path decided on must be the path the backend will route. A dot segment or an encoded '/' or '\\' could be read
one way here and another way by a proxy or framework that normalises it (a public `/public/{proxy+}` route reached
as `/public/..%2Forders`), so such paths are refused rather than decided.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import unquote

CONVENTIONS = ("auto", "nginx", "traefik", "envoy")
DEFAULT_ENVOY_PATH_PREFIX = "/ext-authz"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"})
MAX_URI_LENGTH = 8192

_HEADER_PAIRS = {"nginx": ("x-original-method", "x-original-uri"),
                 "traefik": ("x-forwarded-method", "x-forwarded-uri")}
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)


class BadCheckRequest(ValueError):
    """The check request does not say unambiguously which request to decide (answered 400, never allowed)."""


@dataclass(frozen=True)
class OriginalRequest:
    """The client's request as the proxy described it: method, path (no query) and which convention said so."""

    method: str
    path: str
    convention: str


def single_header(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The one value of header `name` (None when absent); BadCheckRequest when it arrived more than once."""
    values = headers.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadCheckRequest(f"the {name} header appears more than once; the proxy must send exactly one")
    return values[0]


def _checked(method: str, uri: str, convention: str) -> OriginalRequest:
    method = method.strip().upper()
    if method not in METHODS:
        raise BadCheckRequest(f"{convention}: the original method {method[:20]!r} is not an HTTP method")
    if len(uri) > MAX_URI_LENGTH:
        raise BadCheckRequest(f"{convention}: the original URI is longer than {MAX_URI_LENGTH} characters")
    path = uri.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise BadCheckRequest(f"{convention}: the original URI must be an absolute path starting with '/', found "
                              f"{path[:60]!r}")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in path):
        raise BadCheckRequest(f"{convention}: the original path contains a space or control character")
    if _ENCODED_SEPARATOR.search(path):
        raise BadCheckRequest(f"{convention}: the original path contains an encoded '/' or '\\' (%2F, %5C), which "
                              f"proxies and backends split differently; refused")
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise BadCheckRequest(f"{convention}: the original path contains a '.' or '..' segment, which proxies and "
                              f"backends resolve differently; refused")
    return OriginalRequest(method, path, convention)


def original_request(method: str, path: str, headers: Mapping[str, Sequence[str]], *, convention: str = "auto",
                     envoy_path_prefix: str = DEFAULT_ENVOY_PATH_PREFIX) -> OriginalRequest:
    """The request to decide, from the check request's own method and path and its headers (lower-case names ->
    every value received). Raises BadCheckRequest when the conventions allowed by `convention` do not name exactly
    one request."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown forward-auth convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    found: list[OriginalRequest] = []
    for name, (method_header, uri_header) in _HEADER_PAIRS.items():
        if convention not in ("auto", name):
            continue
        original_method, original_uri = single_header(headers, method_header), single_header(headers, uri_header)
        if original_method is None and original_uri is None:
            continue
        if original_method is None or original_uri is None:
            raise BadCheckRequest(f"{name}: {method_header} and {uri_header} must be sent together; only "
                                  f"{uri_header if original_method is None else method_header} arrived")
        found.append(_checked(original_method, original_uri, name))
    if convention in ("auto", "envoy") and not found:
        prefix = envoy_path_prefix.rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            found.append(_checked(method, path[len(prefix):] or "/", "envoy"))
    if not found:
        expected = {"auto": "X-Original-Method/X-Original-URI, X-Forwarded-Method/X-Forwarded-Uri, or a path under "
                            f"{envoy_path_prefix}",
                    "envoy": f"a path under {envoy_path_prefix}"}.get(convention,
                                                                       " and ".join(_HEADER_PAIRS.get(convention, ())))
        raise BadCheckRequest(f"the check request does not describe the original request; send {expected}")
    first = found[0]
    for other in found[1:]:
        if (other.method, other.path) != (first.method, first.path):
            raise BadCheckRequest(f"the {first.convention} and {other.convention} headers describe different "
                                  f"requests; the proxy must set one convention and drop client copies")
    return first
