"""The token handler as an ASGI app, for Cloud Run, App Service or any container (`authgate serve token-handler`).

The core makes blocking calls to the issuer, so each request runs in a worker thread and the event loop stays free.
"""
from __future__ import annotations

import asyncio
from typing import Any

from lambdas.asgi_support import Receive, Send, dispatch, send_response

from .core import TokenHandler
from .web import WebRequest, parse_cookie_header


def request_from_scope(scope: dict) -> WebRequest:
    headers: dict[str, str] = {}
    cookie_values: list[str] = []
    for raw_name, raw_value in scope.get("headers") or ():
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookie_values.append(value)
        else:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return WebRequest(method=scope.get("method", "GET"), path=scope.get("path", "/"),
                      query=(scope.get("query_string") or b"").decode("latin-1"), headers=headers,
                      cookie_pairs=parse_cookie_header(cookie_values))


class TokenHandlerApp:
    def __init__(self, handler: TokenHandler) -> None:
        self.handler = handler

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        await dispatch(scope, receive, send, self._answer)

    async def _answer(self, scope: dict, receive: Receive, send: Send) -> None:
        response = await asyncio.to_thread(self.handler.handle, request_from_scope(scope))
        await send_response(send, response.status, response.headers, response.body,
                            repeated=[("set-cookie", cookie) for cookie in response.cookies])


def create_app(handler: TokenHandler | None = None) -> Any:
    """The ASGI app; configured from the environment when no handler is given."""
    if handler is None:
        from .config import TokenHandlerConfig
        handler = TokenHandler(TokenHandlerConfig.from_environment())
    return TokenHandlerApp(handler)
