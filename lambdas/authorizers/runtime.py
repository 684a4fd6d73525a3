"""What every authorizer shares: configuration from the environment, the bearer token, and the route decision.

Configuration is read once per Lambda execution environment (at init). A broken configuration does not crash the
import: it is written to the log once, clearly, and every invocation then raises AuthorizerMisconfigured, which API
Gateway answers with 500. Nothing is ever allowed by a misconfigured authorizer.

Outcomes and what API Gateway makes of them:
  allow         the principal satisfies the route
  deny          a valid token that lacks what the route needs (scope, role, group, claim) or a route the table
                does not know: 403
  unauthorized  no token, a bad token, or a token from an issuer the route does not accept: 401
  unavailable   the issuer's keys cannot be had (outage, timeouts, no cached keys left): the handler raises
                AuthorizerUnavailable, API Gateway answers 500 (map the AUTHORIZER_FAILURE gateway response to 503).
                Never Allow, and never a Deny or "isAuthorized: false" either, because API Gateway caches those for
                the token and an outage would then outlive itself for the whole cache TTL.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lambdas.validation.errors import KEY_SOURCE_CODES, TokenRejected
from lambdas.validation.route_table import ApiRoutes, Route, RouteTable, RouteTableError, routes_satisfied_by

ENV_POLICY = "AUTHGATE_POLICY"
ENV_API = "AUTHGATE_API"
ENV_MAX_POLICY_BYTES = "AUTHGATE_MAX_POLICY_BYTES"


class AuthorizerMisconfigured(RuntimeError):
    """The authorizer's configuration is missing or invalid; every request fails (500) until it is fixed."""


class AuthorizerUnavailable(RuntimeError):
    """The issuer's keys cannot be had right now; the request fails (500), uncached, and the client may retry."""


@dataclass
class Decision:
    outcome: str                     # allow | deny | unauthorized | unavailable
    code: str | None                 # TokenRejected code, route_not_found, or None when allowed
    route: Route | None
    principal: Any = None            # the verified Principal, when the token was good
    message: str | None = None
    satisfied: list[Route] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"


def bearer_token(value: Any) -> str:
    """The token from an Authorization-style value: "Bearer <jwt>" (any case) or the bare JWT. A tuple is a header
    sent more than once (see `request_header`), which is refused: which copy would count is the client's choice."""
    if isinstance(value, tuple):
        raise TokenRejected("malformed", "the token header appears more than once",
                            hint="send exactly one header: Authorization: Bearer <token>")
    if not isinstance(value, str) or not value.strip():
        raise TokenRejected("malformed", "the request carries no bearer token",
                            hint="send the access token as: Authorization: Bearer <token>")
    value = value.strip()
    scheme, sep, rest = value.partition(" ")
    if sep:
        if scheme.lower() != "bearer":
            raise TokenRejected("malformed", "the Authorization scheme is not Bearer", expected="Bearer",
                                found=scheme[:20], hint="send the access token as: Authorization: Bearer <token>")
        value = rest.strip()
    if not value or any(c.isspace() for c in value):
        raise TokenRejected("malformed", "the bearer token is empty or contains whitespace",
                            hint="send exactly one token: Authorization: Bearer <token>")
    return value


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header value by case-insensitive name (REST keeps the client's case, HTTP API lowercases)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = candidate
                break
    return value if isinstance(value, str) else None


def request_header(event: Mapping[str, Any], name: str) -> str | tuple | None:
    """A header of a REST/WebSocket REQUEST event; a tuple of every value when multiValueHeaders holds several
    (the single-value `headers` map then shows only one of them)."""
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping):
        lowered = name.lower()
        values = [v for key, vs in multi.items() if isinstance(key, str) and key.lower() == lowered
                  for v in (vs if isinstance(vs, list) else [vs])]
        if len(values) > 1:
            return tuple(values)
    return header(event.get("headers"), name)


class AuthorizerRuntime:
    """The loaded route table for one API and a Verifier over its issuers; shared by all handler kinds."""

    def __init__(self, table: RouteTable, api_name: str, *, verifier: Any = None,
                 max_policy_bytes: int | None = None, settings: Any = None) -> None:
        self.table = table
        self.settings = settings  # the handler kind's own settings (HTTP API response mode, WebSocket token source)
        self.api: ApiRoutes = table.api(api_name)
        self.api_name = api_name
        self.verifier = verifier if verifier is not None else table.verifier()
        self.max_policy_bytes = max_policy_bytes
        self._policy_builder = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> "AuthorizerRuntime":
        environ = os.environ if environ is None else environ
        path = environ.get(ENV_POLICY)
        if not path:
            raise AuthorizerMisconfigured(f"{ENV_POLICY} is not set; set it to the path of the route table JSON "
                                          f"bundled with the function (written by `authgate render routes`)")
        api_name = environ.get(ENV_API)
        if not api_name:
            raise AuthorizerMisconfigured(f"{ENV_API} is not set; set it to the name of the API (a key of the route "
                                          f"table's \"apis\") this authorizer protects")
        max_bytes = environ.get(ENV_MAX_POLICY_BYTES)
        if max_bytes is not None:
            if not max_bytes.isdigit() or int(max_bytes) < 512:
                raise AuthorizerMisconfigured(f"{ENV_MAX_POLICY_BYTES} must be a whole number of bytes >= 512, "
                                              f"found {max_bytes!r}")
            options.setdefault("max_policy_bytes", int(max_bytes))
        try:
            table = RouteTable.load(path)
            return cls(table, api_name, **options)
        except RouteTableError as exc:
            raise AuthorizerMisconfigured(str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise AuthorizerMisconfigured(f"route table {path!r}: {exc}") from None

    @property
    def policy_builder(self):
        if self._policy_builder is None:
            from .iam_policy import DEFAULT_MAX_POLICY_BYTES, PolicyBuilder
            self._policy_builder = PolicyBuilder(self.api, max_bytes=self.max_policy_bytes or DEFAULT_MAX_POLICY_BYTES)
        return self._policy_builder

    def prepare_policies(self) -> None:
        """Build the policy builder and its route reach analysis now, for handlers that return IAM policies. Called
        at init, so no request pays for it; a failure leaves the authorizer misconfigured (every request 500),
        never half-analysed."""
        try:
            self.policy_builder.reach.analyse_all()
        except Exception as exc:  # noqa: BLE001 - a policy built on an incomplete analysis could allow too much
            self._policy_builder = None
            raise AuthorizerMisconfigured(f"the route reach analysis of API {self.api_name!r} failed "
                                          f"({type(exc).__name__}: {exc}); no IAM policy can be built") from None

    def hydrate(self) -> None:
        """Fetch remote key sets now (at init). An outage here is not fatal: requests retry and fail closed."""
        try:
            self.verifier.hydrate()
        except Exception as exc:  # noqa: BLE001 - init must survive an issuer outage; requests fail closed later
            sys.stderr.write(f"authgate: could not load issuer keys at init ({type(exc).__name__}); requests will "
                             f"retry and fail closed while keys are unavailable\n")

    def decide(self, raw_token: Any, route: Route | None, *, all_routes: bool = False) -> Decision:
        """Authenticate the token and decide for `route`. With `all_routes`, also list every route of the API the
        principal satisfies (what a cacheable IAM policy needs)."""
        try:
            token = bearer_token(raw_token)
            principal = self.verifier.authenticate(token)
        except TokenRejected as exc:
            if route is not None and route.public:
                return Decision("allow", None, route)
            outcome = "unavailable" if exc.code in KEY_SOURCE_CODES else "unauthorized"
            return Decision(outcome, exc.code, route, message=exc.message)
        satisfied = routes_satisfied_by(self.api.routes, principal, principal.issuer_name) if all_routes else []
        if route is None:
            return Decision("deny", "route_not_found", None, principal,
                            "the request matches no route of this API in the route table", satisfied)
        if route.public:
            return Decision("allow", None, route, principal, satisfied=satisfied)
        if not route.admits_issuer(principal.issuer_name):
            return Decision("unauthorized", "unknown_issuer", route, principal,
                            f"route {route.route_key} does not accept tokens from issuer {principal.issuer_name!r}",
                            satisfied)
        failures = route.requirement.failures(principal)
        if failures:
            # A route's token_use mismatch (wrong_token_use) is a bad credential, not a missing permission: 401.
            outcome = "deny" if failures[0].status == 403 else "unauthorized"
            return Decision(outcome, failures[0].code, route, principal, failures[0].message, satisfied)
        return Decision("allow", None, route, principal, satisfied=satisfied)


def context_for(principal: Any) -> dict:
    """The authorizer `context`: strings only (API Gateway accepts strings, numbers and booleans; no null, no lists,
    no objects). Lists are space-separated, as OAuth writes scopes."""
    if principal is None:
        return {}
    return {"sub": principal.subject or "", "client_id": principal.client_id or "",
            "scopes": " ".join(principal.scopes), "roles": " ".join(principal.roles),
            "groups": " ".join(principal.groups), "tenant": principal.tenant or "",
            "token_use": principal.token_use or "", "iss": principal.issuer or "",
            "issuer_name": principal.issuer_name or ""}


def principal_id(principal: Any) -> str:
    if principal is None:
        return "anonymous"
    return principal.subject or principal.client_id or "unknown"


class LazyRuntime:
    """Loads the runtime once per execution environment; remembers a configuration error instead of crashing."""

    def __init__(self, factory: Callable[[], AuthorizerRuntime]) -> None:
        self._factory = factory
        self._runtime: AuthorizerRuntime | None = None
        self._error: str | None = None

    def load(self) -> None:
        try:
            self._runtime = self._factory()
            self._runtime.hydrate()
        except AuthorizerMisconfigured as exc:
            self._error = str(exc)
            sys.stderr.write(f"authgate: authorizer misconfigured, every request will fail: {exc}\n")

    def get(self) -> AuthorizerRuntime:
        if self._runtime is None:
            if self._error is None:
                self.load()
            if self._runtime is None:
                raise AuthorizerMisconfigured(self._error or "authorizer not configured")
        return self._runtime


def elapsed_us(started_ns: int) -> int:
    return (time.perf_counter_ns() - started_ns) // 1000
