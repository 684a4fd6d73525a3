"""The browser sign-in backend-for-frontend: authorization code + PKCE, tokens kept in sealed HttpOnly cookies,
refresh, logout. One core (core.TokenHandler) under two thin adapters: asgi.py and http_api.py (Lambda)."""
from .config import TokenHandlerConfig
from .core import LOGIN_COOKIE, SESSION_COOKIE, TokenHandler
from .sealing import CookieKeys

__all__ = ["TokenHandler", "TokenHandlerConfig", "CookieKeys", "SESSION_COOKIE", "LOGIN_COOKIE"]
