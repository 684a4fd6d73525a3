"""A headless OAuth 2.0 / OpenID Connect client: client credentials, and authorization code + PKCE through HTML pages.

The login flow is what a browser does, done with urllib and a cookie jar: follow the authorization redirect, fill
the provider's login form, submit the consent form, catch the redirect back to the app (never followed: nothing
listens there) and redeem the code with the PKCE verifier.
"""
from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Callable

from lambdas.validation.fetcher import is_loopback_host

MAX_REDIRECTS = 15
TIMEOUT_SECONDS = 10


class OidcFlowError(RuntimeError):
    """A flow step did not go the way the protocol says; the message names the step and what came back."""


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    id_token: str | None = None
    refresh_token: str | None = None


@dataclass
class LoginTrace:
    """The hops of a login, for printing: (who -> whom, what, answer)."""

    hops: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, who: str, what: str, answer: str) -> None:
        self.hops.append((who, what, answer))


def _post_form(url: str, form: dict[str, str], *, basic_auth: tuple[str, str] | None = None,
               context: Any = None) -> dict:
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
    if basic_auth:
        # RFC 6749 2.3.1: client id and secret are form-encoded before they are joined for Basic auth.
        user, password = (urllib.parse.quote(part, safe="") for part in basic_auth)
        headers["authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:
        body = err.read()[:500].decode(errors="replace")
        raise OidcFlowError(f"token endpoint {url} answered {err.code}: {body}") from None


def _token_response(raw: dict, step: str) -> TokenResponse:
    if "access_token" not in raw:
        raise OidcFlowError(f"{step}: the token endpoint's answer has no access_token: {sorted(raw)}")
    return TokenResponse(access_token=raw["access_token"], token_type=raw.get("token_type", ""),
                         expires_in=int(raw.get("expires_in", 0)), scope=raw.get("scope", ""),
                         id_token=raw.get("id_token"), refresh_token=raw.get("refresh_token"))


def client_credentials(token_endpoint: str, client_id: str, client_secret: str, *, scope: str,
                       resource: str | None = None, context: Any = None) -> TokenResponse:
    """RFC 6749 4.4 with an RFC 8707 resource indicator selecting the audience. `context` (an ssl.SSLContext holding
    a client certificate) calls a mutual TLS token endpoint: the provider then binds the token to that certificate
    (RFC 8705)."""
    form = {"grant_type": "client_credentials", "scope": scope}
    if resource:
        form["resource"] = resource
    return _token_response(_post_form(token_endpoint, form, basic_auth=(client_id, client_secret), context=context),
                           "client credentials")


class _FormParser(HTMLParser):
    """Collects every <form> with its action, method and named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""),
                               "method": attributes.get("method", "get").lower(), "inputs": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["inputs"][attributes["name"]] = attributes.get("value", "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[override]
        return None


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class _LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Browsers treat http://127.0.0.1 and localhost as secure contexts and send Secure cookies there; so must this
    stand-in, or the sandbox's `__Host-` cookies would never come back."""

    def return_ok_secure(self, cookie, request):  # type: ignore[override]
        host = urllib.parse.urlsplit(request.get_full_url()).hostname or ""
        if cookie.secure and request.type == "http" and is_loopback_host(host):
            return True
        return super().return_ok_secure(cookie, request)


class BrowserSession:
    """Just enough browser: cookies, manual redirects, HTML forms."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar(policy=_LoopbackIsSecure())
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, url: str, form: dict[str, str] | None = None, *, method: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        """One request, no redirect following: (status, Location or "", body)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, method=method or ("POST" if form is not None else "GET"),
                                         headers=headers or {})
        try:
            resp = self.opener.open(request, timeout=TIMEOUT_SECONDS)
        except urllib.error.HTTPError as err:
            resp = err
        with resp:
            body = resp.read().decode(errors="replace")
            return resp.status, resp.headers.get("location", ""), body


def sign_in(browser: BrowserSession, url: str, *, username: str, password: str, until: Callable[[str], bool],
            trace: LoginTrace, on_page: Callable[[str, str], None] | None = None) -> str:
    """Follow redirects from `url` through the provider's login and consent forms, as a person would, and return
    the first redirect target for which `until` is true (not requested)."""
    form_values: dict[str, str] | None = None
    for _ in range(MAX_REDIRECTS):
        status, location, body = browser.request(url, form_values)
        form_values = None
        if location:
            target = urllib.parse.urljoin(url, location)
            if until(target):
                return target
            url = target
            continue
        if status != 200:
            raise OidcFlowError(f"login: {url} answered {status}: {body[:300]}")
        parser = _FormParser()
        parser.feed(body)
        if not parser.forms:
            raise OidcFlowError(f"login: {url} returned a page with no form: {body[:300]}")
        form = parser.forms[0]
        form_values = dict(form["inputs"])
        prompt = form_values.get("prompt", "")
        if prompt == "login":
            form_values.update({"login": username, "password": password})
            trace.add("user -> IdP login page", f"sign in as {username!r}", "session cookie set")
        elif prompt == "consent":
            trace.add("user -> IdP consent page", "approve the requested scopes", "grant recorded")
        else:
            raise OidcFlowError(f"login: unexpected form (prompt={prompt!r}) at {url}")
        if on_page:
            on_page(prompt, url)
        url = urllib.parse.urljoin(url, form["action"])
    raise OidcFlowError(f"login: more than {MAX_REDIRECTS} redirects without getting back")


def login_with_pkce(discovery: dict, *, client_id: str, redirect_uri: str, username: str, password: str,
                    scope: str, resource: str | None = None,
                    trace: LoginTrace | None = None,
                    on_page: Callable[[str, str], None] | None = None,
                    browser: BrowserSession | None = None) -> tuple[TokenResponse, str]:
    """Authorization code + PKCE, driven headlessly. Returns the tokens and the nonce sent (to check the ID token).
    Pass `browser` to keep its session at the provider (e.g. to log out of it afterwards)."""
    trace = trace or LoginTrace()
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri, "scope": scope,
              "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
              "prompt": "consent"}
    if resource:
        params["resource"] = resource
    browser = browser or BrowserSession()
    url = discovery["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)
    trace.add("browser -> IdP", f"GET /authorize (code + PKCE S256, scope {scope!r})", "redirect to login")
    target = sign_in(browser, url, username=username, password=password,
                     until=lambda u: u.startswith(redirect_uri), trace=trace, on_page=on_page)
    return _redeem(discovery, browser, target, client_id=client_id, redirect_uri=redirect_uri,
                   verifier=verifier, state=state, resource=resource, trace=trace), nonce


def rp_initiated_logout(discovery: dict, browser: BrowserSession, *, client_id: str,
                        trace: LoginTrace | None = None) -> None:
    """OpenID Connect RP-Initiated Logout in the browser that signed in: the provider's end_session_endpoint, then its
    confirmation form. The provider ends the session (and, with back-channel logout, notifies the clients)."""
    trace = trace or LoginTrace()
    endpoint = discovery["end_session_endpoint"]
    status, _, page = browser.request(endpoint + "?" + urllib.parse.urlencode({"client_id": client_id}))
    if status != 200:
        raise OidcFlowError(f"logout: {endpoint} answered {status}: {page[:200]}")
    parser = _FormParser()
    parser.feed(page)
    form = next((f for f in parser.forms if "xsrf" in f["inputs"]), None)
    if form is None:
        raise OidcFlowError(f"logout: {endpoint} showed no logout confirmation form")
    trace.add("browser -> IdP", "GET /session/end (RP-initiated logout)", "confirmation form")
    status, _, page = browser.request(urllib.parse.urljoin(endpoint, form["action"]),
                                      dict(form["inputs"], logout="yes"))
    if status not in (200, 302, 303):
        raise OidcFlowError(f"logout: confirming at the provider answered {status}: {page[:200]}")
    trace.add("browser -> IdP", "POST the logout confirmation", f"{status}: session ended")


def _redeem(discovery: dict, browser: BrowserSession, callback_url: str, *, client_id: str, redirect_uri: str,
            verifier: str, state: str, resource: str | None, trace: LoginTrace) -> TokenResponse:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback_url).query))
    if "error" in query:
        raise OidcFlowError(f"login: the provider redirected back with error {query['error']}: "
                            f"{query.get('error_description', '')}")
    if query.get("state") != state:
        raise OidcFlowError("login: the state returned does not match the state sent (possible CSRF); refusing")
    if query.get("iss") and query["iss"] != discovery["issuer"]:
        raise OidcFlowError(f"login: iss {query['iss']!r} in the response is not {discovery['issuer']!r} (RFC 9207)")
    code = query.get("code")
    if not code:
        raise OidcFlowError(f"login: the redirect back carries no code: {sorted(query)}")
    trace.add("IdP -> app", "redirect to the app's callback with code + state", "state matches")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
            "code_verifier": verifier}
    if resource:
        form["resource"] = resource
    tokens = _token_response(_post_form(discovery["token_endpoint"], form), "authorization code")
    trace.add("app -> IdP", "POST /token (code + code_verifier, public client)", "ID token + access token")
    return tokens
