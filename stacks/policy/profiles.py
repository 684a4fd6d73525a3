"""Issuer profiles: what each kind of identity provider defaults to, and what its issuer URL must look like.

The facts the runtime also applies (profile names and aliases, algorithm names, the Cognito issuer shape, the
loopback and key-URL rules) are lambdas/validation's; this module adds only what the policy needs on top: defaults,
summaries and the issuer checks of the other IdPs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from lambdas.validation.config import PROFILE_ALIASES, PROFILES as PROFILE_NAMES, cognito_issuer
from lambdas.validation.fetcher import InsecureUrlError, check_key_url as check_runtime_key_url, is_loopback_host

TOKEN_USES = ("access", "id", "any")

_ENTRA_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
                "login.partner.microsoftonline.cn")


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    algorithms: tuple[str, ...]
    token_use: str
    check_issuer: Callable[[str], None]
    default_jwks_uri: Callable[[str], str | None]


def _no_check(issuer: str) -> None:
    return None


def _check_cognito(issuer: str) -> None:
    cognito_issuer(issuer)


def _check_entra(issuer: str) -> None:
    parts = urlsplit(issuer)
    host = (parts.hostname or "").lower()
    if host == "sts.windows.net":
        raise ValueError("https://sts.windows.net/... is the v1.0 token issuer; set the API app's "
                         "requestedAccessTokenVersion to 2 and use https://login.microsoftonline.com/<tenant id>/v2.0")
    if not (host in _ENTRA_HOSTS or host.endswith(".ciamlogin.com")) or not parts.path.rstrip("/").endswith("/v2.0"):
        raise ValueError("an entra issuer is the v2.0 issuer https://login.microsoftonline.com/<tenant id>/v2.0 "
                         "(Entra External ID: https://<tenant>.ciamlogin.com/<tenant id>/v2.0)")


def _check_google(issuer: str) -> None:
    if issuer == "https://accounts.google.com" or re.fullmatch(r"https://securetoken\.google\.com/[a-z][a-z0-9-]{4,}",
                                                                issuer):
        return
    raise ValueError("a google issuer is https://accounts.google.com (Google sign-in and service identity tokens) or "
                     "https://securetoken.google.com/<project id> (Identity Platform / Firebase)")


def _check_auth0(issuer: str) -> None:
    if not issuer.endswith("/"):
        raise ValueError(f"Auth0 writes its issuer with a trailing '/' and iss is compared exactly: use {issuer}/")


def _check_keycloak(issuer: str) -> None:
    if "/realms/" not in urlsplit(issuer).path:
        raise ValueError("a keycloak issuer names its realm: https://<host>/realms/<realm>")


def _google_jwks(issuer: str) -> str:
    if issuer.startswith("https://securetoken.google.com/"):
        return "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
    return "https://www.googleapis.com/oauth2/v3/certs"


def _entra_jwks(issuer: str) -> str:
    base = issuer.rstrip("/")
    return base[: -len("/v2.0")] + "/discovery/v2.0/keys"


def _okta_jwks(issuer: str) -> str:
    base = issuer.rstrip("/")
    # A custom authorization server's issuer is .../oauth2/<id>; the org server's is the bare domain.
    return base + "/v1/keys" if "/oauth2/" in urlsplit(base).path + "/" else base + "/oauth2/v1/keys"


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("generic", "any OpenID Connect issuer; keys from jwks_uri, jwks_file or discovery",
            ("RS256",), "access", _no_check, lambda issuer: None),
    Profile("cognito", "Amazon Cognito user pool; access tokens carry client_id instead of aud",
            ("RS256",), "access", _check_cognito, lambda issuer: issuer.rstrip("/") + "/.well-known/jwks.json"),
    Profile("entra", "Microsoft Entra ID / Entra External ID, v2.0 tokens",
            ("RS256",), "access", _check_entra, _entra_jwks),
    Profile("google", "Google accounts or Identity Platform (Firebase); both issue ID tokens",
            ("RS256",), "id", _check_google, _google_jwks),
    Profile("okta", "Okta org or custom authorization server",
            ("RS256",), "access", _no_check, _okta_jwks),
    Profile("auth0", "Auth0 tenant (issuer ends with '/')",
            ("RS256",), "access", _check_auth0, lambda issuer: issuer + ".well-known/jwks.json"),
    Profile("keycloak", "Keycloak realm",
            ("RS256",), "access", _check_keycloak, lambda issuer: issuer.rstrip("/") + "/protocol/openid-connect/certs"),
    Profile("kubernetes", "Kubernetes service account tokens (EKS, AKS, GKE cluster OIDC issuers)",
            ("RS256",), "any", _no_check, lambda issuer: None),
)}

if tuple(PROFILES) != PROFILE_NAMES:  # one list of names: lambdas/validation/config.py
    raise RuntimeError(f"policy profiles {tuple(PROFILES)} differ from the runtime's {PROFILE_NAMES}")
PROFILE_HELP = "one of: " + ", ".join(PROFILES) + " (aliases: " + ", ".join(
    f"{alias} = {name}" for alias, name in PROFILE_ALIASES.items()) + ")"


def check_issuer_url(issuer: str, *, local_development: bool) -> None:
    """https only (loopback http only with local_development); no query, fragment or credentials."""
    if not issuer or any(ch.isspace() or ord(ch) < 0x20 for ch in issuer):
        raise ValueError(f"{issuer!r} is not an issuer URL: it is empty or contains whitespace or control characters")
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise ValueError(f"{issuer!r} is not a valid URL ({exc})") from None
    if parts.scheme == "http":
        if not local_development:
            raise ValueError(f"{issuer!r} uses http://; issuers must use https:// (for a loopback issuer in local "
                             f"development only, set local_development: true on this issuer)")
        if not is_loopback_host(parts.hostname or ""):
            raise ValueError(f"{issuer!r}: local_development allows http:// only for loopback hosts "
                             f"(127.0.0.1, ::1, localhost); anything else must use https://")
    elif parts.scheme != "https":
        raise ValueError(f"{issuer!r} is not an https:// URL; an issuer is the exact `iss` value, e.g. "
                         f"https://idp.example.com")
    if not parts.hostname:
        raise ValueError(f"{issuer!r} has no host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{issuer!r}: an issuer URL has no query, fragment or credentials (OIDC Discovery 1.0 §4.3)")
    if local_development and parts.scheme == "https" and not is_loopback_host(parts.hostname or ""):
        raise ValueError(f"{issuer!r}: local_development is only for loopback issuers; remove it for a real issuer")


def check_key_url(url: str, *, what: str, local_development: bool) -> None:
    """The runtime's rule for where keys and metadata may be fetched from (lambdas/validation/fetcher.py), worded
    for the policy file."""
    try:
        check_runtime_key_url(url, allow_insecure_http=local_development, what=what)
    except InsecureUrlError as exc:
        raise ValueError(str(exc).replace("set allow_insecure_http=True", "set local_development: true on the "
                                          "issuer")) from None
