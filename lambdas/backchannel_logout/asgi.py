"""The back-channel logout endpoint as an ASGI app (any path; mount it where the issuer's backchannel_logout_uri
points). The core makes blocking calls (keys, the denylist table), so each request runs in a worker thread."""
from __future__ import annotations

import asyncio
from typing import Any

from lambdas.asgi_support import Receive, Send, dispatch, send_response

from .core import MAX_BODY_BYTES, BackchannelLogout


class BackchannelLogoutApp:
    def __init__(self, endpoint: BackchannelLogout) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        await dispatch(scope, receive, send, self._answer)

    async def _answer(self, scope: dict, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more and len(body) <= MAX_BODY_BYTES:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        content_type = next((v.decode("latin-1") for k, v in scope.get("headers") or () if k.lower() ==
                             b"content-type"), None)
        answer = await asyncio.to_thread(self.endpoint.handle, scope.get("method", "GET"), content_type, body)
        await send_response(send, answer.status, answer.headers, answer.body)


def create_app(endpoint: BackchannelLogout | None = None) -> Any:
    return BackchannelLogoutApp(endpoint or BackchannelLogout.from_env())
