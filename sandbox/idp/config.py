"""The OpenID provider's configuration, derived from the auth policy: its clients, its APIs (resource servers), users.

Clients and audiences come from the policy (the same file the gateways are built from), so the tokens the sandbox
issues are the tokens the deployed gateways would see. Client secrets are made up per run and never written to
the policy. Users are sandbox data: the policy says what routes require, not who the people are.
"""
from __future__ import annotations

import secrets
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

RESOURCE_URN_PREFIX = "urn:authgate:audience:"
ACCESS_TOKEN_TTL_SECONDS = 300


@dataclass(frozen=True)
class SandboxUser:
    """A person who can sign in at the sandbox provider; `token_claims` go into their access tokens."""

    username: str
    password: str
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    token_claims: dict[str, Any] = field(default_factory=dict)


# The demo's people. roles/groups/tenant are what routes beyond scopes check (the Lambda authorizer's job).
DEFAULT_USERS = (
    SandboxUser("alice", "alice-sandbox-password",
                id_token_claims={"name": "Alice Admin", "email": "alice@example.test", "email_verified": True},
                token_claims={"roles": ["admin"], "groups": ["ops"], "tenant": "acme"}),
    SandboxUser("bob", "bob-sandbox-password",
                id_token_claims={"name": "Bob Reader", "email": "bob@example.test", "email_verified": True},
                token_claims={"roles": ["viewer"], "groups": ["sales"], "tenant": "acme"}),
)


def resource_indicator(audience: str) -> str:
    """RFC 8707 wants an absolute URI; an audience that already is one is used as is."""
    parts = urllib.parse.urlsplit(audience)
    if parts.scheme and (parts.netloc or parts.scheme == "urn") and not parts.fragment:
        return audience
    return RESOURCE_URN_PREFIX + audience


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None
    kind: str
    audience: str | None
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class IdpSetup:
    """The JSON document server.mjs reads, and what the demo needs to act as each client."""

    document: dict[str, Any]
    clients: dict[str, ClientCredentials]
    users: dict[str, SandboxUser]
    audiences: tuple[str, ...]


def build_idp_setup(policy: Any, issuer_name: str, *, users: tuple[SandboxUser, ...] = DEFAULT_USERS,
                    extra_audiences: tuple[str, ...] = (),
                    access_token_ttl: int = ACCESS_TOKEN_TTL_SECONDS) -> IdpSetup:
    """The provider for policy issuer `issuer_name`: every client of that issuer, every audience it serves.

    `extra_audiences` are further APIs the same provider issues tokens for that the policy's gateways do not accept
    (a real IdP serves many APIs; a token for one of them must be refused by the others).
    """
    issuer = policy.issuer(issuer_name)
    clients = policy.clients_of(issuer_name)
    if not clients:
        raise ValueError(f"the policy has no clients for issuer {issuer_name!r}; the sandbox provider needs at least "
                         "one (add a `clients:` entry with `issuer: {issuer_name}`)")
    scopes = list(policy.issuer_scopes(issuer_name))
    audiences = tuple(issuer.audiences) + tuple(a for a in extra_audiences if a not in issuer.audiences)
    resources = [{"indicator": resource_indicator(aud), "audience": aud, "scopes": scopes,
                  "access_token_ttl": access_token_ttl} for aud in audiences]
    # The SPA's default audience comes first, so a login without a resource parameter still gets a usable token.
    spa_audiences = [c.audience for c in clients.values() if c.kind in ("spa", "web") and c.audience]
    resources.sort(key=lambda r: 0 if r["audience"] in spa_audiences[:1] else 1)
    credentials: dict[str, ClientCredentials] = {}
    documents = []
    for client_id, spec in clients.items():
        secret = secrets.token_urlsafe(32) if spec.kind in ("service", "web") else None
        credentials[client_id] = ClientCredentials(client_id, secret, spec.kind, spec.audience, tuple(spec.scopes),
                                                   tuple(spec.callback_uris))
        doc: dict[str, Any] = {"client_id": client_id, "kind": spec.kind, "scopes": list(spec.scopes)}
        if spec.kind in ("spa", "web"):
            doc["redirect_uris"] = list(spec.callback_uris)
            doc["post_logout_redirect_uris"] = list(spec.logout_uris)
        if secret is not None:
            doc["client_secret"] = secret
        documents.append(doc)
    document = {
        "clients": documents,
        "resources": resources,
        "users": {u.username: {"password": u.password, "id_token_claims": u.id_token_claims, "token_claims": u.token_claims} for u in users},
        "access_token_ttl": access_token_ttl,
    }
    return IdpSetup(document, credentials, {u.username: u for u in users}, audiences)
