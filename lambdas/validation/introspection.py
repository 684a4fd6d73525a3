"""Token introspection (RFC 7662): asking the issuer whether a token is still active, for `freshness: introspect`
routes and for opaque (non-JWT) access tokens on issuers configured for it.

The endpoint is reached over https only, as for keys (loopback http only for local development), inside the
authorizer's time budget (introspection.timeout_seconds). Answers are cached in this instance, keyed by the
SHA-256 of the token (never the token itself): an active answer for at most cache_seconds and never beyond the
token's exp, an inactive one for negative_cache_seconds. An endpoint that cannot be reached or answers badly is
"cannot tell", never "active": the caller fails closed (introspection_unavailable, 500/503).
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any, Callable, Mapping

from .config import IssuerConfig
from .errors import TokenRejected
from .fetcher import (DEFAULT_MAX_BYTES, FetchError, InsecureUrlError, check_key_url, client_secret_basic,
                      fetch_json_document, parse_json_object)
from .principal import Principal, build_principal

MAX_INTROSPECTION_BYTES = 64 * 1024


def _unavailable(message: str) -> TokenRejected:
    return TokenRejected("introspection_unavailable", message,
                         hint="retry shortly; routes that introspect fail closed while the issuer cannot answer")


def _inactive(message: str) -> TokenRejected:
    return TokenRejected("inactive_token", message, hint="the token was revoked or has expired: obtain a new one")


class IntrospectionClient:
    """Introspects tokens at one issuer, with the issuer's introspection settings (IssuerConfig.introspection)."""

    def __init__(self, config: IssuerConfig, *, fetcher: Any = None, clock: Callable[[], float] = time.time,
                 environ: Mapping[str, str] | None = None, max_cached: int = 10_000) -> None:
        if config.introspection is None:
            raise ValueError(f"issuer {config.display_name} has no introspection settings")
        self.config = config
        self.settings = config.introspection
        if fetcher is None:
            from .fetcher import HttpFetcher
            fetcher = HttpFetcher(allow_insecure_http=config.allow_insecure_http)
        self._fetcher = fetcher
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._endpoint: str | None = None
        if self.settings.endpoint is not None:
            self._endpoint = check_key_url(self.settings.endpoint, allow_insecure_http=config.allow_insecure_http,
                                           what="introspection endpoint")
        self._cache: dict[str, tuple[float, Mapping[str, Any] | None]] = {}
        self._max_cached = max_cached
        self._lock = threading.Lock()
        self.calls = 0  # introspection requests actually sent (cache misses); read by tests and benchmarks

    # ---- the endpoint ----------------------------------------------------------------------------------------
    def endpoint(self) -> str:
        """The configured endpoint, else the discovery document's introspection_endpoint (fetched once)."""
        if self._endpoint is not None:
            return self._endpoint
        from .discovery import discovery_url_for, parse_provider_metadata

        url = discovery_url_for(self.config.issuer)
        try:
            doc, _ = fetch_json_document(self._fetcher, url, what="OIDC discovery document",
                                         timeout=self.settings.timeout_seconds)
            parse_provider_metadata(doc, expected_issuer=self.config.issuer,
                                    allow_insecure_http=self.config.allow_insecure_http, source=url)
        except (FetchError, ValueError) as exc:
            raise _unavailable(f"the introspection endpoint of {self.config.display_name} cannot be discovered: "
                               f"{exc}") from None
        endpoint = doc.get("introspection_endpoint")
        try:
            self._endpoint = check_key_url(endpoint, allow_insecure_http=self.config.allow_insecure_http,
                                           what="introspection_endpoint in the discovery document")
        except InsecureUrlError as exc:
            raise _unavailable(str(exc)) from None
        return self._endpoint

    def _authorization(self) -> str:
        secret = self._environ.get(self.settings.client_secret_env)
        if not secret:
            raise _unavailable(f"environment variable {self.settings.client_secret_env} (the introspection client "
                               f"secret of {self.config.display_name}) is not set")
        return client_secret_basic(self.settings.client_id, secret)

    # ---- introspecting ---------------------------------------------------------------------------------------
    def introspect(self, token: str) -> Mapping[str, Any]:
        """The issuer's answer for an active token whose iss, aud and exp hold; raises TokenRejected
        inactive_token / invalid_audience / unknown_issuer / expired, or introspection_unavailable."""
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            if cached[1] is None:
                raise _inactive("the issuer said the token is not active (cached answer)")
            return cached[1]
        answer = self._ask(token)
        if answer.get("active") is not True:
            self._remember(key, now + self.settings.negative_cache_seconds, None, now)
            raise _inactive("the issuer's introspection endpoint says the token is not active")
        self._check(answer, now)
        until = now + self.settings.cache_seconds
        exp = answer.get("exp")
        if type(exp) in (int, float):
            until = min(until, exp)
        self._remember(key, until, answer, now)
        return answer

    def _ask(self, token: str) -> Mapping[str, Any]:
        endpoint = self.endpoint()
        post = getattr(self._fetcher, "post_form", None)
        if post is None:
            raise _unavailable(f"the fetcher {type(self._fetcher).__name__} cannot POST (introspection needs "
                               f"post_form)")
        self.calls += 1
        try:
            result = post(endpoint, {"token": token, "token_type_hint": "access_token"},
                          headers={"Authorization": self._authorization()}, timeout=self.settings.timeout_seconds,
                          max_bytes=min(DEFAULT_MAX_BYTES, MAX_INTROSPECTION_BYTES))
        except TokenRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - a transport failure is "cannot tell", whatever raised it
            raise _unavailable(f"introspection at {self.config.display_name} failed: {exc}") from None
        if result.status != 200:
            raise _unavailable(f"the introspection endpoint of {self.config.display_name} answered HTTP "
                               f"{result.status}, expected 200")
        try:
            return parse_json_object(result.body, source="the introspection response")
        except ValueError as exc:
            raise _unavailable(str(exc)) from None

    def _check(self, answer: Mapping[str, Any], now: float) -> None:
        config = self.config
        iss = answer.get("iss")
        if iss is not None and iss not in config.accepted_issuers:
            raise TokenRejected("unknown_issuer", "the introspection response names another issuer",
                                expected=config.issuer, found=str(iss)[:200])
        exp = answer.get("exp")
        if exp is not None and (type(exp) not in (int, float) or exp + config.leeway_seconds <= now):
            raise TokenRejected("expired", "the introspection response's exp has passed", found=exp)
        aud = answer.get("aud")
        offered = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] \
            if isinstance(aud, list) else []
        if config.profile == "cognito" and isinstance(answer.get("client_id"), str):
            offered.append(answer["client_id"])
        if not set(offered) & set(config.audiences):
            raise TokenRejected("invalid_audience", "the introspection response's aud (or client_id) is not one "
                                "this API accepts", expected=list(config.audiences), found=offered[:10],
                                hint="the token was issued for another resource")

    def _remember(self, key: str, until: float, answer: Mapping[str, Any] | None, now: float) -> None:
        if until <= now:
            return
        with self._lock:
            if len(self._cache) >= self._max_cached:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= self._max_cached:
                    self._cache.clear()
            self._cache[key] = (until, answer)

    # ---- what the route decision uses ------------------------------------------------------------------------
    def principal(self, token: str) -> Principal:
        """The caller of an opaque access token, from the introspection answer (sub, client_id, scope, aud)."""
        answer = dict(self.introspect(token))
        scope = answer.get("scope")
        scopes = tuple(scope.split(" ")) if isinstance(scope, str) and scope else ()
        aud = answer.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(a for a in aud if isinstance(a, str)) \
            if isinstance(aud, list) else ()
        sub = answer.get("sub") if isinstance(answer.get("sub"), str) else ""
        client_id = answer.get("client_id") if isinstance(answer.get("client_id"), str) else None
        exp = answer.get("exp")
        jti = answer.get("jti") if isinstance(answer.get("jti"), str) else None
        return build_principal(sub, self.config.issuer, self.config.display_name, client_id, audience, scopes, (),
                               (), None, "access", jti, int(exp) if type(exp) in (int, float) else 0, answer)

    def confirm(self, token: str, principal: Principal) -> Mapping[str, Any]:
        """For a verified JWT: the issuer must still call it active, for the same subject and client."""
        answer = self.introspect(token)
        for claim, own in (("sub", principal.subject), ("client_id", principal.client_id)):
            found = answer.get(claim)
            if found is not None and own and found != own:
                raise TokenRejected("inactive_token", f"the introspection response's {claim} is not the token's",
                                    hint="the issuer does not recognise this token as issued")
        return answer


__all__ = ["IntrospectionClient"]
