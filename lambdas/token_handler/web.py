"""The framework-neutral request and response the token handler core speaks, and the cookie rules it relies on.

The ASGI app and the HTTP API Lambda handler each translate their own shapes into these, so the core never knows
which one it runs under.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qs


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)      # lower-case names; repeats joined with ", "
    cookie_pairs: tuple[tuple[str, str], ...] = ()                # every name=value the browser sent, in order

    def query_param(self, name: str) -> str | None:
        """The parameter's single value; None when absent or given more than once (a repeated OAuth parameter is
        an error, RFC 6749 3.1)."""
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values and len(values) == 1 else None

    def has_query_param(self, name: str) -> bool:
        return name in parse_qs(self.query, keep_blank_values=True)

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies by name. A name sent twice is dropped altogether: a second copy is how a sibling subdomain
        plants a cookie (cookie tossing), and guessing which one is ours would be guessing."""
        return unique_cookies(self.cookie_pairs)


def unique_cookies(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Cookies by name, a name sent more than once dropped (see WebRequest.cookies)."""
    counts: dict[str, int] = {}
    for name, _ in pairs:
        counts[name] = counts.get(name, 0) + 1
    return {name: value for name, value in pairs if counts[name] == 1}


def parse_cookie_header(values: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """name=value pairs from one or more Cookie header values (RFC 6265 5.4: "; "-separated)."""
    pairs = []
    for header in values:
        for item in header.split(";"):
            name, sep, value = item.strip().partition("=")
            if sep and name:
                pairs.append((name, value))
    return tuple(pairs)


@dataclass
class WebResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)              # Set-Cookie values, one per cookie
    body: bytes = b""

    @classmethod
    def json(cls, status: int, document: Mapping, **headers: str) -> "WebResponse":
        body = json.dumps(document, separators=(",", ":")).encode()
        return cls(status, {"content-type": "application/json", "cache-control": "no-store", **headers}, [], body)

    @classmethod
    def redirect(cls, location: str) -> "WebResponse":
        return cls(302, {"location": location, "cache-control": "no-store"})

    @classmethod
    def page(cls, status: int, html: str) -> "WebResponse":
        return cls(status, {"content-type": "text/html; charset=utf-8", "cache-control": "no-store",
                            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'"},
                   [], html.encode())


def set_cookie(name: str, value: str, *, max_age: int, same_site: str) -> str:
    """A host-only, Secure, HttpOnly cookie: the `__Host-` prefix makes the browser refuse it unless it is exactly
    that (no Domain, Path=/, Secure), so a sibling subdomain cannot overwrite it."""
    return f"{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}; Max-Age={max_age}"


def clear_cookie(name: str, *, same_site: str = "Strict") -> str:
    return f"{name}=; Path=/; Secure; HttpOnly; SameSite={same_site}; Max-Age=0"


CSRF_HEADER = "x-authgate-csrf"
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_refusal(method: str, headers: Mapping[str, str], origin: str) -> str | None:
    """Why a cookie-authenticated request is refused as possibly cross-site, or None when it may proceed. Safe
    methods pass; a state-changing one must carry `X-Authgate-Csrf: 1` (a cross-site form cannot set a header, and
    a cross-site fetch cannot without a CORS preflight nobody grants) and come from `origin` (Origin, else
    Sec-Fetch-Site: same-origin). `headers` has lower-case names."""
    if method.upper() not in STATE_CHANGING_METHODS:
        return None
    if headers.get(CSRF_HEADER) != "1":
        return f"state-changing requests must carry the header {CSRF_HEADER}: 1"
    sent_origin = headers.get("origin")
    if sent_origin is not None:
        return None if sent_origin == origin else "the request comes from another origin"
    if headers.get("sec-fetch-site") == "same-origin":
        return None
    return "the request carries neither Origin nor Sec-Fetch-Site: same-origin"
