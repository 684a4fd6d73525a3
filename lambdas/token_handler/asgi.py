"""The token handler as an ASGI app, for Cloud Run, App Service or any container (`authgate serve token-handler`).

The core makes blocking calls to the issuer, so each request runs in a worker thread and the event loop stays free.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

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

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        response = await asyncio.to_thread(self.handler.handle, request_from_scope(scope))
        headers: list[tuple[bytes, bytes]] = [(k.encode("latin-1"), v.encode("latin-1"))
                                              for k, v in response.headers.items()]
        headers += [(b"set-cookie", cookie.encode("latin-1")) for cookie in response.cookies]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def create_app(handler: TokenHandler | None = None) -> Any:
    """The ASGI app; configured from the environment when no handler is given."""
    if handler is None:
        from .config import TokenHandlerConfig
        handler = TokenHandler(TokenHandlerConfig.from_environment())
    return TokenHandlerApp(handler)
