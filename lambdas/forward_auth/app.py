"""The forward-auth decision service as an ASGI application (served by uvicorn: `authgate serve forward-auth`).

    app = ForwardAuthApp.from_env()          # AUTHGATE_POLICY, AUTHGATE_API, AUTHGATE_FORWARD_AUTH_* (service.py)

Paths:
  GET /healthz   200 while the process serves requests (liveness)
  GET /readyz    200 once the issuers' keys are loaded, 503 before that and while shutting down (readiness)
  GET /metrics   the decision and key-set counters as Prometheus text (503 until the configuration is loaded)
  anything else  a check request, answered by ForwardAuthService (200 / 400 / 401 / 403 / 503)
More read-only endpoints are mounted with `endpoints={"/path": asgi_app}` (one given for /metrics replaces the
built-in exporter); they are matched exactly, before check requests, like the two probes.

Lifespan: at startup the configuration is loaded (a broken one fails the startup, so the server exits saying why
instead of serving 503s) and the keys are fetched in the background, retried until they arrive; `/readyz` turns
200 then. At shutdown (uvicorn on SIGTERM: stop accepting, finish requests in flight) readiness turns 503 first.
Decisions run in a small thread pool: a key refetch blocks on the network for up to its timeout, and the probes
and other requests must not wait behind it.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Mapping

from lambdas.authorizers.runtime import AuthorizerMisconfigured
from lambdas.observability.prometheus import CONTENT_TYPE as PROMETHEUS_TEXT

from .service import ForwardAuthService, headers_of

Asgi = Callable[[dict, Callable, Callable], Awaitable[None]]
ENV_DECISION_THREADS = "AUTHGATE_DECISION_THREADS"
HYDRATE_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)   # then every 5 s until the keys arrive
PROBES = ("/healthz", "/readyz")
METRICS_PATH = "/metrics"


async def _reply(send: Callable, status: int, headers: Any, body: bytes) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _json(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class ForwardAuthApp:
    """ASGI app over one ForwardAuthService (given, or built by `factory` at startup)."""

    def __init__(self, service: ForwardAuthService | None = None, *,
                 factory: Callable[[], ForwardAuthService] | None = None,
                 endpoints: Mapping[str, Asgi] | None = None, decision_threads: int = 4) -> None:
        if (service is None) == (factory is None):
            raise ValueError("ForwardAuthApp needs exactly one of service= or factory=")
        reserved = set(PROBES).intersection(endpoints or {})
        if reserved:
            raise ValueError(f"endpoints may not replace the probes: {sorted(reserved)}")
        self.service = service
        self._factory = factory
        self.endpoints = {METRICS_PATH: self._metrics, **(endpoints or {})}
        self.ready = False
        self.draining = False
        self.startup_error: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=max(1, decision_threads),
                                            thread_name_prefix="authgate-decision")
        self._hydrating: asyncio.Task | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> "ForwardAuthApp":
        environ = os.environ if environ is None else environ
        threads = environ.get(ENV_DECISION_THREADS, "4")
        if not threads.isdigit() or not 1 <= int(threads) <= 64:
            raise AuthorizerMisconfigured(f"{ENV_DECISION_THREADS} must be a whole number from 1 to 64, found "
                                          f"{threads!r}")
        return cls(factory=lambda: ForwardAuthService.from_env(environ), decision_threads=int(threads), **options)

    # --- lifespan -------------------------------------------------------------------------------------------
    def _load(self) -> ForwardAuthService:
        if self.service is None:
            try:
                self.service = self._factory()  # type: ignore[misc]
            except AuthorizerMisconfigured as exc:
                self.startup_error = str(exc)
                raise
        return self.service

    async def _hydrate_until_ready(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self.draining:
            try:
                await loop.run_in_executor(self._executor, self.service.hydrate)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - keep trying; decisions fail closed meanwhile
                delay = HYDRATE_RETRY_SECONDS[min(attempt, len(HYDRATE_RETRY_SECONDS) - 1)]
                sys.stderr.write(f"authgate forward-auth: issuer keys not loaded ({type(exc).__name__}: {exc}); "
                                 f"retrying in {delay:g}s\n")
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self.ready = True
            return

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._load()
                except AuthorizerMisconfigured as exc:
                    await send({"type": "lifespan.startup.failed",
                                "message": f"authgate forward-auth is misconfigured: {exc}"})
                    return
                self._hydrating = asyncio.get_running_loop().create_task(self._hydrate_until_ready())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.draining = True
                self.ready = False
                if self._hydrating is not None:
                    self._hydrating.cancel()
                self._executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- requests -------------------------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise RuntimeError(f"the forward-auth service speaks HTTP only, not {kind}")
        path, method = scope.get("path", "/"), scope.get("method", "GET")
        if path in PROBES and method in ("GET", "HEAD"):
            await self._probe(path, send)
            return
        endpoint = self.endpoints.get(path)
        if endpoint is not None:
            await endpoint(scope, receive, send)
            return
        if self.service is None:
            try:
                self._load()
            except AuthorizerMisconfigured as exc:
                await _reply(send, 503, [("content-type", "application/json")],
                             _json({"error": "misconfigured", "message": str(exc)}))
                return
        headers = headers_of(scope.get("headers") or [])
        request_id = (headers.get("x-request-id") or (None,))[0]
        # The TCP peer, which decides whether forwarded URL and certificate headers are read. The server must not
        # rewrite it from X-Forwarded-For (uvicorn's proxy_headers is off wherever authgate starts uvicorn).
        client = scope.get("client")
        peer = client[0] if client else None
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(self._executor, lambda: self.service.check(  # type: ignore[union-attr]
                method, path, headers, request_id=request_id, peer=peer))
        except RuntimeError:  # the pool is shut down: the server is stopping
            await _reply(send, 503, [("content-type", "application/json"), ("retry-after", "1")],
                         _json({"error": "shutting_down", "message": "the service is stopping; try again"}))
            return
        await _reply(send, answer.status, answer.headers, answer.body)

    async def _metrics(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _reply(send, 405, [("allow", "GET, HEAD"), ("content-type", "application/json")],
                         _json({"error": "method_not_allowed", "message": "GET /metrics"}))
            return
        if self.service is None:
            await _reply(send, 503, [("content-type", "application/json")],
                         _json({"error": "not_loaded", "message": self.startup_error or "configuration not loaded"}))
            return
        await _reply(send, 200, [("content-type", PROMETHEUS_TEXT)], self.service.metrics_text().encode("utf-8"))

    async def _probe(self, path: str, send: Callable) -> None:
        if path == "/healthz":
            await _reply(send, 200, [("content-type", "application/json")], _json({"status": "alive"}))
            return
        if self.ready:
            await _reply(send, 200, [("content-type", "application/json")], _json({"status": "ready"}))
            return
        reason = ("shutting down" if self.draining else self.startup_error or "issuer keys not loaded yet")
        await _reply(send, 503, [("content-type", "application/json")], _json({"status": "not ready",
                                                                              "reason": reason}))


def app_from_env() -> ForwardAuthApp:
    """The uvicorn factory (`uvicorn --factory lambdas.forward_auth.app:app_from_env`), used by the container."""
    return ForwardAuthApp.from_env()
