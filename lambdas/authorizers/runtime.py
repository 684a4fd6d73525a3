"""What every authorizer shares: configuration from the environment, where the token is read, and the runtime.

The decision itself is lambdas/validation/route_decision.py, the one every entry point shares.

Configuration is read once per Lambda execution environment (at init). A broken configuration does not crash the
import: it is written to the log once, clearly, and every invocation then raises AuthorizerMisconfigured, which API
Gateway answers with 500. Nothing is ever allowed by a misconfigured authorizer.

Outcomes (route_decision.Outcome) and what API Gateway makes of them:
  allow/public  the principal satisfies the route, or the route is public
  forbidden     a valid token that lacks what the route needs (scope, role, group, claim) or a route the table
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
from typing import Any, Callable, Mapping, Sequence

from lambdas.observability.emf import DEFAULT_NAMESPACE, DecisionMetrics, check_namespace
from lambdas.validation.cert_binding import api_gateway_client_certificate
from lambdas.validation.possession import RequestChecks, request_checks_from_env
from lambdas.validation.vetted_keys import trust_vetted_keys_beside
from lambdas.validation.route_decision import RouteDecision, decide_route
from lambdas.validation.route_table import ApiRoutes, Route, RouteTable, RouteTableError, needs_shared_store

ENV_POLICY = "AUTHGATE_POLICY"
ENV_API = "AUTHGATE_API"
ENV_MAX_POLICY_BYTES = "AUTHGATE_MAX_POLICY_BYTES"
ENV_METRICS_NAMESPACE = "AUTHGATE_METRICS_NAMESPACE"


class AuthorizerMisconfigured(RuntimeError):
    """The authorizer's configuration is missing or invalid; every request fails (500) until it is fixed."""


class AuthorizerUnavailable(RuntimeError):
    """The issuer's keys cannot be had right now; the request fails (500), uncached, and the client may retry."""


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
                 max_policy_bytes: int | None = None, settings: Any = None,
                 metrics_namespace: str = DEFAULT_NAMESPACE, cookie_source: Any = None,
                 request_checks: RequestChecks | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.table = table
        self.settings = settings  # the handler kind's own settings (HTTP API response mode, WebSocket token source)
        self.api: ApiRoutes = table.api(api_name)
        self.api_name = api_name
        self.verifier = verifier if verifier is not None else table.verifier()
        self.max_policy_bytes = max_policy_bytes
        self._policy_builder = None
        # DPoP replay records, the denylist, introspection clients: every request's possession and freshness checks,
        # from `environ` (from_env's, else the process's).
        try:
            self.request_checks = request_checks if request_checks is not None else request_checks_from_env(
                os.environ if environ is None else environ,
                needs_shared_store=needs_shared_store(self.api, self.verifier.issuers),
                needs_dpop_nonces=self.api.needs_dpop_nonces)
        except ValueError as exc:
            raise AuthorizerMisconfigured(str(exc)) from None
        # The CloudWatch EMF members of every audit line (decision counts, latency, key-set events).
        self.cookie_source = cookie_source
        if cookie_source is None and any(r.token_source == "cookie" for r in self.api.routes):
            raise AuthorizerMisconfigured(
                f"API {api_name!r} has routes with token_source cookie; set AUTHGATE_COOKIE_KEYS (the token handler's "
                "cookie keys) and AUTHGATE_WEB_ORIGIN (the web app's origin) so the session cookie can be read")
        self.metrics = DecisionMetrics(api_name, route_keys=[r.route_key for r in self.api.routes],
                                       key_metrics=self.verifier.key_metrics, namespace=metrics_namespace)

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
        namespace = environ.get(ENV_METRICS_NAMESPACE)
        if namespace is not None:
            try:
                options.setdefault("metrics_namespace", check_namespace(namespace))
            except ValueError as exc:
                raise AuthorizerMisconfigured(f"{ENV_METRICS_NAMESPACE}: {exc}") from None
        if environ.get("AUTHGATE_COOKIE_KEYS") or environ.get("AUTHGATE_COOKIE_KEYS_ARN"):
            from lambdas.token_handler.api_side import SessionCookieSource
            try:
                options.setdefault("cookie_source", SessionCookieSource.from_environment(environ))
            except ValueError as exc:
                raise AuthorizerMisconfigured(str(exc)) from None
        options.setdefault("environ", environ)
        # The asset's record of the bundled keys its builder tested spares the cold start their prime-modulus test.
        trust_vetted_keys_beside(path)
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

    def decide(self, authorization: str | Sequence[str] | None, route: Route | None, *,
               all_routes: bool = False, session_cookie: Any = None, **request_facts: Any) -> RouteDecision:
        """The shared route decision (lambdas.validation.route_decision) on this runtime's API and Verifier, with
        its request checks; request_facts as decide_route takes them (gateway_request_facts reads them)."""
        return decide_route(self.api, self.verifier, route, authorization, all_routes=all_routes,
                            session_cookie=session_cookie, checks=self.request_checks, **request_facts)

    def session_cookie(self, route: Route | None, method: str, headers: Mapping[str, Any] | None,
                       cookie_values: Sequence[str]) -> Any:
        """The request's session cookie, read only for a route that takes its token from it (None otherwise)."""
        if self.cookie_source is None:
            return None
        from lambdas.token_handler.api_side import route_session_cookie
        return route_session_cookie(self.cookie_source, route, method, headers, cookie_values)


def gateway_request_facts(event: Mapping[str, Any], *, dpop_header: str | tuple | None) -> dict[str, Any]:
    """The request facts of an API Gateway event (REST v1 REQUEST or HTTP API v2): the method and the URI the client
    called (https, the domain name and the path API Gateway received, stage or base path included, as a DPoP
    proof's htu names them) and the mutual TLS client certificate. A TOKEN event has none of these."""
    context = event.get("requestContext")
    context = context if isinstance(context, Mapping) else {}
    http = context.get("http") if isinstance(context.get("http"), Mapping) else {}
    method = http.get("method") or event.get("httpMethod") or context.get("httpMethod")
    path = event.get("rawPath") if "http" in context else context.get("path")
    domain = context.get("domainName")
    uri = f"https://{domain}{path}" if isinstance(domain, str) and isinstance(path, str) else None
    if isinstance(dpop_header, str) and "," in dpop_header:
        # HTTP API joins a repeated header with commas; a compact JWS never holds one.
        dpop_header = tuple(dpop_header.split(","))
    return {"request_method": method if isinstance(method, str) else None, "request_uri": uri,
            "dpop_proof": dpop_header, "client_certificate": api_gateway_client_certificate(event)}


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
