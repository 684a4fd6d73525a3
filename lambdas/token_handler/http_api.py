"""The token handler as an API Gateway HTTP API Lambda (payload format 2.0), mounted on `ANY /auth/{proxy+}`.

Configuration from the environment (TokenHandlerConfig.from_environment). Cookies go out through the payload's
`cookies` array, one entry per cookie: API Gateway turns each into its own Set-Cookie header, where a single folded
Set-Cookie would be split wrongly at the commas inside Expires dates.
"""
from __future__ import annotations

from typing import Any, Mapping

from .core import TokenHandler
from .web import WebRequest, WebResponse, parse_cookie_header

_handler: TokenHandler | None = None


def request_from_event(event: Mapping[str, Any]) -> WebRequest:
    http = (event.get("requestContext") or {}).get("http") or {}
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    # Payload 2.0 moves the Cookie header into `cookies`, one "name=value" string per cookie.
    pairs = parse_cookie_header(list(event.get("cookies") or ()))
    return WebRequest(method=str(http.get("method", "GET")), path=str(event.get("rawPath") or "/"),
                      query=str(event.get("rawQueryString") or ""), headers=headers, cookie_pairs=pairs)


def response_to_result(response: WebResponse) -> dict[str, Any]:
    result: dict[str, Any] = {"statusCode": response.status, "headers": dict(response.headers),
                              "cookies": list(response.cookies), "isBase64Encoded": False,
                              "body": response.body.decode("utf-8")}
    return result


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    global _handler
    if _handler is None:
        from .config import TokenHandlerConfig
        _handler = TokenHandler(TokenHandlerConfig.from_environment())
    return response_to_result(_handler.handle(request_from_event(event)))


__all__ = ["handler", "request_from_event", "response_to_result"]
