"""The forward-auth service served for real: `authgate serve forward-auth` under uvicorn, probes, SIGTERM, lifespan."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lambdas.forward_auth.app import ForwardAuthApp
from tests.support.http_server import LocalHttpServer
from tests.support.tokens import mint

uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
REPO = Path(__file__).resolve().parents[3]


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def wait_ready(base: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(base + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{base} never became ready")


POLICY = """\
issuers:
  local:
    issuer: {issuer}
    local_development: true
    audiences: [orders-api]
    jwks_uri: {issuer}/jwks.json
apis:
  orders:
    routes:
      "GET /health": {{public: true}}
      "GET /orders": {{issuers: [local], scopes: [orders:read]}}
      "POST /orders": {{issuers: [local], scopes_all: [orders:read, orders:write]}}
"""


def test_serve_command_decides_and_stops_on_sigterm(tmp_path, signing_key):
    with LocalHttpServer() as idp:
        idp.serve_json("/jwks.json", signing_key.jwks())
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(issuer=idp.base_url))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "stacks.cli", "serve", "forward-auth", "--policy", str(policy),
                                 "--api", "orders", "--listen", "127.0.0.1:0"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()
            assert "listening on http://127.0.0.1:" in line, line + proc.stderr.read()
            base = line.split("listening on ", 1)[1].split()[0]
            wait_ready(base)
            assert get(base + "/healthz")[0] == 200
            token = mint(signing_key, issuer=idp.base_url, scope="orders:read", client_id="orders-web")
            status, headers, _ = get(base + "/auth", {"X-Original-Method": "GET", "X-Original-URI": "/orders",
                                                      "Authorization": f"Bearer {token}"})
            assert status == 200 and headers["x-authgate-subject"] == "user-123"
            status, headers, _ = get(base + "/auth", {"X-Original-Method": "POST", "X-Original-URI": "/orders",
                                                      "Authorization": f"Bearer {token}"})
            assert status == 403 and 'scope="orders:read orders:write"' in headers["www-authenticate"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
            audit = [json.loads(l) for l in proc.stdout.read().splitlines() if l.startswith('{"authgate"')]
            assert [a["status"] for a in audit] == [200, 403]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_serve_command_refuses_a_bad_api_name(tmp_path, signing_key):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(issuer="http://127.0.0.1:9"))
    result = subprocess.run([sys.executable, "-m", "stacks.cli", "serve", "forward-auth", "--policy", str(policy),
                             "--api", "billing", "--listen", "127.0.0.1:0"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 2 and "billing" in result.stderr


class InProcessServer:
    """uvicorn in a thread on an ephemeral loopback port (signal handlers stay with the main thread)."""

    def __init__(self, app) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning",
                                timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "InProcessServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def test_ready_only_after_keys_are_loaded(make_service, table_for, signing_key):
    with LocalHttpServer() as idp:
        idp.hold("/jwks.json")
        idp.serve_json("/jwks.json", signing_key.jwks())
        service = make_service(table_for(jwks=None, jwks_uri=idp.url("/jwks.json"), allow_insecure_http=True))
        with InProcessServer(ForwardAuthApp(service)) as running:
            assert idp.wait_for_requests("/jwks.json", 1)
            status, _, body = get(running.base + "/readyz")
            assert status == 503 and b"not loaded" in body
            assert get(running.base + "/healthz")[0] == 200
            idp.release("/jwks.json")
            wait_ready(running.base)


def test_sigterm_lets_requests_in_flight_finish(make_service, token_for):
    entered, proceed = threading.Event(), threading.Event()

    def slow_observer(record: dict) -> None:   # runs inside the decision, before the answer is sent
        entered.set()
        proceed.wait(10)

    app = ForwardAuthApp(make_service(observers=[slow_observer]))
    result: dict = {}
    with InProcessServer(app) as running:
        wait_ready(running.base)
        headers = {"X-Original-Method": "GET", "X-Original-URI": "/orders", "Authorization": f"Bearer {token_for()}"}
        client = threading.Thread(target=lambda: result.update(answer=get(running.base + "/auth", headers)))
        client.start()
        assert entered.wait(10)
        running.server.handle_exit(signal.SIGTERM, None)
        port = int(running.base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while accepts(port):   # uvicorn closes the listener first ...
            assert time.monotonic() < deadline, "the listener stayed open after SIGTERM"
            time.sleep(0.05)
        proceed.set()          # ... and the request in flight still gets its answer.
        client.join(10)
    assert result["answer"][0] == 200


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def lifespan(app: ForwardAuthApp) -> list[dict]:
    sent: list[dict] = []

    async def run() -> None:
        queue: asyncio.Queue = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "lifespan.startup.complete":
                await queue.put({"type": "lifespan.shutdown"})

        await app({"type": "lifespan"}, queue.get, send)

    asyncio.run(run())
    return sent


def test_a_misconfigured_service_fails_startup_saying_why(tmp_path):
    app = ForwardAuthApp.from_env({"AUTHGATE_POLICY": str(tmp_path / "missing.json"), "AUTHGATE_API": "orders"})
    sent = lifespan(app)
    assert sent[-1]["type"] == "lifespan.startup.failed" and "missing.json" in sent[-1]["message"]


def test_extra_endpoints_are_mounted_beside_the_probes(service):
    async def metrics(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"decisions 0\n"})

    app = ForwardAuthApp(service, endpoints={"/metrics": metrics})
    with InProcessServer(app) as running:
        assert get(running.base + "/metrics")[2] == b"decisions 0\n"
    with pytest.raises(ValueError):
        ForwardAuthApp(service, endpoints={"/readyz": metrics})
