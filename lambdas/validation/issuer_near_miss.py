"""Why an untrusted `iss` looks like a trusted one: the slips that make a good token fail as unknown_issuer.

iss is compared exactly (RFC 8725 3.8), so these stay refusals; what changes is the message, which says exactly what
differs and what to change, instead of suggesting that a new issuer be added. Only the refusal path calls this.
"""
from __future__ import annotations

import re
from typing import Iterable

_ENTRA_V1 = re.compile(r"https://sts\.windows\.net/([0-9a-fA-F-]{36}|\{tenantid\})/")
_ENTRA_V2 = re.compile(r"https://login\.microsoftonline\.com/([0-9a-fA-F-]{36}|\{tenantid\})/v2\.0")


def issuer_near_miss(iss: str, trusted: Iterable[str]) -> str | None:
    """A sentence naming the trusted issuer `iss` nearly is and the difference, or None when it resembles none."""
    for issuer in trusted:
        difference = _difference(iss, issuer)
        if difference:
            return difference
    return None


def _difference(iss: str, issuer: str) -> str | None:
    if iss.rstrip("/") == issuer.rstrip("/"):
        has, lacks = ("has", "lacks") if iss.endswith("/") else ("lacks", "has")
        return (f"the token's iss {has} a trailing slash that the trusted issuer {issuer!r} {lacks}; iss is compared "
                f"exactly, so set the issuer to exactly {iss!r} if that is what the IdP puts in its tokens")
    v1, v2 = _ENTRA_V1.fullmatch(iss), _ENTRA_V2.fullmatch(issuer)
    if v1 and v2 and _same_tenant(v1.group(1), v2.group(1)):
        return (f"this is an Entra ID v1.0 token (iss {iss!r}) and the issuer {issuer!r} is the v2.0 one: set "
                f"\"requestedAccessTokenVersion\": 2 in the API's app registration manifest (api section; older "
                f"manifests: accessTokenAcceptedVersion) so Entra issues v2.0 tokens, or trust the v1.0 issuer")
    v2_token, v1_issuer = _ENTRA_V2.fullmatch(iss), _ENTRA_V1.fullmatch(issuer)
    if v2_token and v1_issuer and _same_tenant(v2_token.group(1), v1_issuer.group(1)):
        return (f"this is an Entra ID v2.0 token (iss {iss!r}) and the issuer {issuer!r} is the v1.0 one: set the "
                f"issuer to https://login.microsoftonline.com/<tenant>/v2.0")
    if iss.lower() == issuer.lower():
        return f"the token's iss differs from the trusted issuer {issuer!r} only in letter case; iss is compared exactly"
    # Plain string work, no URL parser: iss is attacker-chosen text, and urlsplit raises on some of it.
    token_scheme, token_sep, token_rest = iss.partition("://")
    issuer_scheme, issuer_sep, issuer_rest = issuer.partition("://")
    if token_sep and issuer_sep and token_rest == issuer_rest and token_scheme != issuer_scheme:
        return (f"the token's iss uses {token_scheme[:10]}:// where the trusted issuer {issuer!r} uses "
                f"{issuer_scheme}://; iss is compared exactly")
    return None


def _same_tenant(a: str, b: str) -> bool:
    return a.lower() == b.lower() or "{tenantid}" in (a, b)
