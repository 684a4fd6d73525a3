"""Behind Azure App Service / Functions authentication (EasyAuth): read `X-MS-CLIENT-PRINCIPAL`.

EasyAuth validates the token itself and passes the caller as base64 JSON: {"auth_typ", "name_typ", "role_typ",
"claims": [{"typ", "val"}, ...]}. App Service removes any X-MS-CLIENT-PRINCIPAL* header a client sends, so the header
is trustworthy only when the app is reachable solely through App Service with authentication on and
unauthenticated requests refused ("unauthenticatedClientAction": "Return401"); never use this guard where the app
can be reached another way (a container listening on a public address, a private endpoint without EasyAuth).
EasyAuth checks no DPoP proof or client certificate and passes neither on, so a bound token's claims (cnf.jkt,
cnf x5t#S256) are refused.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Sequence

from lambdas.validation.errors import TokenRejected
from lambdas.validation.names import name_set
from lambdas.validation.possession import refuse_bound_forwarded_claims
from lambdas.validation.principal import build_principal
from lambdas.validation.profiles import PROFILES

from .identity_header import identity_json
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
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise TokenRejected("malformed", f"{PRINCIPAL_HEADER} is not base64") from None
    document = identity_json(raw, PRINCIPAL_HEADER)
    if not isinstance(document.get("claims"), list):
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


def _refuse_bound_token(claims: dict) -> None:
    """EasyAuth passes a bound token's claims (cnf) like any other's, and no DPoP proof or client certificate
    reaches the app to check them against: refused, as the route decision refuses a bound token sent as Bearer."""
    cnf = claims.get("cnf")
    if isinstance(cnf, str):
        # EasyAuth writes every claim value as a string: an object claim arrives as its JSON text.
        claims["cnf"] = identity_json(cnf.encode("utf-8"), f"the cnf claim of {PRINCIPAL_HEADER}")
    refuse_bound_forwarded_claims(claims, forwarded_by=f"App Service authentication ({PRINCIPAL_HEADER})")


# Entra tenant ids are GUIDs (the tid claim); "common", "organizations", domain names and the like are not.
_TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class EasyAuthGuard:
    """X-MS-CLIENT-PRINCIPAL as a Principal (Entra claims: oid/sub, tid, scp, roles, groups, azp/appid).

    EasyAuth accepts any token its own settings allow, and a multi-tenant app registration (or an allowed audience
    shared with another API) lets callers through that this backend never meant to serve. So the guard requires:
      expected_tenant     the Entra tenant id (GUID) the caller's `tid` must equal, or
                          insecure_accept_any_tenant=True (a multi-tenant app that decides on tenants itself);
      expected_audiences  the `aud` values this API answers to (its client id for v2 tokens, and its App ID URI
                          if v1 tokens arrive), or insecure_accept_any_audience=True.
    """

    def __init__(self, *, expected_tenant: str | None = None, expected_audiences: Sequence[str] = (),
                 insecure_accept_any_tenant: bool = False, insecure_accept_any_audience: bool = False,
                 issuer_name: str = "easyauth") -> None:
        for flag, value in (("insecure_accept_any_tenant", insecure_accept_any_tenant),
                            ("insecure_accept_any_audience", insecure_accept_any_audience)):
            if not isinstance(value, bool):
                raise ValueError(f"EasyAuthGuard: {flag} must be True or False, got {value!r}")
        self.expected_tenant = _expected_tenant(expected_tenant, insecure_accept_any_tenant)
        self.expected_audiences = _expected_audiences(expected_audiences, insecure_accept_any_audience)
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
        tenant_id = claims.get("tid")
        if self.expected_tenant is not None and (not isinstance(tenant_id, str)
                                                 or tenant_id.lower() != self.expected_tenant):
            raise TokenRejected("unknown_issuer", "the caller belongs to another Entra tenant (or names none)",
                                expected=self.expected_tenant, found=str(tenant_id)[:100] if tenant_id else None)
        audience = tuple(claims.get("aud", ()))
        if self.expected_audiences is not None and self.expected_audiences.isdisjoint(audience):
            raise TokenRejected("invalid_audience", "the token EasyAuth accepted was issued for another audience",
                                expected=sorted(self.expected_audiences), found=list(audience))
        _refuse_bound_token(claims)
        client, scopes, roles, groups, tenant = PROFILES["entra"].identity(claims, "access")
        return build_principal(subject, str(claims.get("iss", "")), self.issuer_name, client, audience, scopes, roles,
                               groups, tenant, "access", None, 0, claims)


def _expected_tenant(tenant: Any, accept_any: bool) -> str | None:
    if accept_any:
        if tenant is not None:
            raise ValueError("EasyAuthGuard: pass either expected_tenant or insecure_accept_any_tenant=True, not both")
        return None
    if tenant is None:
        raise ValueError("EasyAuthGuard needs expected_tenant: the Entra tenant id (a GUID, the tid claim; Entra admin "
                         "center > Overview > Tenant ID) whose callers this API serves. A multi-tenant app that "
                         "checks tenants itself passes insecure_accept_any_tenant=True instead")
    if not isinstance(tenant, str) or not _TENANT_ID.fullmatch(tenant.lower()):
        raise ValueError(f"EasyAuthGuard: expected_tenant must be the tenant id, a GUID such as "
                         f"aaaabbbb-0000-cccc-1111-dddd2222eeee (the tid claim), not a domain name or an authority "
                         f"alias such as 'common' or 'organizations'; got {tenant!r}")
    return tenant.lower()


def _expected_audiences(audiences: Any, accept_any: bool) -> frozenset[str] | None:
    audiences = tuple(sorted(name_set(audiences or (), "expected_audiences")))
    if accept_any:
        if audiences:
            raise ValueError("EasyAuthGuard: pass either expected_audiences or insecure_accept_any_audience=True, "
                             "not both")
        return None
    if not audiences:
        raise ValueError("EasyAuthGuard needs expected_audiences: the aud values this API answers to (its application "
                         "(client) id for v2 tokens, and its App ID URI such as api://orders if v1 tokens arrive). "
                         "To accept whatever EasyAuth accepts, pass insecure_accept_any_audience=True instead")
    for audience in audiences:
        if not isinstance(audience, str) or not audience.strip() or audience != audience.strip():
            raise ValueError(f"EasyAuthGuard: every expected audience must be a non-empty string without surrounding "
                             f"whitespace; got {audience!r}")
    return frozenset(audiences)
