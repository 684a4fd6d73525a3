"""Behind Azure App Service / Functions authentication (EasyAuth): read `X-MS-CLIENT-PRINCIPAL`.

EasyAuth validates the token itself and passes the caller as base64 JSON: {"auth_typ", "name_typ", "role_typ",
"claims": [{"typ", "val"}, ...]}. App Service removes any X-MS-CLIENT-PRINCIPAL* header a client sends, so the header
is trustworthy only when the app is reachable solely through App Service with authentication on and
unauthenticated requests refused ("unauthenticatedClientAction": "Return401"); never use this guard where the app
can be reached another way (a container listening on a public address, a private endpoint without EasyAuth).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from lambdas.validation.errors import TokenRejected
from lambdas.validation.principal import build_principal
from lambdas.validation.profiles import PROFILES

from .require import header_value

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
MAX_PRINCIPAL_BYTES = 32 * 1024
# EasyAuth spells many claims as WS-Federation URIs; the short names are what tokens and policies use.
CLAIM_ALIASES = {
    "http://schemas.microsoft.com/identity/claims/objectidentifier": "oid",
    "http://schemas.microsoft.com/identity/claims/tenantid": "tid",
    "http://schemas.microsoft.com/identity/claims/scope": "scp",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": "sub",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": "roles",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "email",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "upn",
    "http://schemas.microsoft.com/identity/claims/identityprovider": "idp",
}
MULTI_VALUED = frozenset({"roles", "groups", "aud"})


def decode_client_principal(value: str) -> dict:
    if len(value) > MAX_PRINCIPAL_BYTES:
        raise TokenRejected("token_too_large", f"{PRINCIPAL_HEADER} exceeds {MAX_PRINCIPAL_BYTES} bytes")
    if not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", value):
        raise TokenRejected("malformed", f"{PRINCIPAL_HEADER} is not base64")
    stripped = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        document = json.loads(base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenRejected("malformed", f"{PRINCIPAL_HEADER} is not base64 JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        raise TokenRejected("malformed", f'{PRINCIPAL_HEADER} has no "claims" list')
    return document


def claims_from_client_principal(document: dict) -> dict:
    """The claims array as a claims object: URIs shortened, repeated types (roles, groups) collected in lists."""
    role_typ = document.get("role_typ")
    claims: dict[str, Any] = {}
    for entry in document["claims"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("typ"), str) or not isinstance(entry.get("val"),
                                                                                                  str):
            raise TokenRejected("malformed", f'every {PRINCIPAL_HEADER} claim needs string "typ" and "val"')
        name = "roles" if entry["typ"] == role_typ else CLAIM_ALIASES.get(entry["typ"], entry["typ"])
        if name in MULTI_VALUED:
            claims.setdefault(name, []).append(entry["val"])
        elif name not in claims:
            claims[name] = entry["val"]
    return claims


class EasyAuthGuard:
    """X-MS-CLIENT-PRINCIPAL as a Principal (Entra claims: oid/sub, tid, scp, roles, groups, azp/appid)."""

    def __init__(self, *, expected_tenant: str | None = None, expected_audiences: tuple[str, ...] = (),
                 issuer_name: str = "easyauth") -> None:
        self.expected_tenant = expected_tenant
        self.expected_audiences = frozenset(expected_audiences)
        self.issuer_name = issuer_name

    def authenticate(self, headers: Any) -> Any:
        value = header_value(headers, PRINCIPAL_HEADER)
        if not value:
            raise TokenRejected("malformed", f"the request has no {PRINCIPAL_HEADER} header",
                                hint="turn on App Service authentication with unauthenticated requests refused")
        claims = claims_from_client_principal(decode_client_principal(value))
        subject = claims.get("oid") or claims.get("sub")
        if not subject:
            raise TokenRejected("missing_claim", f"{PRINCIPAL_HEADER} has neither oid nor nameidentifier")
        principal_id = header_value(headers, PRINCIPAL_ID_HEADER)
        if principal_id is not None and principal_id not in (claims.get("oid"), claims.get("sub")):
            raise TokenRejected("claim_mismatch", f"{PRINCIPAL_ID_HEADER} does not match {PRINCIPAL_HEADER}")
        if self.expected_tenant and claims.get("tid") != self.expected_tenant:
            raise TokenRejected("unknown_issuer", "the caller belongs to another Entra tenant",
                                expected=self.expected_tenant, found=claims.get("tid"))
        audience = tuple(claims.get("aud", ()))
        if self.expected_audiences and self.expected_audiences.isdisjoint(audience):
            raise TokenRejected("invalid_audience", "the token EasyAuth accepted was issued for another audience",
                                expected=sorted(self.expected_audiences), found=list(audience))
        client, scopes, roles, groups, tenant = PROFILES["entra"].identity(claims, "access")
        return build_principal(subject, str(claims.get("iss", "")), self.issuer_name, client, audience, scopes, roles,
                               groups, tenant, "access", None, 0, claims)
