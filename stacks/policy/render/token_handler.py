"""The token handler renderer: a policy's `web` client -> the authgate.token-handler/v1 JSON the token handler reads
(AUTHGATE_TOKEN_HANDLER_CONFIG). Secrets (the client secret, the cookie keys) are never in it: the platform injects them."""
from __future__ import annotations

import json
from typing import Any

from lambdas.token_handler.config import FORMAT
from stacks.policy.model import AuthPolicy


def render_token_handler(policy: AuthPolicy, client_name: str, *, client_id: str | None = None) -> dict[str, Any]:
    """The token handler config for web client `client_name`. `client_id` is the issuer's id for it when that is
    not the client's name (Cognito generates app client ids; the CDK construct passes the real one)."""
    client = policy.clients.get(client_name)
    if client is None:
        raise KeyError(f"no client named {client_name!r}; the policy defines: {', '.join(policy.clients) or 'none'}")
    if client.kind != "web":
        raise ValueError(f"client {client_name!r} is kind {client.kind}; the token handler serves kind web clients "
                         "(a confidential client with origin and auth_path)")
    issuer = policy.issuer(client.issuer)
    return {
        "format": FORMAT,
        "issuer": issuer.issuer,
        "issuer_name": client.issuer,
        "profile": issuer.profile,
        "algorithms": list(issuer.algorithms),
        "client_id": client_id or client_name,
        "origin": client.origin.rstrip("/"),
        "prefix": client.auth_path,
        "scopes": list(client.scopes),
        "session_seconds": client.session_seconds,
        "post_logout_redirect_uri": client.logout_uris[0] if client.logout_uris else None,
        "allow_insecure_http": issuer.local_development,
    }


def token_handler_json(policy: AuthPolicy, client_name: str, *, client_id: str | None = None) -> str:
    return json.dumps(render_token_handler(policy, client_name, client_id=client_id), indent=2) + "\n"
