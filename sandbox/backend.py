"""Service B: a sample backend on loopback that checks its callers with the backend guard and counts every arrival.

The counter is the demo's proof of gateway enforcement: it counts every request that reaches the backend at all,
before the guard looks at it, so a request refused at a gateway shows up as "the counter did not move".
One backend can listen on several ports ("doors"), one per way a gateway hands over the caller's identity: a bearer
token passed through (AWS, APIM), or the X-Apigateway-Api-Userinfo header (GCP). All doors share one counter.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping, Sequence

from lambdas.guards.gcp import USERINFO_HEADER, GcpGatewayGuard
from lambdas.guards.require import BearerGuard
from lambdas.validation import TokenRejected
from lambdas.validation.route_decision import decide_for_forwarded_claims
from lambdas.validation.route_table import ApiRoutes

MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class GuardVerdict:
    """The backend guard's answer for one request: allowed, or the status and reason it refused with."""

    allowed: bool
    status: int = 200
    code: str = ""
    message: str = ""
    subject: str = ""


# A guard takes (method, path, lower-cased headers) and decides; bearer_door and gcp_userinfo_door build them from
# lambdas.guards, the same guards a real backend would use (one validation path).
Guard = Callable[[str, str, Mapping[str, str]], GuardVerdict]


def _verdict(err: TokenRejected) -> GuardVerdict:
    status = 404 if err.code == "route_not_found" else err.status
    return GuardVerdict(False, status, err.code, err.message)


def bearer_door(guard: BearerGuard) -> Guard:
    """Behind AWS and APIM the caller's bearer token is passed through; the backend checks it again against the
    route table's rule for the route (lambdas.guards.BearerGuard.check)."""
    def check(method: str, path: str, headers: Mapping[str, str]) -> GuardVerdict:
        try:
            principal = guard.check(headers, method, path.split("?", 1)[0])
        except TokenRejected as err:
            return _verdict(err)
        return GuardVerdict(True, subject=principal.subject if principal else "(public route)")

    return check


def gcp_userinfo_door(readers: Sequence[GcpGatewayGuard], routes: ApiRoutes) -> Guard:
    """Behind GCP API Gateway: lambdas.guards.GcpGatewayGuard verifies the gateway's own Google-signed ID token in
    Authorization, then reads the caller's verified claims from X-Apigateway-Api-Userinfo; the backend then requires
    what the gateway cannot check (scopes, roles, claims) with the shared route decision for forwarded claims
    (which refuses routes needing a proof or a re-check: none reaches this door). One reader per issuer of the route
    table, each naming its issuer as the route table does."""
    def check(method: str, path: str, headers: Mapping[str, str]) -> GuardVerdict:
        route = routes.match(method, path.split("?", 1)[0])
        if route is None:
            return GuardVerdict(False, 404, "route_not_found", f"{method} {path[:200]} is not a route")
        if route.public:
            return GuardVerdict(True, subject="(public route)")
        last: TokenRejected | None = None
        for reader in readers:
            try:
                principal = reader.authenticate(headers)
            except TokenRejected as err:
                last = err
                if err.code == "unknown_issuer" and USERINFO_HEADER in err.message.lower():
                    continue   # another issuer's reader may accept it
                return _verdict(err)
            decision = decide_for_forwarded_claims(routes, route, principal, forwarded_by="GCP API Gateway")
            if not decision.allowed:
                return _verdict(decision.rejection)
            return GuardVerdict(True, subject=principal.subject)
        return _verdict(last or TokenRejected("unknown_issuer", "no issuer of this API matches"))

    return check


class Backend:
    """The sample API. `doors` maps a door name to the guard that protects it."""

    def __init__(self, doors: Mapping[str, Guard]) -> None:
        self._lock = threading.Lock()
        self.arrivals: Counter[str] = Counter()      # door -> requests that reached the backend
        self.accepted: Counter[str] = Counter()      # door -> requests the guard let through
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        self._guards: dict[str, Guard] = dict(doors)
        for door in doors:
            server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class(door))
            server.daemon_threads = True
            self._servers[door] = server

    def bind(self, door: str, guard: Guard) -> None:
        """Replace a door's guard (before start: a guard may need to know its door's URL)."""
        if door not in self._servers:
            raise KeyError(f"no door {door!r}")
        if self._threads:
            raise RuntimeError("bind guards before the backend starts")
        self._guards[door] = guard

    def url(self, door: str) -> str:
        host, port = self._servers[door].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def total_arrivals(self) -> int:
        with self._lock:
            return sum(self.arrivals.values())

    def start(self) -> "Backend":
        for door, server in self._servers.items():
            thread = threading.Thread(target=server.serve_forever, name=f"backend-{door}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def _count(self, door: str, accepted: bool) -> int:
        with self._lock:
            self.arrivals[door] += 1
            if accepted:
                self.accepted[door] += 1
            return sum(self.arrivals.values())

    def _handler_class(self, door: str) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(min(length, MAX_BODY_BYTES))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verdict = backend._guards[door](self.command, self.path, headers)
                except Exception as exc:  # a guard failure is a refusal, never a pass
                    verdict = GuardVerdict(False, 500, "guard_error", f"{type(exc).__name__}: {exc}")
                seen = backend._count(door, verdict.allowed)
                if verdict.allowed:
                    # The identity headers a proxy set (X-Authgate-*), echoed so tests see exactly what arrived.
                    identity = {k: v for k, v in headers.items() if k.startswith("x-authgate-")}
                    status, body = 200, {"service": "orders", "door": door, "method": self.command,
                                         "path": self.path, "caller": verdict.subject, "requests_seen": seen,
                                         "identity_headers": identity}
                else:
                    status, body = verdict.status, {"message": verdict.message, "code": verdict.code,
                                                    "refused_by": "backend guard", "requests_seen": seen}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        return Handler
