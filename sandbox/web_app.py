"""Browser sign-in in the sandbox: one loopback origin serving a tiny SPA page, the token handler under /auth and /api
routes behind the HTTP API Lambda authorizer reading the session cookie, in front of a backend that records what
reached it. Both Lambda handlers run as deployed (sandbox.gateways.lambda_runtime: their own module, their
environment, payload 2.0 events as API Gateway builds them).

    with WebSignIn.start() as web:        # starts the local OpenID provider too
        web.origin                          # http://127.0.0.1:PORT, the SPA
        web.backend_arrivals                # what the backend saw (identity per request)

The provider's access tokens live `access_token_ttl` seconds (short, so a test sees a refresh) and its refresh tokens
rotate, a reused one revoking the grant.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox.idp.config import IdpSetup, build_idp_setup
from sandbox.idp.launcher import IdpProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
WEB_POLICY = Path(__file__).resolve().parent / "web_policy.yaml"
BROWSER_SCRIPT = Path(__file__).resolve().parent / "browser" / "sign_in.mjs"
CHROMIUM = Path("/usr/bin/chromium")
PLACEHOLDER_ISSUER = "http://127.0.0.1:9"
CLIENT = "shop-web"
API = "orders"

SPA_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>authgate shop (sandbox)</title></head>
<body>
<h1>authgate shop</h1>
<p id="who">checking session...</p>
<button id="login" onclick="location.href='/auth/login?return_to=/'">Sign in</button>
<button id="orders" onclick="showOrders()">Load orders</button>
<button id="logout" onclick="logout()">Sign out</button>
<pre id="out"></pre>
<script>
// Tokens never reach this page: the session is an HttpOnly cookie the browser attaches by itself.
const csrf = {'x-authgate-csrf': '1'};
let session = null;
async function loadSession() {
  const r = await fetch('/auth/session');
  session = r.ok ? await r.json() : null;
  document.getElementById('who').textContent = session ? 'signed in as ' + session.subject : 'signed out';
  return session;
}
async function refreshIfExpired() {
  if (session && session.expires_at <= Date.now() / 1000) {
    const r = await fetch('/auth/refresh', {method: 'POST', headers: csrf});
    await loadSession();
    return r.status;
  }
  return 0;
}
async function callApi(method, path) {
  await refreshIfExpired();
  const r = await fetch(path, {method, headers: csrf});
  return {status: r.status, body: await r.text()};
}
async function showOrders() {
  const answer = await callApi('GET', '/api/orders');
  document.getElementById('out').textContent = answer.status + ' ' + answer.body;
  return answer;
}
async function logout() {
  const r = await fetch('/auth/logout', {method: 'POST', headers: csrf});
  const answer = await r.json();
  await loadSession();
  return answer;
}
loadSession();
</script>
</body></html>
"""


@dataclass
class WebSignIn:
    access_token_ttl: int = 300
    idp: IdpProcess | None = None
    idp_setup: IdpSetup | None = None
    origin: str = ""
    backend_arrivals: list[dict] = field(default_factory=list)
    token_handler: Any = None          # the token handler Lambda (InProcessLambda)
    authorizer: Any = None             # the HTTP API authorizer Lambda with the cookie token source
    cookie_keys: Any = None
    _routes: Any = None
    _server: ThreadingHTTPServer | None = None
    _tmp: tempfile.TemporaryDirectory | None = None

    @classmethod
    def start(cls, *, access_token_ttl: int = 300, host: str = "127.0.0.1") -> "WebSignIn":
        web = cls(access_token_ttl=access_token_ttl)
        try:
            web._start(host)
        except BaseException:
            web.stop()
            raise
        return web

    def __enter__(self) -> "WebSignIn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, host: str) -> None:
        from lambdas.token_handler import CookieKeys
        from sandbox.gateways.lambda_runtime import InProcessLambda
        from stacks.policy import load_policy
        from stacks.policy.render import route_table_json
        from stacks.policy.render.token_handler import token_handler_json

        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self.origin = f"http://{host}:{self._server.server_address[1]}"
        draft = load_policy(WEB_POLICY, variables={"LOCAL_ISSUER_URL": PLACEHOLDER_ISSUER, "WEB_ORIGIN": self.origin})
        self.idp_setup = build_idp_setup(draft, "local", access_token_ttl=self.access_token_ttl)
        self.idp = IdpProcess(self.idp_setup.document).start()
        policy = load_policy(WEB_POLICY, variables={"LOCAL_ISSUER_URL": self.idp.issuer, "WEB_ORIGIN": self.origin})
        self._tmp = tempfile.TemporaryDirectory(prefix="authgate-web-")
        workdir = Path(self._tmp.name)
        (workdir / "routes.json").write_text(route_table_json(policy, apis=[API]))
        self.cookie_keys = CookieKeys.generate()
        # What the platform injects from its secret store; the same cookie keys open the session on the API side.
        secrets = {"AUTHGATE_COOKIE_KEYS": self.cookie_keys.to_json()}
        self.token_handler = InProcessLambda(
            "lambdas.token_handler.http_api.handler", code_root=REPO_ROOT, function_name="token-handler",
            environment={"AUTHGATE_TOKEN_HANDLER_CONFIG": token_handler_json(policy, CLIENT),
                         "AUTHGATE_CLIENT_SECRET": self.idp_setup.clients[CLIENT].client_secret, **secrets})
        self.authorizer = InProcessLambda(
            "lambdas.authorizers.http_api.handler", code_root=REPO_ROOT, function_name="api-authorizer",
            environment={"AUTHGATE_POLICY": str(workdir / "routes.json"), "AUTHGATE_API": API,
                         "AUTHGATE_WEB_ORIGIN": self.origin, **secrets})
        from lambdas.validation.route_table import RouteTable
        self._routes = RouteTable.load(workdir / "routes.json").api(API)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.idp is not None:
            self.idp.stop()
            self.idp = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- the emulated HTTP API ------------------------------------------------------------------------------

    def event(self, method: str, target: str, headers: dict[str, str], cookie_values: list[str],
              route_key: str) -> dict:
        """A payload 2.0 event as API Gateway builds it: lower-case headers, cookies split out of the header."""
        parts = urlsplit(target)
        cookies = [c.strip() for value in cookie_values for c in value.split(";") if c.strip()]
        return {"version": "2.0", "routeKey": route_key, "rawPath": parts.path, "rawQueryString": parts.query,
                "headers": headers, "cookies": cookies,
                "requestContext": {"http": {"method": method, "path": parts.path}, "routeKey": route_key,
                                   "requestId": "sandbox"}}

    def api_call(self, event: dict) -> tuple[int, dict]:
        """API Gateway's part: the authorizer decides (false -> 403, an error -> 500), then the backend runs."""
        from sandbox.gateways.lambda_runtime import LambdaInvocationError
        try:
            answer = self.authorizer.invoke(event)
        except LambdaInvocationError:
            return 500, {"message": "Internal Server Error"}
        if not answer.get("isAuthorized"):
            return 403, {"message": "Forbidden"}
        seen = dict(answer.get("context") or {})
        self.backend_arrivals.append({"route": event["routeKey"], **seen})
        return 200, {"orders": [{"id": "o-1", "tenant": seen.get("tenant")}], "seen_by_backend": seen}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "cookie"}
                cookie_values = self.headers.get_all("cookie") or []
                path = urlsplit(self.path).path
                if path == "/" and self.command == "GET":
                    self._reply(200, {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"}, [],
                                SPA_PAGE.encode())
                elif path.startswith("/auth/") or path == "/auth":
                    event = web.event(self.command, self.path, headers, cookie_values, "ANY /auth/{proxy+}")
                    result = web.token_handler.invoke(event)
                    self._reply(result["statusCode"], result["headers"], result["cookies"], result["body"].encode())
                elif path.startswith("/api/"):
                    route = web._routes.match(self.command, path)
                    event = web.event(self.command, self.path, headers, cookie_values,
                                      route.route_key if route else "$default")
                    status, body = web.api_call(event) if route else (404, {"message": "Not Found"})
                    self._reply(status, {"content-type": "application/json"}, [], json.dumps(body).encode())
                else:
                    self._reply(404, {"content-type": "text/plain"}, [], b"not found")

            def _reply(self, status: int, headers: dict, cookies: list[str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                for cookie in cookies:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler


class CrossSitePage:
    """Another site (127.0.0.2 is another host, so another site) whose page posts forms at the app, as a page an
    attacker controls would."""

    def __init__(self, target_origin: str) -> None:
        page = (f"<!DOCTYPE html><title>elsewhere</title>"
                f"<form id='logout-form' method='POST' action='{target_origin}/auth/logout'><button>x</button></form>"
                f"<form id='order-form' method='POST' action='{target_origin}/api/orders'>"
                f"<input name='item' value='1'><button>y</button></form>").encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.origin = f"http://127.0.0.2:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def browser_missing() -> list[str]:
    """What a real-browser run needs and this machine lacks, each with how to get it."""
    return [what for what, ok in (
        ("node", shutil.which("node") is not None),
        ("chromium (apt-get install -y chromium)", CHROMIUM.exists()),
        ("playwright-core (cd sandbox && npm ci)", (REPO_ROOT / "sandbox/node_modules/playwright-core").is_dir()),
    ) if not ok]


def run_in_chromium(web: WebSignIn, out: Path, *, username: str = "alice") -> dict:
    """Sign in and attack the app in a real Chromium (sandbox/browser/sign_in.mjs); its results, screenshots in
    `out`. The cross-site page is served for the run and stopped after."""
    attacker = CrossSitePage(web.origin)
    try:
        config = {"origin": web.origin, "attacker_origin": attacker.origin, "username": username,
                  "password": web.idp_setup.users[username].password, "screenshots_dir": str(out),
                  "wait_for_expiry_ms": (web.access_token_ttl + 1) * 1000, "executable": str(CHROMIUM)}
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config))
        completed = subprocess.run(["node", str(BROWSER_SCRIPT), str(out / "config.json")], capture_output=True,
                                   text=True, timeout=180, cwd=REPO_ROOT)
        if completed.returncode != 0:
            return {"error": f"the browser script failed: {completed.stderr[-1500:]}", "steps": {}, "bodies": []}
        return json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        attacker.stop()
