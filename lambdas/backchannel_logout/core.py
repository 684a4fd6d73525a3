"""The back-channel logout endpoint's core: one POST with a logout_token in, the session or subject on the shared
denylist out (OpenID Connect Back-Channel Logout 1.0 sections 2.5 and 2.8).

Answers: 200 when the logout is recorded; 400 {"error": "invalid_request"} for a request or logout token that fails a
check (the issuer should not retry it); 405 for a method other than POST; 503 when the issuer's keys, the replay
records or the denylist cannot be reached now (the issuer may retry). Every answer carries Cache-Control: no-store.
Configuration from the environment: AUTHGATE_POLICY (the route table; its issuers with revocation.logout_audiences
are the ones whose logout tokens are accepted) and AUTHGATE_DENYLIST_TABLE (the DynamoDB table every authorizer
reads; required in Lambda) or AUTHGATE_REDIS_URL (the Redis in-cluster forward-auth replicas read, with its
companion variables: lambdas/validation/possession.py).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from lambdas.validation.errors import UNAVAILABLE_CODES, TokenRejected
from lambdas.validation.logout_token import LogoutTokenValidator, logout_token_from_form
from lambdas.validation.possession import RequestChecks, request_checks_from_env
from lambdas.validation.route_table import RouteTable, RouteTableError

# A logout token is a few hundred bytes; a form far larger than one is not a logout request.
MAX_BODY_BYTES = 16 * 1024


@dataclass(frozen=True)
class LogoutAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "application/json",
                                                                "cache-control": "no-store"})


def _answer(status: int, document: Mapping[str, Any]) -> LogoutAnswer:
    return LogoutAnswer(status, json.dumps(document, separators=(",", ":")).encode())


class BackchannelLogout:
    """Validates logout tokens and records them on the denylist the authorizers consult."""

    def __init__(self, validator: LogoutTokenValidator, checks: RequestChecks) -> None:
        if checks.denylist is None or checks.replay is None:
            raise ValueError("the back-channel logout endpoint needs a denylist and a replay store")
        self.validator = validator
        self.checks = checks

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "BackchannelLogout":
        environ = os.environ if environ is None else environ
        path = environ.get("AUTHGATE_POLICY")
        if not path:
            raise ValueError("AUTHGATE_POLICY is not set; set it to the route table JSON (authgate render routes)")
        try:
            table = RouteTable.load(path)
        except RouteTableError as exc:
            raise ValueError(str(exc)) from None
        if not any(c.revocation.logout_audiences for c in table.issuers.values()):
            raise ValueError(f"no issuer of {path} lists revocation.logout_audiences, so every logout token would "
                             f"be refused; add the client ids the issuer logs out to the policy")
        checks = request_checks_from_env(environ, needs_shared_store=True)
        return cls(LogoutTokenValidator(table.verifier(), checks.replay), checks)

    def handle(self, method: str, content_type: str | None, body: bytes) -> LogoutAnswer:
        if method.upper() != "POST":
            answer = _answer(405, {"error": "invalid_request", "error_description": "use POST"})
            return LogoutAnswer(answer.status, answer.body, {**answer.headers, "allow": "POST"})
        if len(body) > MAX_BODY_BYTES:
            return _answer(400, {"error": "invalid_request", "error_description": "the request body is too large"})
        try:
            event = self.validator.validate(logout_token_from_form(body, content_type))
            self.validator.record(event, self.checks.denylist)
        except TokenRejected as exc:
            status = 503 if exc.code in UNAVAILABLE_CODES else 400
            # "unavailable" (not recorded now; the issuer may retry) is what the deployment's alarm counts.
            sys.stderr.write(json.dumps({"authgate": "backchannel_logout",
                                         "outcome": "refused" if status == 400 else "unavailable", "code": exc.code,
                                         "reason": exc.message}) + "\n")
            return _answer(status, {"error": "invalid_request" if status == 400 else "temporarily_unavailable",
                                    "error_description": exc.message})
        sys.stderr.write(json.dumps({"authgate": "backchannel_logout", "outcome": "recorded", "issuer":
                                     event.issuer_name, "sid": bool(event.sid), "sub": bool(event.sub)}) + "\n")
        return _answer(200, {"logged_out": True})
