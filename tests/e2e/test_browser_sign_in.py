"""Browser sign-in in a real Chromium: the sandbox's provider's real login and consent pages, the token handler (its
HTTP API Lambda handler) keeping tokens in HttpOnly cookies, /api routes behind the HTTP API authorizer reading the
session cookie, and a second site on 127.0.0.2 attacking with cross-site forms.

Chromium (Debian's `chromium`) and npm playwright-core drive it; without them the test skips, except under CI=true,
where it fails: .ci/run installs both. Screenshots go to the test's tmp folder (printed with -s).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lambdas.token_handler import SESSION_COOKIE
from lambdas.token_handler.sealing import join_chunks, unseal
from lambdas.validation.fetcher import HttpFetcher, client_secret_basic, parse_json_object
from sandbox.web_app import CLIENT, WebSignIn

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "sandbox" / "browser" / "sign_in.mjs"
CHROMIUM = "/usr/bin/chromium"
ACCESS_TOKEN_TTL = 4


def _require_browser() -> None:
    missing = [what for what, ok in (
        ("node", shutil.which("node") is not None),
        ("chromium (apt-get install -y chromium)", Path(CHROMIUM).exists()),
        ("playwright-core (cd sandbox && npm ci)", (REPO / "sandbox/node_modules/playwright-core").is_dir()),
    ) if not ok]
    if missing:
        message = "browser sign-in test needs " + ", ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)


class _AttackerSite:
    """Another site (127.0.0.2 is another host, so another site) whose page posts forms at the app."""

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


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    _require_browser()
    out = tmp_path_factory.mktemp("browser-sign-in")
    with WebSignIn.start(access_token_ttl=ACCESS_TOKEN_TTL) as web:
        attacker = _AttackerSite(web.origin)
        try:
            config = {"origin": web.origin, "attacker_origin": attacker.origin, "username": "alice",
                      "password": web.idp_setup.users["alice"].password, "screenshots_dir": str(out),
                      "wait_for_expiry_ms": (ACCESS_TOKEN_TTL + 1) * 1000, "executable": CHROMIUM}
            (out / "config.json").write_text(json.dumps(config))
            completed = subprocess.run(["node", str(SCRIPT), str(out / "config.json")], capture_output=True,
                                       text=True, timeout=180, cwd=REPO)
            assert completed.returncode == 0, completed.stderr[-2000:]
            results = json.loads(completed.stdout.strip().splitlines()[-1])
            assert "error" not in results, results.get("error")
            print(f"screenshots: {out}")
            yield web, results
        finally:
            attacker.stop()


def _session(web, cookies: list[dict]) -> dict:
    by_name = {c["name"]: c["value"] for c in cookies}
    return unseal(web.cookie_keys, SESSION_COOKIE, join_chunks(by_name, SESSION_COOKIE), now=0)


def test_signed_in_through_the_providers_pages_and_the_api_sees_the_identity(browser_run):
    web, results = browser_run
    steps = results["steps"]
    assert steps["signed_in"] == "signed in as alice"
    assert steps["first_call"]["status"] == 200
    assert json.loads(steps["first_call"]["body"])["seen_by_backend"]["sub"] == "alice"
    assert web.backend_arrivals[0]["sub"] == "alice"


def test_page_javascript_sees_no_token(browser_run):
    web, results = browser_run
    steps = results["steps"]
    assert steps["page_view"] == {"cookie": "", "local": 0, "session": 0}
    session_cookies = [c for c in steps["cookies_after_login"] if c["name"].startswith(SESSION_COOKIE)]
    assert session_cookies and all(c["httpOnly"] and c["secure"] and c["sameSite"] == "Strict"
                                   for c in session_cookies)
    tokens = set()
    for key in ("cookies_after_login", "cookies_after_refresh"):
        session = _session(web, steps[key])
        tokens.update({session["at"], session["rt"]})
    for response in results["bodies"]:
        for token in tokens:
            assert token not in response["body"], f"{response['url']} sent a token to the page"


def test_expired_access_token_refreshes_once_for_parallel_calls(browser_run):
    web, results = browser_run
    steps = results["steps"]
    assert [call["status"] for call in steps["parallel_after_expiry"]] == [200] * 5
    before, after = _session(web, steps["cookies_before_refresh"]), _session(web, steps["cookies_after_refresh"])
    assert before["rt"] != after["rt"], "the issuer rotates refresh tokens"
    assert before["at"] != after["at"]


def test_cross_site_forms_open_redirects_and_tampered_cookies_are_refused(browser_run):
    _, results = browser_run
    steps = results["steps"]
    assert steps["cross_site_logout"]["status"] == 403
    assert steps["cross_site_order"]["status"] == 403
    assert steps["still_signed_in"] is True
    assert steps["open_redirect"]["status"] == 400
    assert steps["tampered_session"] == 401


def test_logout_clears_cookies_revokes_and_the_old_cookie_cannot_refresh(browser_run):
    web, results = browser_run
    steps = results["steps"]
    assert steps["logout"]["signed_out"] is True and steps["logout"]["refresh_token_revoked"] is True
    assert steps["logout"]["end_session_url"].startswith(web.idp.issuer)
    assert not [c for c in steps["cookies_after_logout"] if c["name"].startswith(SESSION_COOKIE)]
    assert steps["call_after_logout"] == 403
    assert steps["replayed_cookie_refresh"] == 401


def test_a_rotated_refresh_token_replayed_at_the_issuer_is_refused(browser_run):
    web, results = browser_run
    old = _session(web, results["steps"]["cookies_before_refresh"])["rt"]
    client = web.idp_setup.clients[CLIENT]
    answer = HttpFetcher(allow_insecure_http=True).post_form(
        web.idp.discovery()["token_endpoint"], {"grant_type": "refresh_token", "refresh_token": old},
        headers={"Authorization": client_secret_basic(client.client_id, client.client_secret)})
    assert answer.status == 400
    assert parse_json_object(answer.body, source="token endpoint")["error"] == "invalid_grant"
