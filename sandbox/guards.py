"""The backend's own checks (service B validates its caller), built from the same route table the gateways use.

Two doors: behind AWS and APIM the caller's bearer token is passed through and the backend verifies it again;
behind GCP API Gateway the backend reads the claims the gateway verified from X-Apigateway-Api-Userinfo and
enforces what the gateway cannot (scopes, roles, claims).
"""
from __future__ import annotations

import base64
import json
from typing import Any, Mapping

from lambdas.validation import TokenRejected
from lambdas.validation.route_table import RouteTable
from sandbox.backend import Guard, GuardVerdict

USERINFO_HEADER = "x-apigateway-api-userinfo"


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def bearer_guard(route_table: Mapping[str, Any], api: str) -> Guard:
    """Verify the passed-through token and the route's requirement, exactly as the authorizers do."""
    table = RouteTable.load(route_table)
    routes = table.api(api)
    verifier = table.verifier()

    def guard(method: str, path: str, headers: Mapping[str, str]) -> GuardVerdict:
        route = routes.match(method, path.split("?", 1)[0])
        if route is None:
            return GuardVerdict(False, 404, "no_route", f"no route for {method} {path}")
        if route.public:
            return GuardVerdict(True, subject="(public route)")
        token = _bearer(headers)
        if not token:
            return GuardVerdict(False, 401, "malformed", "no bearer token")
        try:
            principal = verifier.authenticate(token, issuers=route.issuers)
            route.requirement.check(principal)
        except TokenRejected as err:
            return GuardVerdict(False, err.status, err.code, err.message)
        return GuardVerdict(True, subject=principal.subject)

    return guard


def gcp_userinfo_guard(route_table: Mapping[str, Any], api: str) -> Guard:
    """Behind GCP API Gateway: the gateway verified signature, issuer and audience, put the claims in
    X-Apigateway-Api-Userinfo and moved the caller's token to X-Forwarded-Authorization. The backend enforces what
    the gateway cannot (scopes, roles, claims) on the forwarded token, and refuses a userinfo header that does not
    describe that same token (a request that did not come through the gateway has neither)."""
    bearer = bearer_guard(route_table, api)

    def guard(method: str, path: str, headers: Mapping[str, str]) -> GuardVerdict:
        userinfo = headers.get(USERINFO_HEADER, "")
        forwarded = headers.get("x-forwarded-authorization", "")
        token = _bearer({"authorization": forwarded})
        if token or userinfo:
            if not (token and userinfo):
                return GuardVerdict(False, 401, "missing_userinfo", "X-Apigateway-Api-Userinfo and "
                                    "X-Forwarded-Authorization come together from the gateway; one is missing")
            if _b64json(userinfo) != _b64json(token.split(".")[1] if token.count(".") == 2 else ""):
                return GuardVerdict(False, 401, "userinfo_mismatch", "X-Apigateway-Api-Userinfo does not describe "
                                    "the forwarded token")
        return bearer(method, path, {"authorization": forwarded})

    return guard


def _b64json(value: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return None
