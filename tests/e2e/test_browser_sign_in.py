"""Browser sign-in in a real Chromium: the sandbox's provider's real login and consent pages, the token handler (its
HTTP API Lambda handler) keeping tokens in HttpOnly cookies, /api routes behind the HTTP API authorizer reading the
session cookie, and a second site on 127.0.0.2 attacking with cross-site forms.

Chromium (Debian's `chromium`) and npm playwright-core drive it; without them the test skips, except under CI=true,
where it fails: .ci/run installs both. Screenshots go to the test's tmp folder (printed with -s).
"""
from __future__ import annotations

import json
import os

import pytest

from lambdas.token_handler import SESSION_COOKIE
from lambdas.token_handler.sealing import join_chunks, unseal
from lambdas.validation.fetcher import HttpFetcher, client_secret_basic, parse_json_object
from sandbox.web_app import CLIENT, WebSignIn, browser_missing, run_in_chromium

ACCESS_TOKEN_TTL = 4


def _require_browser() -> None:
    missing = browser_missing()
    if missing:
        message = "browser sign-in test needs " + ", ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    _require_browser()
    out = tmp_path_factory.mktemp("browser-sign-in")
    with WebSignIn.start(access_token_ttl=ACCESS_TOKEN_TTL) as web:
        results = run_in_chromium(web, out)
        assert "error" not in results, results.get("error")
        print(f"screenshots: {out}")
        yield web, results


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


def test_the_demo_section_without_a_browser_says_so_and_still_proves_the_flow(monkeypatch):
    import io

    import sandbox.web_demo as web_demo
    from sandbox.report import Narrator

    monkeypatch.setattr(web_demo, "browser_missing", lambda: ["chromium (apt-get install -y chromium)"])
    out = io.StringIO()
    narrator = Narrator(out=out)
    web_demo.browser_sign_in(narrator)
    assert "driven by the sandbox's HTTP client instead" in out.getvalue()
    assert narrator.outcomes and not narrator.failures, [o for o in narrator.failures]
