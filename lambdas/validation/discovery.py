"""OIDC discovery: an issuer's keys found through its `/.well-known/openid-configuration`, as a key source.

Where the document lives. OpenID Connect Discovery 1.0 section 4 appends `/.well-known/openid-configuration` to the
issuer, after removing one trailing "/": `https://idp.example.com/realms/corp` ->
`https://idp.example.com/realms/corp/.well-known/openid-configuration`. RFC 8414 (OAuth authorization server
metadata) instead inserts the well-known segment between host and path (`/.well-known/<suffix>/realms/corp`), but its
section 5 keeps the OIDC rule for `openid-configuration`, and every OIDC issuer (Cognito, Entra, Google, Okta, Auth0,
Keycloak) serves the appended form, so that is what authgate fetches. An issuer that publishes elsewhere (the Entra
multi-tenant `common` endpoint, say) is configured with `discovery_url=`.

What is checked. The document must be a strict JSON object whose `issuer` equals the configured issuer exactly
(OIDC Discovery 4.3: no normalisation, a trailing slash matters) and whose `jwks_uri` passes the same URL rules as a
configured one (https; loopback http only with allow_insecure_http). A document that fails either check is refused and
does not replace a good one.

Caching. The discovery document follows the same CachePolicy as the keys (Cache-Control within bounds, stale served
for a bounded window while the issuer is down, merged concurrent fetches); the keys behind its jwks_uri are a
JwksCache. When a refreshed document names a different jwks_uri, a new JwksCache takes over.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from .fetcher import (DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS, Fetcher, FetchResult, InsecureUrlError,
                      check_key_url, display_url)
from .jwk import JsonWebKey
from .jwks_cache import CachePolicy, JwksCache, RemoteDocument, make_fetcher
from .key_metrics import KeySetMetrics
from .records import Record, set_field

WELL_KNOWN_OPENID_CONFIGURATION = "/.well-known/openid-configuration"


def discovery_url_for(issuer: str) -> str:
    """The OIDC discovery URL of `issuer` (OpenID Connect Discovery 1.0 section 4; see the module docstring)."""
    parts = urlsplit(issuer)
    if parts.query or parts.fragment:
        raise InsecureUrlError(f"issuer {display_url(issuer)!r} has a query or fragment; an OIDC issuer identifier "
                               "is a URL without them, so it has no discovery document")
    base = issuer[:-1] if issuer.endswith("/") else issuer
    return base + WELL_KNOWN_OPENID_CONFIGURATION


class ProviderMetadata(Record):
    """The parts of a discovery document authgate uses, plus the whole document for callers that want more."""

    __slots__ = ("issuer", "jwks_uri", "document")

    def __init__(self, issuer: str, jwks_uri: str, document: Mapping[str, Any]) -> None:
        set_field(self, "issuer", issuer)
        set_field(self, "jwks_uri", jwks_uri)
        set_field(self, "document", document)


def parse_provider_metadata(doc: Mapping[str, Any], *, expected_issuer: str, allow_insecure_http: bool,
                            source: str) -> ProviderMetadata:
    """Check a discovery document against the configured issuer. Raises ValueError saying what is wrong."""
    found = doc.get("issuer")
    if not isinstance(found, str):
        raise ValueError(f'{source} has no "issuer" string member')
    if found != expected_issuer:
        raise ValueError(f"{source} names issuer {found[:200]!r}, but the configured issuer is {expected_issuer!r}; "
                         "they must be identical (OIDC Discovery 4.3): copy the document's issuer value into the "
                         "configuration, trailing slash included")
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError(f'{source} has no "jwks_uri" string member, so the issuer publishes no keys there')
    try:
        check_key_url(jwks_uri, allow_insecure_http=allow_insecure_http, what=f"the jwks_uri in {source}")
    except InsecureUrlError as exc:
        raise ValueError(str(exc)) from None
    return ProviderMetadata(issuer=found, jwks_uri=jwks_uri, document=dict(doc))


class DiscoveredKeySource:
    """A key source for an issuer whose jwks_uri is found by OIDC discovery: `get_key(kid, alg)` and `hydrate()`.

    issuer               the issuer identifier, exactly as tokens carry it in `iss`
    discovery_url        where the discovery document is, when not at the issuer + /.well-known/openid-configuration
    fetcher, clock, allow_insecure_http and the CachePolicy fields: as for JwksCache, and shared with it

    Raises InsecureUrlError (a ValueError) at construction when the issuer or discovery URL may not be fetched from.
    """

    def __init__(self, issuer: str, *, discovery_url: str | None = None, fetcher: Fetcher | None = None,
                 clock: Callable[[], float] = time.monotonic, allow_insecure_http: bool = False,
                 min_ttl: float = 60.0, max_ttl: float = 86400.0, default_ttl: float = 600.0,
                 refetch_cooldown: float = 30.0, stale_if_error: float = 3600.0, error_backoff: float = 5.0,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES,
                 metrics: KeySetMetrics | None = None) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise InsecureUrlError(f"issuer must be a non-empty URL string, got {issuer!r}")
        url = discovery_url if discovery_url is not None else discovery_url_for(issuer)
        self.issuer = issuer
        self.discovery_url = check_key_url(url, allow_insecure_http=allow_insecure_http, what="discovery URL")
        self._allow_insecure_http = allow_insecure_http
        self._fetcher = make_fetcher(fetcher, allow_insecure_http)
        self._clock = clock
        self._cache_options = dict(min_ttl=min_ttl, max_ttl=max_ttl, default_ttl=default_ttl,
                                   refetch_cooldown=refetch_cooldown, stale_if_error=stale_if_error,
                                   error_backoff=error_backoff, timeout=timeout, max_bytes=max_bytes)
        self.policy = CachePolicy(**self._cache_options)
        self.metrics = metrics if metrics is not None else KeySetMetrics(clock=clock)
        self._metadata: RemoteDocument[ProviderMetadata] = RemoteDocument(
            self.discovery_url, self._parse, what="OIDC discovery document", fetcher=self._fetcher, clock=clock,
            policy=self.policy, counters=self.metrics.document(issuer, "discovery"))
        self._lock = threading.Lock()
        self._jwks: JwksCache | None = None

    def __repr__(self) -> str:
        return f"DiscoveredKeySource({self.issuer!r})"

    def _parse(self, doc: dict, result: FetchResult) -> ProviderMetadata:
        return parse_provider_metadata(doc, expected_issuer=self.issuer, allow_insecure_http=self._allow_insecure_http,
                                       source=f"the discovery document at {display_url(self.discovery_url)}")

    @property
    def metadata(self) -> ProviderMetadata | None:
        """The discovery document held now, without fetching."""
        return self._metadata.current

    @property
    def fetch_count(self) -> int:
        """Discovery fetches plus key-set fetches made so far."""
        jwks = self._jwks
        return self._metadata.fetch_count + (jwks.fetch_count if jwks is not None else 0)

    def jwks_cache(self) -> JwksCache:
        """The JwksCache behind the current discovery document (fetching the document if needed). Raises
        TokenRejected("jwks_unavailable") when no discovery document can be had."""
        metadata = self._metadata.get()
        jwks = self._jwks
        if jwks is not None and jwks.jwks_uri == metadata.jwks_uri:
            return jwks
        with self._lock:
            if self._jwks is None or self._jwks.jwks_uri != metadata.jwks_uri:
                self._jwks = JwksCache(metadata.jwks_uri, fetcher=self._fetcher, clock=self._clock,
                                       allow_insecure_http=self._allow_insecure_http, issuer=self.issuer,
                                       metrics=self.metrics, **self._cache_options)
            return self._jwks

    def hydrate(self) -> None:
        """Fetch the discovery document and the keys now (Lambda init). Raises TokenRejected("jwks_unavailable")
        when either cannot be had."""
        self.jwks_cache().hydrate()

    def get_key(self, kid: str | None, alg: str) -> JsonWebKey:
        """As JwksCache.get_key, after discovery."""
        return self.jwks_cache().get_key(kid, alg)
