"""Principal: the caller's identity after a token passed, normalised the same way whichever IdP issued it."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from .records import Record, set_field


class Principal(Record):
    """Who the token says the caller is.

    subject      `sub`
    issuer       `iss` exactly as in the token
    issuer_name  the name of the IssuerConfig that accepted it (routes refer to issuers by this name)
    client_id    the OAuth client the token was issued to (client_id / azp / appid / cid, per IdP)
    audience     the audiences the token was checked against (`aud`, or Cognito's `client_id`)
    scopes, roles, groups   normalised from each IdP's own claims (scope/scp/permissions, roles/realm_access, ...)
    tenant       Entra `tid`, Identity Platform `firebase.tenant`, Auth0 `org_id`, Kubernetes namespace
    token_use    "access" or "id"
    jti, expires_at   token id and `exp` (epoch seconds; 0 when the issuer does not require exp)
    claims       every raw claim, read-only
    """

    subject: str
    issuer: str
    issuer_name: str
    client_id: str | None
    audience: tuple[str, ...]
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    tenant: str | None
    token_use: str
    jti: str | None
    expires_at: int
    claims: Mapping[str, Any]

    # No __slots__: a Principal keeps its fields in its __dict__, which build_principal fills in one step.
    _fields = ("subject", "issuer", "issuer_name", "client_id", "audience", "scopes", "roles", "groups", "tenant",
               "token_use", "jti", "expires_at", "claims")

    def __init__(self, subject: str, issuer: str, issuer_name: str, client_id: str | None, audience: tuple[str, ...],
                 scopes: tuple[str, ...], roles: tuple[str, ...], groups: tuple[str, ...], tenant: str | None,
                 token_use: str, jti: str | None, expires_at: int, claims: Mapping[str, Any]) -> None:
        set_field(self, "__dict__", {"subject": subject, "issuer": issuer, "issuer_name": issuer_name,
                                     "client_id": client_id, "audience": audience, "scopes": scopes, "roles": roles,
                                     "groups": groups, "tenant": tenant, "token_use": token_use, "jti": jti,
                                     "expires_at": expires_at, "claims": claims})

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def as_dict(self) -> dict:
        """A JSON-safe view (for logs, the CLI and authorizer context)."""
        return {"subject": self.subject, "issuer": self.issuer, "issuer_name": self.issuer_name,
                "client_id": self.client_id, "audience": list(self.audience), "scopes": list(self.scopes),
                "roles": list(self.roles), "groups": list(self.groups), "tenant": self.tenant,
                "token_use": self.token_use, "jti": self.jti, "expires_at": self.expires_at,
                "claims": dict(self.claims)}


_new = object.__new__


def build_principal(subject: str, issuer: str, issuer_name: str, client_id: str | None, audience: tuple,
                    scopes: tuple, roles: tuple, groups: tuple, tenant: str | None, token_use: str,
                    jti: str | None, expires_at: int, claims: dict) -> Principal:
    """A Principal from a verified token's facts, its claims made read-only; without the keyword-binding call of
    __init__, since this runs once per verified token on the hot path. Same fields, same class, same immutability."""
    principal = _new(Principal)
    set_field(principal, "__dict__", {"subject": subject, "issuer": issuer, "issuer_name": issuer_name,
                                      "client_id": client_id, "audience": audience, "scopes": scopes, "roles": roles,
                                      "groups": groups, "tenant": tenant, "token_use": token_use, "jti": jti,
                                      "expires_at": expires_at, "claims": MappingProxyType(claims)})
    return principal
