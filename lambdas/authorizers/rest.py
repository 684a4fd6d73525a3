"""REST API Lambda authorizer (TOKEN and REQUEST types): `lambdas/authorizers/rest.py:handler`.

Environment: AUTHGATE_POLICY (route table JSON path), AUTHGATE_API (API name in it), optionally
AUTHGATE_TOKEN_HEADER (REQUEST type: the header holding the token, default Authorization) and
AUTHGATE_MAX_POLICY_BYTES (policy size budget, default 8192).

Missing or bad token: raises Exception("Unauthorized") (API Gateway answers 401). A valid token lacking what the route
needs: a Deny policy (403). Issuer keys unavailable: raises AuthorizerUnavailable (500, not cached). The returned
policy covers every route of the API (see iam_policy.py), because API Gateway reuses it for all of them while cached.
"""
from __future__ import annotations

import os
import time

from lambdas.validation.errors import TokenRejected
from lambdas.validation.route_decision import Outcome
from lambdas.validation.route_table import Route

from .audit import audit_record, emit

from .iam_policy import MethodArn, MethodArnError
from .runtime import (AuthorizerMisconfigured, AuthorizerRuntime, AuthorizerUnavailable, LazyRuntime, context_for,
                      elapsed_us, gateway_request_facts, principal_id, request_header)


def _load() -> AuthorizerRuntime:
    runtime = AuthorizerRuntime.from_env()
    # Every decision returns a route-wide policy: analyse route reach at init so no request pays for it.
    runtime.prepare_policies()
    return runtime


_RUNTIME = LazyRuntime(_load)
_RUNTIME.load()
_TOKEN_HEADER = os.environ.get("AUTHGATE_TOKEN_HEADER", "Authorization")


def handler(event: dict, context: object = None) -> dict:
    return authorize(_RUNTIME.get(), event, token_header=_TOKEN_HEADER)


def authorize(runtime: AuthorizerRuntime, event: dict, *, token_header: str = "Authorization") -> dict:
    started = time.perf_counter_ns()
    kind = event.get("type")
    if kind == "TOKEN":
        raw_token = event.get("authorizationToken")
    elif kind == "REQUEST":
        raw_token = request_header(event, token_header)
    else:
        raise AuthorizerMisconfigured(f"REST authorizer received an event of type {kind!r}; configure it as a "
                                      f"TOKEN or REQUEST authorizer")
    try:
        arn = MethodArn.parse(event.get("methodArn"))
    except MethodArnError as exc:
        raise AuthorizerMisconfigured(str(exc)) from None
    route = runtime.api.match(arn.method, arn.path)
    # A REQUEST event also says which resource API Gateway routed to. If the method ARN reads as another route, the
    # policy's view of ARNs is not the gateway's (an encoded '/' decoded into the ARN, or a table that is not the
    # deployed API): decide as for an unknown route, so nothing is allowed on an ARN that could mean either.
    mismatch = kind == "REQUEST" and not _gateway_agrees(route, event)
    # A cookie route's answer also depends on the CSRF headers, which are not the cache key: its policy names only
    # this route, never the principal's others.
    by_cookie = kind == "REQUEST" and route is not None and route.token_source == "cookie"
    session_cookie = runtime.session_cookie(route, arn.method, event.get("headers"), _cookie_values(event)) \
        if kind == "REQUEST" else None
    facts = gateway_request_facts(event, dpop_header=request_header(event, "DPoP")) if kind == "REQUEST" else {}
    decision = runtime.decide(raw_token, None if mismatch else route, all_routes=not (mismatch or by_cookie),
                              session_cookie=session_cookie, **facts)
    if mismatch and decision.outcome is Outcome.FORBIDDEN:
        decision = decision.replace(rejection=TokenRejected(
            "route_mismatch", "the method ARN and the resource API Gateway routed to name different routes",
            hint="deploy the route table rendered from the same policy as the API"))
    request_id = (event.get("requestContext") or {}).get("requestId")
    route_key = decision.route.route_key if decision.route else None
    if decision.outcome in (Outcome.UNAUTHORIZED, Outcome.UNAVAILABLE):
        emit(audit_record(authorizer="rest", decision=decision.outcome.value, code=decision.code, route=route_key,
                          principal=decision.principal, latency_us=elapsed_us(started), request_id=request_id,
                          metrics=runtime.metrics))
        if decision.outcome is Outcome.UNAVAILABLE:
            raise AuthorizerUnavailable(f"cannot decide now ({decision.code}): failing closed")
        raise Exception("Unauthorized")  # the exact message API Gateway turns into 401
    if decision.principal is None or mismatch or by_cookie:  # nothing to cache beyond this request
        policy = runtime.policy_builder.for_current_route(arn, decision.allowed)
    else:
        policy = runtime.policy_builder.build(arn, decision.satisfied, current_allowed=decision.allowed)
    emit(audit_record(authorizer="rest", decision=decision.outcome.value, code=decision.code, route=route_key,
                      principal=decision.principal, latency_us=elapsed_us(started), request_id=request_id,
                      policy=policy.strategy, policy_bytes=policy.size, policy_conflicts=policy.conflicts or None,
                      metrics=runtime.metrics))
    return {"principalId": principal_id(decision.principal), "policyDocument": policy.document,
            "context": context_for(decision.principal)}


def _cookie_values(event: dict) -> list[str]:
    """Every Cookie header value of a REQUEST event (REST keeps the client's header case)."""
    value = request_header(event, "Cookie")
    if value is None:
        return []
    return list(value) if isinstance(value, tuple) else [value]


def _gateway_agrees(route: Route | None, event: dict) -> bool:
    """Whether the route the method ARN matches is the resource and method API Gateway says it routed to."""
    resource, method = event.get("resource"), event.get("httpMethod")
    if not isinstance(resource, str) or not isinstance(method, str):
        return True  # nothing to compare against (not a REST REQUEST event shape)
    return route is not None and route.path == resource and route.method in (method.upper(), "ANY")
