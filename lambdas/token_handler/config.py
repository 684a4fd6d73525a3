"""The token handler's settings: which issuer and client, which origin it serves, and how long sessions live.

Built from the JSON that `authgate render token-handler` writes from the policy's `web` client (format
authgate.token-handler/v1) plus two secrets that never sit in it: the client secret and the cookie keys.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from lambdas.validation.fetcher import is_loopback_host

from .sealing import CookieKeys

FORMAT = "authgate.token-handler/v1"
DEFAULT_PREFIX = "/auth"


@dataclass(frozen=True)
class TokenHandlerConfig:
    """issuer             the issuer identifier (discovery is fetched from it)
    client_id / client_secret   the confidential client registered for this app (client_secret_basic)
    origin             the SPA's origin, e.g. https://shop.example.com: the callback is origin + prefix + /callback,
                       and state-changing requests must come from it
    scopes             requested at login (openid is added when missing; offline_access asks for a refresh token)
    resource           the RFC 8707 resource indicator of the API the access token is for (optional)
    session_seconds    absolute session lifetime: after it the user signs in again, whatever the refresh token says
    """

    issuer: str
    client_id: str
    client_secret: str
    origin: str
    cookie_keys: CookieKeys
    scopes: tuple[str, ...] = ("openid",)
    resource: str | None = None
    prefix: str = DEFAULT_PREFIX
    session_seconds: int = 8 * 3600
    login_seconds: int = 600
    issuer_name: str = "web"
    profile: str = "generic"
    algorithms: tuple[str, ...] = ("RS256",)
    allow_insecure_http: bool = False
    post_logout_redirect_uri: str | None = None
    # How long a refresh's outcome is replayed to concurrent requests carrying the same (now rotated) refresh token.
    refresh_replay_seconds: int = 30

    def __post_init__(self) -> None:
        parts = urlsplit(self.origin)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment:
            raise ValueError(f"token handler origin {self.origin!r} must be scheme://host[:port], e.g. "
                             "https://shop.example.com")
        if parts.scheme == "http" and not (self.allow_insecure_http and is_loopback_host(parts.hostname)):
            raise ValueError(f"token handler origin {self.origin!r} must be https (http only for loopback hosts in "
                             "local development)")
        object.__setattr__(self, "origin", f"{parts.scheme}://{parts.netloc}")
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix:
            raise ValueError(f"token handler prefix {self.prefix!r} must look like /auth")
        if not self.client_id or not self.client_secret:
            raise ValueError("token handler: client_id and client_secret are both required (a confidential client)")
        scopes = tuple(self.scopes)
        if "openid" not in scopes:
            scopes = ("openid",) + scopes
        object.__setattr__(self, "scopes", scopes)
        if not 60 <= self.session_seconds <= 30 * 86400:
            raise ValueError("token handler: session_seconds must be from 60 to 2592000 (30 days)")

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}{self.prefix}/callback"

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, client_secret: str, cookie_keys: CookieKeys) -> \
            "TokenHandlerConfig":
        if doc.get("format") != FORMAT:
            raise ValueError(f"token handler config: format must be {FORMAT!r}; render it with "
                             "`authgate render token-handler --policy FILE --client NAME`")
        known = ("issuer", "client_id", "origin", "scopes", "resource", "prefix", "session_seconds", "issuer_name",
                 "profile", "algorithms", "allow_insecure_http", "post_logout_redirect_uri")
        kwargs = {k: doc[k] for k in known if doc.get(k) is not None}
        for name in ("scopes", "algorithms"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(client_secret=client_secret, cookie_keys=cookie_keys, **kwargs)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "TokenHandlerConfig":
        """AUTHGATE_TOKEN_HANDLER_CONFIG: the rendered config (JSON text; it holds no secret). The secrets:
        AUTHGATE_CLIENT_SECRET and AUTHGATE_COOKIE_KEYS, or their *_ARN (Secrets Manager, see lambdas/validation/secrets.py)."""
        from lambdas.validation.secrets import secret_value

        text = environ.get("AUTHGATE_TOKEN_HANDLER_CONFIG")
        if not text:
            raise ValueError("AUTHGATE_TOKEN_HANDLER_CONFIG must hold the rendered token handler config (the JSON "
                             "`authgate render token-handler` writes)")
        try:
            doc = json.loads(text)
        except ValueError:
            raise ValueError("AUTHGATE_TOKEN_HANDLER_CONFIG is not JSON; set it to what `authgate render "
                             "token-handler` writes") from None
        secret = secret_value(environ, "AUTHGATE_CLIENT_SECRET")
        keys = secret_value(environ, "AUTHGATE_COOKIE_KEYS")
        if not secret or not keys:
            raise ValueError("set AUTHGATE_CLIENT_SECRET and AUTHGATE_COOKIE_KEYS, or AUTHGATE_CLIENT_SECRET_ARN and "
                             "AUTHGATE_COOKIE_KEYS_ARN (Secrets Manager)")
        return cls.from_document(doc, client_secret=secret, cookie_keys=CookieKeys.from_json(keys))
