"""HTTP API Lambda authorizer, payload format 2.0: `lambdas/authorizers/http_api.py:handler`.

Environment: AUTHGATE_POLICY, AUTHGATE_API; AUTHGATE_RESPONSE = "simple" (default) or "iam";
AUTHGATE_TOKEN_HEADER (default authorization); AUTHGATE_COOKIE_KEYS and AUTHGATE_WEB_ORIGIN where routes take their
token from the token handler's session cookie (token_source: cookie); AUTHGATE_RESULT_TTL_SECONDS and AUTHGATE_IDENTITY_SOURCES (comma
separated), set by the construct, checked at init so a cached simple response can never serve another route.

Simple responses: {"isAuthorized": true|false, "context": {...}}; false for a missing, bad or insufficient token
(API Gateway answers 403). IAM responses: like the REST authorizer (Exception("Unauthorized") -> 401, Deny -> 403,
a policy covering every route). Issuer keys unavailable: raises AuthorizerUnavailable (500, not cached) either way.
"""
from __future__ import annotations

import os
import time
from typing import Mapping

from lambdas.validation.route_decision import Outcome

from .audit import audit_record, emit
from .identity_sources import check_http_api_identity_sources
from .runtime import (AuthorizerMisconfigured, AuthorizerRuntime, AuthorizerUnavailable, LazyRuntime, context_for,
                      elapsed_us, gateway_request_facts, header, principal_id)

RESPONSES = ("simple", "iam")


class HttpApiSettings:
    """The HTTP-API-specific settings, read from the environment and checked at init."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.response = environ.get("AUTHGATE_RESPONSE", "simple")
        if self.response not in RESPONSES:
            raise AuthorizerMisconfigured(f"AUTHGATE_RESPONSE must be 'simple' or 'iam', found {self.response!r}")
        self.token_header = environ.get("AUTHGATE_TOKEN_HEADER", "authorization")
        ttl = environ.get("AUTHGATE_RESULT_TTL_SECONDS")
        if ttl is not None and not ttl.isdigit():
            raise AuthorizerMisconfigured(f"AUTHGATE_RESULT_TTL_SECONDS must be a whole number of seconds, found "
                                          f"{ttl!r}")
        self.result_ttl_seconds = int(ttl) if ttl is not None else None
        self.identity_sources = [s.strip() for s in environ.get("AUTHGATE_IDENTITY_SOURCES", "").split(",")
                                 if s.strip()]

    def check(self, runtime: AuthorizerRuntime) -> None:
        if self.result_ttl_seconds is None:
            return
        try:
            check_http_api_identity_sources(runtime.api, self.identity_sources,
                                            result_ttl_seconds=self.result_ttl_seconds, response=self.response)
        except ValueError as exc:
            raise AuthorizerMisconfigured(str(exc)) from None


def _load() -> AuthorizerRuntime:
    settings = HttpApiSettings(os.environ)
    runtime = AuthorizerRuntime.from_env(settings=settings)
    settings.check(runtime)
    if settings.response == "iam":
        runtime.prepare_policies()  # route-wide policies: analyse route reach at init, not on the first request
    return runtime


_RUNTIME = LazyRuntime(_load)
_RUNTIME.load()


def handler(event: dict, context: object = None) -> dict:
    runtime = _RUNTIME.get()
    return authorize(runtime, event, runtime.settings)


def authorize(runtime: AuthorizerRuntime, event: dict, settings: HttpApiSettings) -> dict:
    started = time.perf_counter_ns()
    if event.get("version") != "2.0":
        raise AuthorizerMisconfigured(f"HTTP API authorizer received payload version {event.get('version')!r}; set "
                                      f"the authorizer's payload format version to 2.0")
    request_context = event.get("requestContext") or {}
    route_key = event.get("routeKey") or request_context.get("routeKey")
    route = runtime.api.route(route_key) if isinstance(route_key, str) else None
    iam = settings.response == "iam"
    # The $default route catches many paths under one routeKey. Deciding by the path is right only when no simple
    # answer is cached under that key (IAM policies are evaluated per route ARN; a TTL of 0 caches nothing).
    http = request_context.get("http") or {}
    if route is None and route_key == "$default" and (iam or settings.result_ttl_seconds == 0):
        route = runtime.api.match(str(http.get("method", "")), str(http.get("path", event.get("rawPath", ""))))
    session_cookie = runtime.session_cookie(route, str(http.get("method", "")), event.get("headers"),
                                            event.get("cookies") or ())
    decision = runtime.decide(header(event.get("headers"), settings.token_header), route, all_routes=iam,
                              session_cookie=session_cookie,
                              **gateway_request_facts(event, dpop_header=header(event.get("headers"), "dpop")))
    audit = dict(authorizer="http_api", decision=decision.outcome.value, code=decision.code,
                 route=decision.route.route_key if decision.route else route_key, principal=decision.principal,
                 request_id=request_context.get("requestId"), metrics=runtime.metrics)
    if decision.outcome is Outcome.UNAVAILABLE:
        emit(audit_record(latency_us=elapsed_us(started), **audit))
        raise AuthorizerUnavailable(f"cannot decide now ({decision.code}): failing closed")
    if not iam:
        emit(audit_record(latency_us=elapsed_us(started), **audit))
        response: dict = {"isAuthorized": decision.allowed}
        if decision.allowed:
            response["context"] = context_for(decision.principal)
        return response
    if decision.outcome is Outcome.UNAUTHORIZED:
        emit(audit_record(latency_us=elapsed_us(started), **audit))
        raise Exception("Unauthorized")
    from .iam_policy import MethodArn, MethodArnError
    try:
        arn = MethodArn.parse(event.get("routeArn"))
    except MethodArnError as exc:
        raise AuthorizerMisconfigured(str(exc)) from None
    if decision.principal is None:
        policy = runtime.policy_builder.for_current_route(arn, decision.allowed)
    else:
        policy = runtime.policy_builder.build(arn, decision.satisfied, current_allowed=decision.allowed)
    emit(audit_record(latency_us=elapsed_us(started), policy=policy.strategy, policy_bytes=policy.size,
                      policy_conflicts=policy.conflicts or None, **audit))
    return {"principalId": principal_id(decision.principal), "policyDocument": policy.document,
            "context": context_for(decision.principal)}
