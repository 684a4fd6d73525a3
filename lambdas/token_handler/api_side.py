"""The API side of browser sign-in: an authorizer or guard whose route takes its token from the session cookie.

The access token inside the sealed session is then verified exactly as a bearer token would be; this module only
gets it out of the cookie, and refuses a state-changing request that may be cross-site (web.csrf_refusal), because a
cookie, unlike an Authorization header, is attached by the browser to requests another site starts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .core import open_session
from .sealing import CookieKeys
from .web import csrf_refusal, parse_cookie_header, unique_cookies


@dataclass(frozen=True)
class CookieCredential:
    token: str | None            # the access token, or None when there is no usable session
    refusal: str | None = None   # why the request is refused before any token check (CSRF), else None


class SessionCookieSource:
    """Reads the access token from the token handler's session cookie. `origin` is the web app's origin."""

    def __init__(self, keys: CookieKeys, origin: str, *, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.origin = origin.rstrip("/")
        self._clock = clock

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "SessionCookieSource":
        from lambdas.validation.secrets import secret_value

        keys, origin = secret_value(environ, "AUTHGATE_COOKIE_KEYS"), environ.get("AUTHGATE_WEB_ORIGIN")
        if not keys or not origin:
            raise ValueError("a cookie token source needs AUTHGATE_COOKIE_KEYS or AUTHGATE_COOKIE_KEYS_ARN (the token "
                             "handler's cookie keys) and AUTHGATE_WEB_ORIGIN (the web app's origin, for the CSRF "
                             "check)")
        return cls(CookieKeys.from_json(keys), origin)

    def credential(self, method: str, headers: Mapping[str, Any] | Iterable[tuple[Any, Any]] | None,
                   cookie_values: Iterable[str]) -> CookieCredential:
        """`headers` a mapping or (name, value) pairs, str or bytes (ASGI), in any case; `cookie_values` the Cookie
        header value(s) or payload 2.0 cookies."""
        refusal = csrf_refusal(method, _lower_case(headers), self.origin)
        if refusal is not None:
            return CookieCredential(None, refusal)
        cookies = unique_cookies(parse_cookie_header(list(cookie_values)))
        session = open_session(cookies, self.keys, now=self._clock())
        token = session.get("at") if session else None
        return CookieCredential(token if isinstance(token, str) else None)


def route_session_cookie(source: SessionCookieSource | None, route: Any, method: str, headers: Any,
                         cookie_values: Iterable[str]) -> CookieCredential | None:
    """The request's session cookie, read only for a route that takes its token from it (None otherwise): the one
    reading the authorizers and the backend guard share, so a header route never pays for opening a cookie."""
    if source is None or route is None or route.token_source != "cookie":
        return None
    return source.credential(method, headers, cookie_values)


def _lower_case(headers: Mapping[str, Any] | Iterable[tuple[Any, Any]] | None) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    lowered: dict[str, str] = {}
    for name, value in pairs:
        name = name.decode("latin-1") if isinstance(name, bytes) else name
        value = value.decode("latin-1") if isinstance(value, bytes) else value
        if isinstance(name, str) and isinstance(value, str):
            lowered[name.lower()] = value
    return lowered
