"""The sandbox's deploy-shaped policy, the placeholder issuer substitution and the synth cache key."""
from __future__ import annotations

import pytest
import yaml

from sandbox.synth_cache import (PLACEHOLDER_ISSUER, SynthError, cache_key, deploy_shaped_policy, localize,
                                 localize_route_table)
from stacks.policy import load_policy_text
from stacks.policy.render import render_route_table

LOCAL = """
issuers:
  local: {issuer: "${LOCAL_ISSUER_URL}", local_development: true, audiences: [orders-api],
          jwks_uri: "${LOCAL_ISSUER_URL}/jwks"}
apis:
  orders:
    routes:
      "GET /orders": {issuers: [local], scopes: [orders:read]}
"""


def test_deploy_shape_uses_the_placeholder_and_drops_local_development(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text(LOCAL)
    shaped = deploy_shaped_policy(path, variable="LOCAL_ISSUER_URL")
    issuer = yaml.safe_load(shaped)["issuers"]["local"]
    assert issuer == {"issuer": PLACEHOLDER_ISSUER, "audiences": ["orders-api"], "jwks_uri": PLACEHOLDER_ISSUER + "/jwks"}
    # The deploy shape gets what a real https issuer gets: the native JWT authorizer for a scope-only route.
    table = render_route_table(load_policy_text(shaped))
    assert table["apis"]["orders"]["routes"][0]["enforcement"] == "native"


def test_a_fixed_loopback_issuer_cannot_be_stood_in_for(tmp_path):
    path = tmp_path / "fixed.yaml"
    path.write_text(LOCAL.replace("${LOCAL_ISSUER_URL}", "http://127.0.0.1:8080"))
    with pytest.raises(SynthError, match="issuer: \\$\\{LOCAL_ISSUER_URL\\}"):
        deploy_shaped_policy(path, variable="LOCAL_ISSUER_URL")


def test_localize_replaces_the_placeholder_everywhere_and_allows_loopback_keys_only_for_it():
    table = {"issuers": {"local": {"issuer": PLACEHOLDER_ISSUER, "jwks_uri": PLACEHOLDER_ISSUER + "/jwks",
                                   "allow_insecure_http": False},
                         "other": {"issuer": "https://idp.example.com", "allow_insecure_http": False}}}
    local = localize_route_table(table, "http://127.0.0.1:4000/")
    assert local["issuers"]["local"] == {"issuer": "http://127.0.0.1:4000", "jwks_uri": "http://127.0.0.1:4000/jwks",
                                         "allow_insecure_http": True}
    assert local["issuers"]["other"]["allow_insecure_http"] is False
    assert localize(f'<openid-config url="{PLACEHOLDER_ISSUER}/.well-known/openid-configuration" />',
                    "http://127.0.0.1:4000") == '<openid-config url="http://127.0.0.1:4000/.well-known/openid-configuration" />'


def test_cache_key_follows_the_inputs():
    assert cache_key(LOCAL, "orders") == cache_key(LOCAL, "orders")
    assert cache_key(LOCAL, "orders") != cache_key(LOCAL + "\n# changed", "orders")
    assert cache_key(LOCAL, "orders") != cache_key(LOCAL, "billing")
