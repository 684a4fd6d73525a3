"""A small ASGI middleware that guards every HTTP request with a check (no web framework needed).

    app = AuthgateMiddleware(app, check=guard.check)           # check(headers, method, path) -> Principal | None
    app = AuthgateMiddleware(app, check=guard.check, success_headers=guard.success_headers)   # + a fresh DPoP-Nonce

The principal lands in scope["state"]["principal"] (Starlette/FastAPI read `request.state.principal`) and in
scope["authgate.principal"]. A rejected request gets a JSON body with the code and message (never the token):
401 with WWW-Authenticate: Bearer for a bad or missing token (DPoP's challenge for a refused DPoP proof, with a
DPoP-Nonce header when the route wants the server's nonce), 403 for a token lacking what the route needs, 404 for
an unknown route and 503 when the issuer's keys cannot be had (fail closed).
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from lambdas.validation.errors import POSSESSION_CODES, UNAVAILABLE_CODES, TokenRejected
from lambdas.validation.possession import dpop_nonce_header, www_authenticate

Check = Callable[[list, str, str], Any]
SuccessHeaders = Callable[[str, str], list]


def _status(error: TokenRejected) -> int:
    if error.code in UNAVAILABLE_CODES:
        return 503
    if error.code == "route_not_found":
        return 404
    return error.status


class AuthgateMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], *, check: Check, skip_paths: tuple[str, ...] = (),
                 success_headers: SuccessHeaders | None = None) -> None:
        self.app = app
        self.check = check
        self.skip_paths = frozenset(skip_paths)
        # (method, path) -> [(name, value)] added to an allowed request's response (BearerGuard.success_headers).
        self.success_headers = success_headers

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") not in ("http", "websocket") or scope.get("path") in self.skip_paths:
            await self.app(scope, receive, send)
            return
        try:
            principal = self.check(scope.get("headers") or [], scope.get("method", "GET"), scope.get("path", "/"))
        except TokenRejected as error:
            await self._reject(scope, send, error)
            return
        scope.setdefault("state", {})["principal"] = principal
        scope["authgate.principal"] = principal
        extra = self.success_headers(scope.get("method", "GET"), scope.get("path", "/")) \
            if self.success_headers is not None and scope["type"] == "http" else []
        if extra:
            send = _adding_headers(send, [(name.lower().encode("latin-1"), value.encode("latin-1"))
                                          for name, value in extra])
        await self.app(scope, receive, send)

    @staticmethod
    async def _reject(scope: dict, send: Callable, error: TokenRejected) -> None:
        status = _status(error)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": error.code, "message": error.message, "hint": error.hint}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401 and error.code in POSSESSION_CODES:
            # RFC 9449 7.1 / RFC 6750 3: the challenge for the proof the request lacked.
            headers.append((b"www-authenticate", www_authenticate(error, proof="none").encode()))
            nonce = dpop_nonce_header(error)
            if nonce is not None:   # RFC 9449 9: use_dpop_nonce comes with the nonce to retry with
                headers.append((nonce[0].lower().encode(), nonce[1].encode("ascii")))
        elif status == 401:
            headers.append((b"www-authenticate", f'Bearer error="invalid_token", error_description="{error.code}"'
                            .encode()))
        elif status == 403:
            headers.append((b"www-authenticate", b'Bearer error="insufficient_scope"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _adding_headers(send: Callable, extra: list[tuple[bytes, bytes]]) -> Callable:
    """`send` with `extra` added to the response's start (replacing the app's own headers of those names)."""
    names = {name for name, _ in extra}

    async def sending(message: dict) -> None:
        if message.get("type") == "http.response.start":
            kept = [(k, v) for k, v in message.get("headers") or () if k.lower() not in names]
            message = {**message, "headers": kept + extra}
        await send(message)
    return sending
