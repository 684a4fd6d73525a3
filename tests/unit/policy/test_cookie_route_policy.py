"""Policy rules for routes with token_source: cookie and for kind: web clients."""
from __future__ import annotations

import pytest

from stacks.policy import PolicyError, load_policy_text
from stacks.policy.render import render_route_table
from stacks.policy.render.token_handler import render_token_handler

BASE = """
issuers:
  corp: {issuer: https://idp.example.com, audiences: [orders-api]}
apis:
  orders:
    routes:
      "GET /api/orders": {issuers: [corp], scopes: [orders:read], token_source: cookie}
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
clients:
  shop:
    kind: web
    issuer: corp
    audience: orders-api
    origin: https://shop.example.com
    scopes: [openid, offline_access, orders:read]
"""


def test_a_cookie_route_is_rendered_for_the_lambda_authorizer_with_its_token_source():
    table = render_route_table(load_policy_text(BASE))
    cookie, header = table["apis"]["orders"]["routes"]
    assert cookie["token_source"] == "cookie" and cookie["enforcement"] == "lambda"
    assert "token handler's sealed session cookie" in cookie["enforcement_reason"]
    assert "token_source" not in header


def test_the_token_handler_config_comes_from_the_web_client():
    config = render_token_handler(load_policy_text(BASE), "shop")
    assert config["origin"] == "https://shop.example.com" and config["prefix"] == "/auth"
    assert config["issuer"] == "https://idp.example.com" and config["client_id"] == "shop"
    assert "client_secret" not in config and "cookie_keys" not in config


@pytest.mark.parametrize("change, message", [
    (("kind: web", "kind: spa\n    redirect_uris: [https://shop.example.com/cb]"), "needs a web client"),
    (("origin: https://shop.example.com", "origin: https://shop.example.com/app"), "scheme://host"),
    (("    origin: https://shop.example.com\n", ""), "a web client needs origin"),
    ((", token_source: cookie}", ", token_source: cookie, public: true}"), "public route takes no token"),
    (("token_source: cookie", "token_source: query"), "token_source"),
])
def test_cookie_route_and_web_client_mistakes_are_explained(change, message):
    with pytest.raises(PolicyError, match=message):
        load_policy_text(BASE.replace(*change))
