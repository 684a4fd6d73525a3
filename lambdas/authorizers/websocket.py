"""WebSocket API `$connect` Lambda authorizer: `lambdas/authorizers/websocket.py:handler`.

Browsers cannot set an Authorization header on a WebSocket upgrade, so the token comes from where a browser can put it:
  AUTHGATE_WS_TOKEN_SOURCE=query     (default) the query parameter AUTHGATE_WS_QUERY_PARAM (default access_token):
                                     wss://host/stage?access_token=<jwt>. Query strings reach access logs: keep
                                     tokens short-lived, and do not log $request.querystring.
  AUTHGATE_WS_TOKEN_SOURCE=protocol  the Sec-WebSocket-Protocol header: new WebSocket(url, ["authgate.bearer", jwt]);
                                     the token is the entry after the marker AUTHGATE_WS_PROTOCOL_MARKER (default
                                     authgate.bearer). The $connect integration must answer with
                                     Sec-WebSocket-Protocol: authgate.bearer (the marker, never the token) or the
                                     browser drops the connection.
  AUTHGATE_WS_TOKEN_SOURCE=header    the Authorization header (non-browser clients).
The route table's API must contain a "$connect" route. Missing or bad token: Exception("Unauthorized") (401);
lacking scope/role: Deny (403); issuer keys unavailable: AuthorizerUnavailable (500, not cached).
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping

from lambdas.validation.route_decision import Outcome

from .audit import audit_record, emit
from .iam_policy import MethodArn, MethodArnError, current_route_policy
from .runtime import (AuthorizerMisconfigured, AuthorizerRuntime, AuthorizerUnavailable, LazyRuntime, context_for,
                      elapsed_us, principal_id, request_header)

CONNECT_ROUTE = "$connect"
TOKEN_SOURCES = ("query", "protocol", "header")


class WebSocketSettings:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.token_source = environ.get("AUTHGATE_WS_TOKEN_SOURCE", "query")
        if self.token_source not in TOKEN_SOURCES:
            raise AuthorizerMisconfigured(f"AUTHGATE_WS_TOKEN_SOURCE must be one of {', '.join(TOKEN_SOURCES)}, "
                                          f"found {self.token_source!r}")
        self.query_param = environ.get("AUTHGATE_WS_QUERY_PARAM", "access_token")
        self.protocol_marker = environ.get("AUTHGATE_WS_PROTOCOL_MARKER", "authgate.bearer")
        self.token_header = environ.get("AUTHGATE_TOKEN_HEADER", "Authorization")

    def token_from(self, event: Mapping[str, Any]) -> str | tuple | None:
        """The raw token, None when absent, or a tuple when it was sent more than once (refused by bearer_token)."""
        if self.token_source == "query":
            multi = (event.get("multiValueQueryStringParameters") or {}).get(self.query_param)
            if isinstance(multi, list) and len(multi) > 1:
                return tuple(multi)
            params = event.get("queryStringParameters") or {}
            value = params.get(self.query_param)
            return value if isinstance(value, str) else None
        if self.token_source == "header":
            return request_header(event, self.token_header)
        offered = request_header(event, "Sec-WebSocket-Protocol")
        if isinstance(offered, tuple):  # several header lines are one comma-separated list (RFC 9110 5.3)
            offered = ",".join(v for v in offered if isinstance(v, str))
        if not offered:
            return None
        protocols = [p.strip() for p in offered.split(",")]
        if self.protocol_marker in protocols:
            index = protocols.index(self.protocol_marker)
            if index + 1 < len(protocols):
                return protocols[index + 1]
        return None


def _load() -> AuthorizerRuntime:
    runtime = AuthorizerRuntime.from_env(settings=WebSocketSettings(os.environ))
    if runtime.api.route(CONNECT_ROUTE) is None:
        raise AuthorizerMisconfigured(f"API {runtime.api_name!r} in the route table has no {CONNECT_ROUTE!r} route; "
                                      f"add one to the policy (e.g. \"$connect\": {{issuers: [...], scopes: [...]}})")
    return runtime


_RUNTIME = LazyRuntime(_load)
_RUNTIME.load()


def handler(event: dict, context: object = None) -> dict:
    runtime = _RUNTIME.get()
    return authorize(runtime, event, runtime.settings)


def authorize(runtime: AuthorizerRuntime, event: dict, settings: WebSocketSettings) -> dict:
    started = time.perf_counter_ns()
    try:
        arn = MethodArn.parse(event.get("methodArn"))
    except MethodArnError as exc:
        raise AuthorizerMisconfigured(str(exc)) from None
    if arn.method != CONNECT_ROUTE:
        raise AuthorizerMisconfigured(f"WebSocket authorizers run on {CONNECT_ROUTE} only; got {arn.method!r}")
    route = runtime.api.route(CONNECT_ROUTE)
    decision = runtime.decide(settings.token_from(event), route)
    audit = dict(authorizer="websocket", decision=decision.outcome.value, code=decision.code, route=CONNECT_ROUTE,
                 principal=decision.principal, request_id=(event.get("requestContext") or {}).get("requestId"),
                 token_source=settings.token_source, metrics=runtime.metrics)
    emit(audit_record(latency_us=elapsed_us(started), **audit))
    if decision.outcome is Outcome.UNAVAILABLE:
        raise AuthorizerUnavailable(f"cannot decide now ({decision.code}): failing closed")
    if decision.outcome is Outcome.UNAUTHORIZED:
        raise Exception("Unauthorized")
    # $connect is the only route a WebSocket authorizer guards: the policy names exactly this ARN.
    policy = current_route_policy(arn, decision.allowed)
    return {"principalId": principal_id(decision.principal), "policyDocument": policy.document,
            "context": context_for(decision.principal)}
