"""What the small ASGI apps of lambdas/ (token handler, back-channel logout) share: the dispatch by scope type, the
lifespan handshake of an app with nothing to start, and sending one whole response."""
from __future__ import annotations

from typing import Awaitable, Callable, Iterable, Mapping

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


async def dispatch(scope: dict, receive: Receive, send: Send,
                   answer_http: Callable[[dict, Receive, Send], Awaitable[None]]) -> None:
    """Lifespan events are acknowledged, HTTP requests go to `answer_http`, anything else is ignored."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
    elif scope["type"] == "http":
        await answer_http(scope, receive, send)


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown: these apps build their core before the server starts."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def send_response(send: Send, status: int, headers: Mapping[str, str], body: bytes, *,
                        repeated: Iterable[tuple[str, str]] = ()) -> None:
    """One response with a Content-Length; `repeated` are headers sent once per value (Set-Cookie)."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in repeated]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
