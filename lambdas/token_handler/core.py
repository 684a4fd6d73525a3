"""The token handler core: a backend-for-frontend that signs a browser in with authorization code + PKCE and keeps
every token in sealed, HttpOnly cookies, so page JavaScript never holds one.

    GET  {prefix}/login?return_to=/path   302 to the issuer (PKCE S256, state, nonce in a sealed login cookie)
    GET  {prefix}/callback                 code exchange, ID token verified, session cookie set, 302 to return_to
    GET  {prefix}/session                  the signed-in identity as JSON (never a token)
    POST {prefix}/refresh                  new tokens from the refresh token (single-flight per refresh token)
    POST {prefix}/logout                   refresh token revoked, cookies cleared, the issuer's logout URL returned

POSTs must pass web.csrf_refusal: the `X-Authgate-Csrf: 1` header and the configured origin.
"""
from __future__ import annotations

import base64
import hashlib
import html
import hmac
import secrets
import threading
import time
from typing import Any, Callable, Mapping
from urllib.parse import urlencode, urlsplit

from lambdas.validation.errors import TokenRejected
from lambdas.validation.fetcher import FetchError, HttpFetcher, check_key_url, client_secret_basic, parse_json_object

from .config import TokenHandlerConfig
from .sealing import CookieKeys, SealError, chunk_name, join_chunks, seal, split_value, unseal
from .web import WebRequest, WebResponse, clear_cookie, csrf_refusal, set_cookie

SESSION_COOKIE = "__Host-authgate-session"
LOGIN_COOKIE = "__Host-authgate-login"
MAX_RETURN_TO = 2048
# Inside an HTTP API integration's 30 s budget with room for a retry by the page.
POST_TIMEOUT_SECONDS = 5.0


def open_session(cookies: Mapping[str, str], keys: CookieKeys, *, now: float) -> dict | None:
    """The session sealed in the request's cookies, or None when there is none or it does not open (altered,
    expired, sealed with a retired key). The token handler and the API side (authorizers reading the access token
    from the cookie) both read it here."""
    value = join_chunks(cookies, SESSION_COOKIE)
    if value is None:
        return None
    try:
        return unseal(keys, SESSION_COOKIE, value, now=now)
    except SealError:
        return None


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def safe_return_to(value: str | None) -> str | None:
    """`value` when it is a path on this origin, else None. Refused: absolute URLs, scheme-relative `//host`,
    backslashes (browsers read `/\\host` as `//host`), control characters and anything that parses with a host."""
    if value is None or value == "":
        return "/"
    if len(value) > MAX_RETURN_TO or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


class IssuerEndpoints:
    """The issuer's endpoints from its discovery document, checked by the same URL rules as keys."""

    def __init__(self, document: Mapping[str, Any], *, allow_insecure_http: bool) -> None:
        def endpoint(name: str, required: bool) -> str | None:
            url = document.get(name)
            if url is None and not required:
                return None
            if not isinstance(url, str):
                raise ValueError(f"the issuer's discovery document has no {name}")
            return check_key_url(url, allow_insecure_http=allow_insecure_http, what=name)

        self.authorization = endpoint("authorization_endpoint", True)
        self.token = endpoint("token_endpoint", True)
        self.revocation = endpoint("revocation_endpoint", False)
        self.end_session = endpoint("end_session_endpoint", False)


class RefreshFlights:
    """Single-flight refresh per refresh token: the first request refreshes, concurrent ones wait and get the same
    outcome, and requests that arrive shortly after with the old (rotated) token get it too. Without this, two tabs or
    two parallel API calls at expiry present one refresh token twice, and an issuer that detects reuse ends the
    session. Across processes this cannot help; the issuer's grace period (Cognito RetryGracePeriodSeconds) must."""

    def __init__(self, replay_seconds: float, clock: Callable[[], float]) -> None:
        self._replay_seconds = replay_seconds
        self._clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._outcomes: dict[str, tuple[float, Any]] = {}

    def run(self, refresh_token: str, refresh: Callable[[], Any]) -> Any:
        # A hash, so this map never holds the refresh token itself.
        key = hashlib.sha256(refresh_token.encode("utf-8", "surrogatepass")).hexdigest()
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            now = self._clock()
            with self._guard:
                for stale in [k for k, (at, _) in self._outcomes.items() if now - at > self._replay_seconds]:
                    del self._outcomes[stale]
                    self._locks.pop(stale, None)
                held = self._outcomes.get(key)
            if held is not None:
                return held[1]
            outcome = refresh()
            with self._guard:
                self._outcomes[key] = (self._clock(), outcome)
            return outcome


class TokenHandler:
    """The core. `handle(request)` answers every request under the configured prefix."""

    def __init__(self, config: TokenHandlerConfig, *, clock: Callable[[], float] = time.time,
                 key_source: Any = None, verifier: Any = None, fetcher: Any = None, denylist: Any = None) -> None:
        from lambdas.validation import IssuerConfig, Verifier
        from lambdas.validation.discovery import DiscoveredKeySource

        self.config = config
        self._clock = clock
        self._discovery = key_source or DiscoveredKeySource(config.issuer,
                                                            allow_insecure_http=config.allow_insecure_http)
        self._verifier = verifier or Verifier(
            [IssuerConfig(config.issuer, [config.client_id], name=config.issuer_name, profile=config.profile,
                          algorithms=config.algorithms, token_use="id",
                          allow_insecure_http=config.allow_insecure_http)],
            clock=clock, key_sources={config.issuer_name: self._discovery}, verified_cache_size=0)
        self._endpoints: IssuerEndpoints | None = None
        self._fetcher = fetcher or HttpFetcher(allow_insecure_http=config.allow_insecure_http)
        self._flights = RefreshFlights(config.refresh_replay_seconds, clock)
        # The shared denylist (lambdas.validation.denylist) the authorizers' freshness: denylist routes read: a
        # logout puts the session's access token (jti) and session (sid) on it. Default: the DynamoDB table named
        # by AUTHGATE_DENYLIST_TABLE or the Redis at AUTHGATE_REDIS_URL, or none.
        self._denylist = denylist if denylist is not None else _denylist_from_env()
        self._routes = {
            ("GET", "/login"): self.login, ("GET", "/callback"): self.callback, ("GET", "/session"): self.session,
            ("POST", "/refresh"): self.refresh, ("POST", "/logout"): self.logout,
        }

    # --- plumbing --------------------------------------------------------------------------------------------

    def endpoints(self) -> IssuerEndpoints:
        if self._endpoints is None:
            self._discovery.hydrate()
            self._endpoints = IssuerEndpoints(self._discovery.metadata.document,
                                              allow_insecure_http=self.config.allow_insecure_http)
        return self._endpoints

    def handle(self, request: WebRequest) -> WebResponse:
        prefix = self.config.prefix
        if not (request.path == prefix or request.path.startswith(prefix + "/")):
            return WebResponse.json(404, {"error": "not_found", "message": f"the token handler serves {prefix}/*"})
        route = self._routes.get((request.method.upper(), request.path[len(prefix):]))
        if route is None:
            return WebResponse.json(404, {"error": "not_found",
                                          "message": f"no {request.method} {request.path} here; see {prefix}/login, "
                                                     "callback, session, refresh, logout"})
        refusal = csrf_refusal(request.method, request.headers, self.config.origin)
        if refusal is not None:
            return WebResponse.json(403, {"error": "csrf", "message": refusal})
        try:
            return route(request)
        except (TokenRejected, FetchError) as exc:
            # The issuer or its keys could not be had: fail closed, keep the session cookie for a later retry.
            code = exc.code if isinstance(exc, TokenRejected) else "issuer_unavailable"
            return WebResponse.json(503, {"error": code, "message": "the issuer cannot be reached; try again"})

    def _session(self, request: WebRequest) -> dict | None:
        return open_session(request.cookies, self.config.cookie_keys, now=self._clock())

    def _session_cookies(self, request: WebRequest, session: Mapping[str, Any]) -> list[str]:
        value = seal(self.config.cookie_keys, SESSION_COOKIE, session, expires_at=session["session_exp"])
        chunks = split_value(value)
        max_age = max(0, int(session["session_exp"] - self._clock()))
        cookies = [set_cookie(chunk_name(SESSION_COOKIE, i), chunk, max_age=max_age, same_site="Strict")
                   for i, chunk in enumerate(chunks)]
        cookies += [clear_cookie(name) for name in self._held_chunks(request)[len(chunks):]]
        return cookies

    @staticmethod
    def _held_chunks(request: WebRequest) -> list[str]:
        names = {name for name, _ in request.cookie_pairs}
        held = []
        index = 0
        while chunk_name(SESSION_COOKIE, index) in names:
            held.append(chunk_name(SESSION_COOKIE, index))
            index += 1
        return held

    def _cleared(self, request: WebRequest) -> list[str]:
        names = self._held_chunks(request) or [SESSION_COOKIE]
        return [clear_cookie(name) for name in names] + [clear_cookie(LOGIN_COOKIE, same_site="Lax")]

    def _post(self, url: str, form: Mapping[str, str], what: str) -> tuple[int, dict]:
        """POST to an issuer endpoint as this confidential client: (status, JSON body or {}). A body that is not
        JSON raises FetchError, as a transport failure does."""
        result = self._fetcher.post_form(url, form, headers={"Authorization": client_secret_basic(
            self.config.client_id, self.config.client_secret)}, timeout=POST_TIMEOUT_SECONDS)
        if not result.body.strip():
            return result.status, {}
        try:
            return result.status, parse_json_object(result.body, source=f"the {what}'s answer")
        except ValueError as exc:
            raise FetchError(url, str(exc)) from None

    def _token_request(self, form: Mapping[str, str]) -> tuple[int, dict]:
        return self._post(self.endpoints().token, form, "token endpoint")

    def _new_session(self, tokens: Mapping[str, Any], identity: Mapping[str, Any], *, started: float,
                     previous: Mapping[str, Any] | None = None) -> dict:
        now = self._clock()
        expires_in = tokens.get("expires_in")
        lifetime = expires_in if type(expires_in) is int and expires_in > 0 else 300
        session = dict(previous or {})
        session.update({
            "sid": session.get("sid") or secrets.token_urlsafe(16),
            "at": tokens["access_token"],
            "at_exp": int(now + lifetime),
            "scope": tokens.get("scope") if isinstance(tokens.get("scope"), str) else session.get("scope", ""),
            "started": int(started),
            "session_exp": int(started + self.config.session_seconds),
        })
        if isinstance(tokens.get("refresh_token"), str):
            session["rt"] = tokens["refresh_token"]
        for claim in ("sub", "name", "email"):
            if isinstance(identity.get(claim), str):
                session[claim] = identity[claim]
        return session

    # --- endpoints -------------------------------------------------------------------------------------------

    def login(self, request: WebRequest) -> WebResponse:
        given = request.query_param("return_to")
        # Given twice, which one counts would be the caller's choice: refused like any unsafe target.
        repeated = given is None and request.has_query_param("return_to")
        return_to = None if repeated else safe_return_to(given)
        if return_to is None:
            return WebResponse.json(400, {"error": "invalid_return_to",
                                          "message": "return_to must be a path on this site, e.g. /orders "
                                                     "(absolute URLs, //host and backslashes are refused)"})
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        login_state = {"state": state, "nonce": nonce, "verifier": verifier, "return_to": return_to}
        cookie = seal(self.config.cookie_keys, LOGIN_COOKIE, login_state,
                      expires_at=self._clock() + self.config.login_seconds)
        params = {"response_type": "code", "client_id": self.config.client_id,
                  "redirect_uri": self.config.redirect_uri, "scope": " ".join(self.config.scopes),
                  "state": state, "nonce": nonce, "code_challenge": pkce_challenge(verifier),
                  "code_challenge_method": "S256"}
        if self.config.resource:
            params["resource"] = self.config.resource
        if "offline_access" in self.config.scopes:
            params["prompt"] = "consent"  # OIDC Core 11: offline_access is ignored without consent
        response = WebResponse.redirect(self.endpoints().authorization + "?" + urlencode(params))
        # Lax, not Strict: the issuer sends the browser back with a cross-site top-level navigation.
        response.cookies.append(set_cookie(LOGIN_COOKIE, cookie, max_age=self.config.login_seconds, same_site="Lax"))
        return response

    def _error_page(self, request: WebRequest, status: int, title: str, detail: str) -> WebResponse:
        page = WebResponse.page(status, (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sign-in failed</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
            f"<p><a href='{html.escape(self.config.prefix)}/login'>Sign in again</a></p></body></html>"))
        page.cookies.append(clear_cookie(LOGIN_COOKIE, same_site="Lax"))
        return page

    def callback(self, request: WebRequest) -> WebResponse:
        sealed = request.cookies.get(LOGIN_COOKIE)
        try:
            login_state = unseal(self.config.cookie_keys, LOGIN_COOKIE, sealed or "", now=self._clock())
        except SealError:
            return self._error_page(request, 400, "This sign-in has expired or was started elsewhere",
                                    "Start again from the application.")
        error = request.query_param("error")
        if error is not None:
            description = request.query_param("error_description") or ""
            return self._error_page(request, 400, f"The identity provider refused the sign-in ({error[:100]})",
                                    description[:500])
        state = request.query_param("state") or ""
        if not hmac.compare_digest(state.encode("utf-8", "surrogatepass"), login_state["state"].encode()):
            return self._error_page(request, 400, "The sign-in response does not match this sign-in",
                                    "The state parameter differs (a stale tab or a forged response).")
        iss = request.query_param("iss")
        if iss is not None and iss != self.config.issuer:
            return self._error_page(request, 400, "The sign-in response came from another issuer",
                                    "RFC 9207: the iss parameter names a different issuer (mix-up attack?).")
        code = request.query_param("code")
        if not code:
            return self._error_page(request, 400, "The sign-in response carries no code", "Start again.")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                "code_verifier": login_state["verifier"]}
        if self.config.resource:
            form["resource"] = self.config.resource
        status, tokens = self._token_request(form)
        if status != 200 or not isinstance(tokens.get("access_token"), str) or \
                not isinstance(tokens.get("id_token"), str):
            error = str(tokens.get("error", f"HTTP {status}"))[:100]
            return self._error_page(request, 502, "The identity provider did not issue tokens",
                                    f"The token endpoint answered {error}.")
        try:
            principal = self._verifier.verify_id_token(tokens["id_token"], client_id=self.config.client_id,
                                                       nonce=login_state["nonce"],
                                                       access_token=tokens["access_token"])
        except TokenRejected as exc:
            return self._error_page(request, 502, "The identity provider's ID token was refused",
                                    f"{exc.code}: {exc.message}")
        session = self._new_session(tokens, principal.claims, started=self._clock())
        response = WebResponse.redirect(login_state["return_to"])
        response.cookies += self._session_cookies(request, session)
        response.cookies.append(clear_cookie(LOGIN_COOKIE, same_site="Lax"))
        return response

    def session(self, request: WebRequest) -> WebResponse:
        session = self._session(request)
        if session is None:
            return WebResponse.json(401, {"authenticated": False})
        return WebResponse.json(200, {
            "authenticated": True, "subject": session.get("sub"), "name": session.get("name"),
            "email": session.get("email"), "scopes": [s for s in session.get("scope", "").split(" ") if s],
            "expires_at": session["at_exp"], "session_expires_at": session["session_exp"],
            "access_expired": session["at_exp"] <= self._clock(), "can_refresh": "rt" in session})

    def refresh(self, request: WebRequest) -> WebResponse:
        session = self._session(request)
        if session is None:
            response = WebResponse.json(401, {"error": "no_session", "message": "sign in first"})
            response.cookies += self._cleared(request)
            return response
        if "rt" not in session:
            return WebResponse.json(409, {"error": "no_refresh_token",
                                          "message": "this session has no refresh token (request offline_access)"})

        def exchange() -> tuple[str, Any]:
            status, tokens = self._token_request({"grant_type": "refresh_token", "refresh_token": session["rt"]})
            if status == 200 and isinstance(tokens.get("access_token"), str):
                return "ok", self._new_session(tokens, session, started=session["started"], previous=session)
            if status == 400 and tokens.get("error") == "invalid_grant":
                return "ended", "invalid_grant"
            # Anything else (5xx, 429, a misconfigured client) says nothing about this session: keep it.
            raise FetchError(self.endpoints().token, f"the token endpoint answered HTTP {status}")

        outcome, value = self._flights.run(session["rt"], exchange)
        if outcome == "ended":
            # invalid_grant: revoked, expired, or a reused (already rotated) refresh token. The session is over.
            response = WebResponse.json(401, {"error": "session_ended",
                                              "message": f"the issuer refused the refresh token ({value}); sign in "
                                                         "again"})
            response.cookies += self._cleared(request)
            return response
        response = WebResponse.json(200, {"refreshed": True, "expires_at": value["at_exp"]})
        response.cookies += self._session_cookies(request, value)
        return response

    def _deny_session(self, session: Mapping[str, Any]) -> None:
        """The session's access token and session id onto the denylist. The token came from this handler's own
        sealed cookie, so its claims are read without verifying it again."""
        from lambdas.validation.compact import decode_json_object, decode_segment, split_token
        from lambdas.validation.errors import TokenRejected

        try:
            claims = decode_json_object(decode_segment(split_token(session["at"])[1], "claims set"), "claims set")
        except (TokenRejected, KeyError):
            return  # an opaque access token: only the issuer's revocation (above) can end it
        lifetime = max(60, int(session.get("at_exp", 0) - self._clock()) + 60)
        issuer = claims.get("iss") if isinstance(claims.get("iss"), str) else self.config.issuer
        for kind in ("jti", "sid"):
            if isinstance(claims.get(kind), str) and claims[kind]:
                self._denylist.revoke(issuer, kind, claims[kind], lifetime_seconds=lifetime)

    def logout(self, request: WebRequest) -> WebResponse:
        session = self._session(request)
        revoked = False
        end_session_url = None
        if session is not None:
            endpoints = self.endpoints()
            if endpoints.revocation and "rt" in session:
                # RFC 7009 2.2: 200 whether or not the token was still valid.
                status, _ = self._post(endpoints.revocation, {"token": session["rt"],
                                                              "token_type_hint": "refresh_token"}, "revocation endpoint")
                revoked = status == 200
            if endpoints.end_session:
                # client_id, not id_token_hint: the answer goes to page JavaScript, which never sees a token.
                params = {"client_id": self.config.client_id}
                if self.config.post_logout_redirect_uri:
                    params["post_logout_redirect_uri"] = self.config.post_logout_redirect_uri
                end_session_url = endpoints.end_session + "?" + urlencode(params)
        if session is not None and self._denylist is not None:
            self._deny_session(session)
        response = WebResponse.json(200, {"signed_out": True, "refresh_token_revoked": revoked,
                                          "end_session_url": end_session_url})
        response.cookies += self._cleared(request)
        return response


def _denylist_from_env() -> Any:
    import os

    # The names possession.py reads (ENV_DENYLIST_TABLE, ENV_REDIS_URL), checked before importing it: a token
    # handler without a shared store never needs it, and each module imported at init is paid on every cold start.
    if not (os.environ.get("AUTHGATE_DENYLIST_TABLE") or os.environ.get("AUTHGATE_REDIS_URL")):
        return None
    from lambdas.validation.possession import request_checks_from_env
    return request_checks_from_env(os.environ, needs_shared_store=True).denylist
