"""The token handler core against the sandbox's real OpenID provider: login redirects, callback checks, the session
endpoint, CSRF, open redirects, cookie tossing, refresh outcomes, and the Lambda adapter's cookies array."""
from __future__ import annotations

import shutil
import urllib.parse

import pytest

from lambdas.token_handler import LOGIN_COOKIE, SESSION_COOKIE, CookieKeys, TokenHandler, TokenHandlerConfig
from lambdas.token_handler.core import pkce_challenge, safe_return_to
from lambdas.token_handler.http_api import response_to_result
from lambdas.token_handler.sealing import unseal
from lambdas.token_handler.web import WebRequest, parse_cookie_header
from sandbox.idp.config import build_idp_setup
from sandbox.idp.launcher import IdpProcess
from sandbox.oidc_client import BrowserSession, LoginTrace, sign_in
from sandbox.web_app import CLIENT, PLACEHOLDER_ISSUER, WEB_POLICY
from stacks.policy import load_policy

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js")
ORIGIN = "http://127.0.0.1:8766"          # never listened on: the browser stand-in stops at the callback redirect
CSRF = {"x-authgate-csrf": "1", "origin": ORIGIN}


@pytest.fixture(scope="module")
def provider():
    setup = build_idp_setup(load_policy(WEB_POLICY, variables={"LOCAL_ISSUER_URL": PLACEHOLDER_ISSUER,
                                                              "WEB_ORIGIN": ORIGIN}), "local")
    with IdpProcess(setup.document) as idp:
        yield idp, setup


@pytest.fixture
def handler(provider):
    idp, setup = provider
    config = TokenHandlerConfig(issuer=idp.issuer, client_id=CLIENT, client_secret=setup.clients[CLIENT].client_secret,
                                origin=ORIGIN, cookie_keys=CookieKeys.generate(), allow_insecure_http=True,
                                scopes=("openid", "profile", "email", "offline_access", "orders:read"))
    return TokenHandler(config)


def _cookies(response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0] for c in response.cookies}


def _request(method: str, target: str, cookies: dict[str, str] | None = None, **headers: str) -> WebRequest:
    parts = urllib.parse.urlsplit(target)
    return WebRequest(method, parts.path, parts.query, headers,
                      parse_cookie_header(["; ".join(f"{k}={v}" for k, v in (cookies or {}).items())]))


def _signed_in(handler, provider) -> tuple[dict[str, str], object]:
    idp, setup = provider
    login = handler.handle(_request("GET", "/auth/login?return_to=/orders"))
    callback = sign_in(BrowserSession(), login.headers["location"], username="alice",
                       password=setup.users["alice"].password, until=lambda u: u.startswith(ORIGIN),
                       trace=LoginTrace())
    answer = handler.handle(_request("GET", callback[len(ORIGIN):], _cookies(login)))
    return _cookies(answer), answer


def test_login_redirects_with_pkce_state_and_nonce_kept_in_a_lax_host_cookie(handler, provider):
    response = handler.handle(_request("GET", "/auth/login?return_to=/orders"))
    assert response.status == 302
    location = urllib.parse.urlsplit(response.headers["location"])
    query = dict(urllib.parse.parse_qsl(location.query))
    assert location.geturl().startswith(provider[0].issuer)
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and query["redirect_uri"] == ORIGIN + "/auth/callback"
    [cookie] = response.cookies
    assert cookie.startswith(LOGIN_COOKIE + "=") and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=Lax" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert query["state"] not in cookie and query["nonce"] not in cookie  # sealed, not readable


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil",
                                    "/ok\r\nSet-Cookie: x=1", "/ok\x00", "http:/evil.example", " /x"])
def test_open_redirect_targets_are_refused(handler, target):
    assert safe_return_to(target) is None
    answer = handler.handle(_request("GET", "/auth/login?" + urllib.parse.urlencode({"return_to": target})))
    assert answer.status == 400 and b"invalid_return_to" in answer.body


def test_a_return_to_given_twice_is_refused(handler):
    answer = handler.handle(_request("GET", "/auth/login?return_to=/a&return_to=//evil.example"))
    assert answer.status == 400 and b"invalid_return_to" in answer.body


def test_same_origin_paths_are_kept():
    assert safe_return_to("/orders?id=1#top") == "/orders?id=1#top"
    assert safe_return_to(None) == "/" and safe_return_to("") == "/"


def test_pkce_challenge_matches_rfc_7636_appendix_b():
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_sign_in_sets_a_strict_session_cookie_and_the_session_endpoint_shows_no_token(handler, provider):
    cookies, answer = _signed_in(handler, provider)
    assert answer.status == 302 and answer.headers["location"] == "/orders"
    session_cookie = next(c for c in answer.cookies if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie and "Secure" in session_cookie
    assert any(c.startswith(LOGIN_COOKIE + "=;") and "Max-Age=0" in c for c in answer.cookies)
    session = handler.handle(_request("GET", "/auth/session", cookies))
    body = session.body.decode()
    assert session.status == 200 and '"subject":"alice"' in body and "eyJ" not in body
    assert session.headers["cache-control"] == "no-store"


def test_callback_refuses_a_missing_login_cookie_a_wrong_state_and_another_issuer(handler, provider):
    login = handler.handle(_request("GET", "/auth/login"))
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login.headers["location"]).query))["state"]
    assert handler.handle(_request("GET", f"/auth/callback?code=x&state={state}")).status == 400
    wrong = handler.handle(_request("GET", "/auth/callback?code=x&state=other", _cookies(login)))
    assert wrong.status == 400 and b"does not match" in wrong.body
    mixed = handler.handle(_request("GET", f"/auth/callback?code=x&state={state}&iss=https://evil.example",
                                    _cookies(login)))
    assert mixed.status == 400 and b"another issuer" in mixed.body


def test_an_error_from_the_provider_is_a_readable_page_with_its_text_escaped(handler):
    login = handler.handle(_request("GET", "/auth/login"))
    query = urllib.parse.urlencode({"error": "access_denied", "error_description": "<script>alert(1)</script>"})
    page = handler.handle(_request("GET", "/auth/callback?" + query, _cookies(login)))
    assert page.status == 400 and page.headers["content-type"].startswith("text/html")
    assert b"<script>" not in page.body and b"&lt;script&gt;" in page.body and b"access_denied" in page.body


def test_state_changing_requests_need_the_csrf_header_and_this_origin(handler, provider):
    cookies, _ = _signed_in(handler, provider)
    for headers in ({}, {"origin": ORIGIN}, {"x-authgate-csrf": "1", "origin": "http://127.0.0.2:8766"},
                    {"x-authgate-csrf": "1"}, {"x-authgate-csrf": "1", "sec-fetch-site": "cross-site"}):
        answer = handler.handle(_request("POST", "/auth/logout", cookies, **headers))
        assert answer.status == 403 and b'"csrf"' in answer.body, headers
    same = handler.handle(_request("POST", "/auth/refresh", cookies, **{"x-authgate-csrf": "1",
                                                                        "sec-fetch-site": "same-origin"}))
    assert same.status == 200


def test_a_session_cookie_sent_twice_counts_as_no_session(handler, provider):
    cookies, _ = _signed_in(handler, provider)
    value = cookies[SESSION_COOKIE]
    request = WebRequest("GET", "/auth/session", "", {},
                         parse_cookie_header([f"{SESSION_COOKIE}={value}; {SESSION_COOKIE}={value}"]))
    assert handler.handle(request).status == 401


def test_refresh_rotates_and_a_refused_refresh_token_ends_the_session(handler, provider):
    cookies, _ = _signed_in(handler, provider)
    first = handler.handle(_request("POST", "/auth/refresh", cookies, **CSRF))
    assert first.status == 200
    # The same (now rotated) cookie again within the replay window: the same outcome, no second refresh.
    again = handler.handle(_request("POST", "/auth/refresh", cookies, **CSRF))
    assert again.status == 200
    opened = [unseal(handler.config.cookie_keys, SESSION_COOKIE, _cookies(r)[SESSION_COOKIE], now=0)
              for r in (first, again)]
    assert opened[0]["at"] == opened[1]["at"] and opened[0]["rt"] == opened[1]["rt"]
    # Another handler (another instance) presenting the consumed refresh token: the issuer revokes the grant.
    other = TokenHandler(handler.config)
    ended = other.handle(_request("POST", "/auth/refresh", cookies, **CSRF))
    assert ended.status == 401 and b"session_ended" in ended.body
    assert all("Max-Age=0" in c for c in ended.cookies)
    newest = handler.handle(_request("POST", "/auth/refresh", _cookies(first), **CSRF))
    assert newest.status == 401, "reuse revoked the whole grant, the newest refresh token too"


def test_logout_revokes_clears_and_names_the_end_session_url_without_a_token(handler, provider):
    cookies, _ = _signed_in(handler, provider)
    answer = handler.handle(_request("POST", "/auth/logout", cookies, **CSRF))
    assert answer.status == 200 and b'"refresh_token_revoked":true' in answer.body
    assert b"eyJ" not in answer.body and b"id_token_hint" not in answer.body
    assert all("Max-Age=0" in c for c in answer.cookies)
    assert handler.handle(_request("POST", "/auth/refresh", cookies, **CSRF)).status == 401


def test_logout_puts_the_sessions_access_token_and_session_on_the_denylist(handler, provider):
    from lambdas.validation.denylist import Denylist, MemoryDenylistStore
    from lambdas.validation.errors import TokenRejected

    denylist = Denylist(MemoryDenylistStore())
    handler._denylist = denylist
    cookies, _ = _signed_in(handler, provider)
    import base64
    import json
    import time
    session = unseal(handler.config.cookie_keys, SESSION_COOKIE, cookies[SESSION_COOKIE], now=time.time())
    payload = session["at"].split(".")[1]
    at = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    denylist.check(at["iss"], at, cache_seconds=0)
    assert handler.handle(_request("POST", "/auth/logout", cookies, **CSRF)).status == 200
    with pytest.raises(TokenRejected) as info:
        denylist.check(at["iss"], at, cache_seconds=0)
    assert info.value.code == "revoked"


def test_the_lambda_adapter_returns_each_cookie_in_the_cookies_array(handler):
    result = response_to_result(handler.handle(_request("GET", "/auth/login")))
    assert result["statusCode"] == 302 and len(result["cookies"]) == 1
    assert "set-cookie" not in {k.lower() for k in result["headers"]}


def test_unknown_paths_and_methods_are_404(handler):
    assert handler.handle(_request("GET", "/auth/nope")).status == 404
    assert handler.handle(_request("GET", "/elsewhere")).status == 404
    assert handler.handle(_request("GET", "/auth/logout")).status == 404
