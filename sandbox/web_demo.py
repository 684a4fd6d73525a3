"""The demo's browser sign-in section: the token handler keeping tokens in HttpOnly cookies, in a real Chromium when
it is installed, otherwise driven by the sandbox's headless HTTP client (which then says so)."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from sandbox.oidc_client import BrowserSession, LoginTrace, sign_in
from sandbox.report import Narrator
from sandbox.web_app import WebSignIn, browser_missing, run_in_chromium

GATEWAY = "token handler + HTTP API"
# Short, so the demo shows a refresh without waiting long.
ACCESS_TOKEN_TTL = 3


def browser_sign_in(narrator: Narrator) -> None:
    narrator.section("5. Browser sign-in: the token handler keeps tokens in HttpOnly cookies (refresh, logout, CSRF)")
    with WebSignIn.start(access_token_ttl=ACCESS_TOKEN_TTL) as web:
        narrator.note(f"the SPA, /auth/* (token handler Lambda) and /api/* (HTTP API authorizer reading the session "
                      f"cookie) at {web.origin}; access tokens live {ACCESS_TOKEN_TTL}s, refresh tokens rotate")
        missing = browser_missing()
        if missing:
            narrator.note(f"no real browser here ({', '.join(missing)}): driven by the sandbox's HTTP client instead")
            _headless(web, narrator)
        else:
            _chromium(web, narrator)


def _chromium(web: WebSignIn, narrator: Narrator) -> None:
    out = Path(tempfile.mkdtemp(prefix="authgate-browser-"))
    results = run_in_chromium(web, out)
    if "error" in results:
        narrator.expect("browser: Chromium run", GATEWAY, "completed", "failed", results["error"][:300])
        return
    steps = results["steps"]
    narrator.hop("alice -> SPA in Chromium", "Sign in: the provider's login and consent pages", steps["signed_in"])
    narrator.expect("browser: signed in", GATEWAY, "signed in as alice", steps["signed_in"])
    view = steps["page_view"]
    narrator.expect("browser: tokens page JS can see", GATEWAY, "none",
                    "none" if view == {"cookie": "", "local": 0, "session": 0} else json.dumps(view))
    narrator.expect("browser: GET /api/orders (cookie only)", GATEWAY, "200", str(steps["first_call"]["status"]))
    statuses = [call["status"] for call in steps["parallel_after_expiry"]]
    narrator.hop("SPA -> /auth/refresh", "5 parallel API calls after the access token expired",
                 " ".join(map(str, statuses)))
    narrator.expect("browser: 5 parallel calls at expiry", GATEWAY, "200 x5",
                    "200 x5" if statuses == [200] * 5 else " ".join(map(str, statuses)))
    narrator.expect("browser: cross-site form POST /auth/logout", GATEWAY, "403",
                    str(steps["cross_site_logout"]["status"]))
    narrator.expect("browser: cross-site form POST /api/orders", GATEWAY, "403",
                    str(steps["cross_site_order"]["status"]))
    narrator.expect("browser: return_to=//evil.example", GATEWAY, "400", str(steps["open_redirect"]["status"]))
    narrator.expect("browser: API call after logout", GATEWAY, "403", str(steps["call_after_logout"]))
    narrator.expect("browser: old cookie replayed to /auth/refresh", GATEWAY, "401",
                    str(steps["replayed_cookie_refresh"]))
    narrator.expect("browser: tampered session cookie", GATEWAY, "401", str(steps["tampered_session"]))
    narrator.note(f"screenshots: {out}")


def _headless(web: WebSignIn, narrator: Narrator) -> None:
    browser = BrowserSession()
    csrf = {"x-authgate-csrf": "1", "origin": web.origin}
    callback = sign_in(browser, web.origin + "/auth/login?return_to=/", username="alice",
                       password=web.idp_setup.users["alice"].password,
                       until=lambda url: url.startswith(web.origin + "/auth/callback"), trace=LoginTrace())
    status, location, _ = browser.request(callback)
    narrator.hop("alice -> token handler", "GET /auth/callback (code exchanged, ID token verified)",
                 f"{status} to {location}")
    narrator.expect("browser: signed in", GATEWAY, "302 to /", f"{status} to {location}")
    narrator.expect("browser: GET /api/orders (cookie only)", GATEWAY, "200",
                    str(browser.request(web.origin + "/api/orders")[0]))
    time.sleep(ACCESS_TOKEN_TTL + 1)
    refreshed = browser.request(web.origin + "/auth/refresh", method="POST", headers=csrf)[0]
    narrator.expect("browser: refresh after expiry", GATEWAY, "200", str(refreshed))
    narrator.expect("browser: cross-site POST /auth/logout", GATEWAY, "403", str(browser.request(
        web.origin + "/auth/logout", method="POST", headers={"origin": "http://127.0.0.2"})[0]))
    narrator.expect("browser: return_to=//evil.example", GATEWAY, "400", str(browser.request(
        web.origin + "/auth/login?return_to=//evil.example")[0]))
    narrator.expect("browser: logout", GATEWAY, "200", str(browser.request(
        web.origin + "/auth/logout", method="POST", headers=csrf)[0]))
    narrator.expect("browser: API call after logout", GATEWAY, "403", str(browser.request(
        web.origin + "/api/orders")[0]))
