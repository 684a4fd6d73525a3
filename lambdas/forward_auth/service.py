"""The forward-auth decision: one check request in, one answer out (status, headers, body), one audit line.

This is the core every adapter shares (the ASGI app in app.py serves it; tests call it directly). It loads the
route table and its Verifier like the authorizers (`AuthorizerRuntime`) and decides through the one route decision
(`lambdas.validation.route_decision.decide_request`), so a request is decided here exactly as the Lambda authorizers
and the backend guards decide it, DPoP proofs and certificate binding included: the URL and client certificate
come from the proxy's forwarded headers when the check request's peer is a trusted proxy (proxy_facts.py).

Answers (RFC 6750 3.1 for the WWW-Authenticate forms):
  200  allowed; identity headers (subject, client id, scopes, roles, groups, tenant, issuer) for the proxy to pass on
  401  no token (`Bearer realm=...`, no error code, as RFC 6750 3.1 asks), or a bad token, a token sent twice, an
       issuer the route does not accept, an ID token on an access route (`error="invalid_token"`); a missing or
       bad DPoP proof gets DPoP's challenge (`DPoP error="invalid_dpop_proof", algs="..."`, RFC 9449 7.1), and a
       proof without the server's nonce on a dpop_nonce route `DPoP error="use_dpop_nonce"` with a DPoP-Nonce
       header to retry with (RFC 9449 9; the proxy passes both back to the client)
  403  a good token lacking what the route needs (`error="insufficient_scope"`, with `scope=` when a scope is
       missing), or a route the table does not know (refused, never allowed)
  400  the check request does not say unambiguously which request to decide (conventions.py), or a trusted
       proxy's forwarded URL or client certificate cannot be read one way only (proxy_facts.py)
  503  the issuer's keys cannot be had: fail closed, `Retry-After`
Never 200 on an error of any kind: an unexpected exception is a 503 with code `internal_error`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from lambdas.authorizers.audit import audit_record, emit
from lambdas.authorizers.runtime import AuthorizerMisconfigured, AuthorizerRuntime, elapsed_us
from lambdas.observability.prometheus import DecisionCounters, render_prometheus
from lambdas.validation.errors import DPOP_CODES, POSSESSION_CODES
from lambdas.validation.possession import dpop_nonce_header, fresh_dpop_nonce_header, www_authenticate
from lambdas.validation.route_decision import Outcome, RouteDecision, decide_request

from .conventions import CONVENTIONS, DEFAULT_ENVOY_PATH_PREFIX, BadCheckRequest, original_request
from .identity_headers import identity_headers, parse_header_names
from .proxy_facts import (ENV_PUBLIC_ORIGIN, ENV_TRUSTED_PROXIES, TrustedProxies, parse_public_origin,
                          parse_trusted_proxies, proxy_facts)

ENV_CONVENTION = "AUTHGATE_FORWARD_AUTH_CONVENTION"
ENV_PATH_PREFIX = "AUTHGATE_FORWARD_AUTH_PATH_PREFIX"
ENV_IDENTITY_HEADERS = "AUTHGATE_IDENTITY_HEADERS"
ENV_TOKEN_HEADER = "AUTHGATE_TOKEN_HEADER"
ENV_REALM = "AUTHGATE_REALM"
RETRY_AFTER_SECONDS = "5"

MAX_REQUEST_ID = 128
DECISION_HEADER = "X-Authgate-Decision"   # the reason code (or "allow"), for the proxy's access log; never a secret

# An observer receives every decision's audit record (a dict) after it is written; metrics hook in here.
Observer = Callable[[dict], None]


@dataclass(frozen=True)
class ForwardAuthSettings:
    """How the service reads check requests and shapes answers (from the environment, checked at start)."""

    convention: str = "auto"
    envoy_path_prefix: str = DEFAULT_ENVOY_PATH_PREFIX
    header_names: Mapping[str, str] = field(default_factory=lambda: parse_header_names(None))
    token_header: str = "authorization"
    realm: str = "authgate"
    # Peers whose forwarded URL and client certificate headers are read (proxy_facts.py); none by default.
    trusted_proxies: TrustedProxies = ()
    public_origin: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "ForwardAuthSettings":
        convention = environ.get(ENV_CONVENTION, "auto").strip().lower()
        if convention not in CONVENTIONS:
            raise AuthorizerMisconfigured(f"{ENV_CONVENTION} must be one of {', '.join(CONVENTIONS)}, found "
                                          f"{convention!r}")
        prefix = environ.get(ENV_PATH_PREFIX, DEFAULT_ENVOY_PATH_PREFIX).strip()
        if not prefix.startswith("/") or prefix == "/" or any(c in prefix for c in "?#% "):
            raise AuthorizerMisconfigured(f"{ENV_PATH_PREFIX} must be a path such as /ext-authz (not '/'), found "
                                          f"{prefix!r}")
        try:
            names = parse_header_names(environ.get(ENV_IDENTITY_HEADERS))
        except ValueError as exc:
            raise AuthorizerMisconfigured(str(exc)) from None
        realm = environ.get(ENV_REALM, "authgate")
        if not realm or any(c in realm for c in '"\\') or not realm.isprintable() or not realm.isascii():
            raise AuthorizerMisconfigured(f"{ENV_REALM} must be printable ASCII without quotes, found {realm!r}")
        try:
            trusted = parse_trusted_proxies(environ.get(ENV_TRUSTED_PROXIES))
            public_origin = parse_public_origin(environ.get(ENV_PUBLIC_ORIGIN))
        except ValueError as exc:
            raise AuthorizerMisconfigured(str(exc)) from None
        return cls(convention=convention, envoy_path_prefix=prefix.rstrip("/"), header_names=names,
                   token_header=environ.get(ENV_TOKEN_HEADER, "authorization").strip().lower() or "authorization",
                   realm=realm, trusted_proxies=trusted, public_origin=public_origin)


@dataclass(frozen=True)
class Answer:
    """What the service replies to one check request."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    outcome: str                       # an Outcome's value (allow, public, unauthorized, ...) or bad_request
    code: str | None


def _quoted(text: str, limit: int = 200) -> str:
    """Text fit for an RFC 6750 quoted attribute value (%x20-21 / %x23-5B / %x5D-7E)."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text[:limit])


def _loggable_request_id(value: str | None) -> bool:
    """A request id reaches the audit line only as a short visible-ASCII token: the proxy passes the client's
    X-Request-Id on, and a client must not write kilobytes of its own text into every audit line."""
    return bool(value) and len(value) <= MAX_REQUEST_ID and all(0x21 <= ord(c) < 0x7F for c in value)


def headers_of(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, tuple[str, ...]]:
    """ASGI headers as lower-case name -> every value received, in order (so a repeated header stays visible)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        out[key] = out.get(key, ()) + (value.decode("latin-1"),)
    return out


class ForwardAuthService:
    """Decides check requests for one API of a route table."""

    def __init__(self, runtime: AuthorizerRuntime, settings: ForwardAuthSettings | None = None, *,
                 observers: Sequence[Observer] = ()) -> None:
        self.runtime = runtime
        self.settings = settings or ForwardAuthSettings()
        # Counts every decision for /metrics, labelled like the authorizers' EMF metrics.
        self.decision_counters = DecisionCounters(runtime.metrics.labeller)
        self.observers = [self.decision_counters, *observers]
        unverifiable = self.unverifiable_bindings()
        if unverifiable:
            sys.stderr.write(f"authgate forward-auth: {unverifiable}\n")

    def unverifiable_bindings(self) -> str | None:
        """Why bound tokens will be refused whatever the proxy sends (no proxy trusted, no public origin), when the
        API can receive them; None when it cannot or when they can be checked. Said once at start: a deployment
        that forgot AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES refuses them closed, and the operator should know why."""
        settings = self.settings
        if settings.trusted_proxies:
            return None
        routes = self.runtime.api.routes
        issuers = {name for route in routes for name in route.issuers}
        bindings = [config.binding for config in self.runtime.verifier.issuers if config.display_name in issuers]
        certificates = any(r.proof == "mtls" for r in routes) or any(b.mtls for b in bindings)
        dpop = (any(r.proof == "dpop" for r in routes) or any(b.dpop for b in bindings)) and not settings.public_origin
        if not (certificates or dpop):
            return None
        kinds = " and ".join(k for k, on in (("certificate-bound", certificates), ("DPoP-bound", dpop)) if on)
        return (f"{kinds} tokens will be refused: no trusted proxy is configured ({ENV_TRUSTED_PROXIES}), so no "
                f"forwarded {'client certificate' if certificates else 'URL'} is read"
                + ("" if not dpop else f" (or set {ENV_PUBLIC_ORIGIN} for DPoP)"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> "ForwardAuthService":
        """AUTHGATE_POLICY and AUTHGATE_API as for the authorizers, plus the AUTHGATE_FORWARD_AUTH_* settings.
        Raises AuthorizerMisconfigured naming what is wrong."""
        environ = os.environ if environ is None else environ
        settings = ForwardAuthSettings.from_env(environ)
        return cls(AuthorizerRuntime.from_env(environ), settings, **options)

    def hydrate(self) -> None:
        """Fetch every remote key set now; raises TokenRejected("jwks_unavailable") if one cannot be had."""
        self.runtime.verifier.hydrate()

    def metrics_text(self) -> str:
        """The decision and key-set counters as Prometheus text (lambdas/observability/prometheus.py)."""
        return render_prometheus(self.decision_counters, self.runtime.verifier.key_metrics)

    def check(self, method: str, path: str, headers: Mapping[str, Sequence[str]], *,
              request_id: str | None = None, peer: str | None = None) -> Answer:
        """Decide one check request. `peer` is its TCP peer's address: forwarded URL and certificate headers are
        read only when it is a trusted proxy (proxy_facts.py)."""
        started = time.perf_counter_ns()
        try:
            answer, route_key, principal = self._check(method, path, headers, peer)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the answer is closed, never 200
            sys.stderr.write(f"authgate forward-auth: decision failed ({type(exc).__name__}: {exc})\n")
            answer, route_key, principal = self._unavailable("internal_error"), None, None
        record = audit_record(authorizer="forward_auth", decision=answer.outcome, code=answer.code, route=route_key,
                              principal=principal, latency_us=elapsed_us(started),
                              request_id=request_id if _loggable_request_id(request_id) else None,
                              status=answer.status, metrics=self.runtime.metrics)
        emit(record)
        for observer in self.observers:
            observer(record)
        return answer

    def _check(self, method: str, path: str, headers: Mapping[str, Sequence[str]], peer: str | None):
        settings = self.settings
        try:
            original = original_request(method, path, headers, convention=settings.convention,
                                        envoy_path_prefix=settings.envoy_path_prefix)
            proxy = proxy_facts(original, headers, peer=peer, trusted=settings.trusted_proxies,
                                public_origin=settings.public_origin)
        except BadCheckRequest as exc:
            body = json.dumps({"error": "bad_check_request", "message": str(exc)}).encode()
            return Answer(400, (("content-type", "application/json"), (DECISION_HEADER, "bad_check_request")), body,
                          "bad_request", "bad_check_request"), None, None
        tokens = headers.get(settings.token_header) or None   # every value: a repeated header is refused
        # DPoP proofs, certificate binding and the denylist go through the same checks as the authorizers', with
        # the URL and certificate the trusted proxy vouched for (None otherwise: bound tokens are then refused).
        decision = decide_request(self.runtime.api, self.runtime.verifier, original.method, original.path, tokens,
                                  dpop_proof=headers.get("dpop") or None, request_uri=proxy.request_uri,
                                  client_certificate=proxy.client_certificate, checks=self.runtime.request_checks)
        route_key = decision.route.route_key if decision.route else f"{original.method} {original.path[:200]}"
        return self._answer(decision, tokens, unread=proxy.unread), route_key, decision.principal

    def _answer(self, decision: RouteDecision, tokens: Any, *, unread: str | None = None) -> Answer:
        if decision.allowed:
            headers = [(DECISION_HEADER, decision.outcome.value)]
            if decision.principal is not None:
                headers.extend(identity_headers(decision.principal, self.settings.header_names))
            nonce = fresh_dpop_nonce_header(decision.route, self.runtime.request_checks)
            if nonce is not None:   # RFC 9449 8.2: the proxy hands it to the client (NGINX add_header, Istio)
                headers.append((nonce[0].lower(), nonce[1]))
            return Answer(200, tuple(headers), b"", decision.outcome.value, None)
        if decision.outcome is Outcome.UNAVAILABLE:
            return self._unavailable(decision.code or "jwks_unavailable")
        rejection = decision.rejection
        code = rejection.code if rejection is not None else "denied"
        message = rejection.message if rejection is not None else code
        if unread and code in POSSESSION_CODES:
            message = f"{message} ({unread})"   # the operator's clue: the proxy is not trusted, or sent too little
        realm = f'realm="{self.settings.realm}"'
        if decision.outcome is Outcome.UNAUTHORIZED and code in DPOP_CODES:
            # RFC 9449 7.1: a DPoP refusal is answered with DPoP's challenge and the algorithms accepted.
            status = 401
            challenge = (f'{www_authenticate(rejection, proof="dpop", issuer=self._issuer(decision))}, {realm}, '
                         f'error_description="{_quoted(f"{code}: {message}")}"')
        elif decision.outcome is Outcome.UNAUTHORIZED:
            status = 401
            described = f'error="invalid_token", error_description="{_quoted(f"{code}: {message}")}"'
            challenge = f"Bearer {realm}" if tokens is None else f"Bearer {realm}, {described}"
        else:
            status = 403
            described = f'error="insufficient_scope", error_description="{_quoted(f"{code}: {message}")}"'
            challenge = f"Bearer {realm}, {described}"
            if code == "insufficient_scope" and rejection is not None and rejection.expected:
                # RFC 6750 3.1's scope attribute: the scopes the unmet condition names (all-of, or the any-of list).
                challenge += f', scope="{_quoted(" ".join(rejection.expected), 1000)}"'
        body = json.dumps({"error": code, "message": message}).encode()
        headers = [("content-type", "application/json"), (DECISION_HEADER, code)]
        if code != "route_not_found":  # no token would open an unknown route: no challenge to answer
            headers.append(("www-authenticate", challenge))
        nonce = dpop_nonce_header(rejection)
        if nonce is not None:   # RFC 9449 9: use_dpop_nonce comes with the nonce to retry with
            headers.append((nonce[0].lower(), nonce[1]))
        return Answer(status, tuple(headers), body, decision.outcome.value, code)

    def _issuer(self, decision: RouteDecision) -> Any:
        """The IssuerConfig of the decision's principal (its DPoP algorithms), None when unknown."""
        name = getattr(decision.principal, "issuer_name", None)
        return next((config for config in self.runtime.verifier.issuers if config.display_name == name), None)

    @staticmethod
    def _unavailable(code: str) -> Answer:
        body = json.dumps({"error": code, "message": "the issuer's keys cannot be had right now; try again"}).encode()
        return Answer(503, (("content-type", "application/json"), ("retry-after", RETRY_AFTER_SECONDS),
                            (DECISION_HEADER, code)), body, "unavailable", code)
