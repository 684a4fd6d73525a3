"""The token handler on GCP (Cloud Run) and Azure (App Service), tested with Pulumi mocks: the configuration comes
from the policy's web client, secrets are references the platform resolves (Secret Manager, Key Vault) and only the
service's own identity may read them."""
from __future__ import annotations

import json

import pulumi
import pytest

from stacks.policy import load_policy_text
from stacks.policy.render.token_handler import render_token_handler
from tests.infra.azure import azure_pulumi_mocks
from tests.infra.gcp import gcp_pulumi_mocks
from tests.infra.gcp.gcp_pulumi_mocks import PROJECT

POLICY = """
issuers:
  corp: {issuer: https://idp.example.com, audiences: [orders-api]}
apis:
  orders:
    routes:
      "GET /api/orders": {issuers: [corp], scopes: [orders:read], token_source: cookie}
clients:
  shop-web:
    kind: web
    issuer: corp
    audience: orders-api
    origin: https://shop.example.com
    scopes: [openid, offline_access, orders:read]
"""
VAULT = "/subscriptions/0000/resourceGroups/shop/providers/Microsoft.KeyVault/vaults/shop-kv"


def _config() -> dict:
    return render_token_handler(load_policy_text(POLICY), "shop-web")


def test_cloud_run_token_handler_reads_its_secrets_from_secret_manager():
    from stacks.gcp import TokenHandlerService, TokenHandlerServiceArgs
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        service = TokenHandlerService("shop-auth", TokenHandlerServiceArgs(
            service_name="shop-auth", location="europe-west1", image="europe-docker.pkg.dev/acme/authgate:1",
            config=_config(), client_secret_id="shop-web-client-secret", cookie_keys_id="shop-web-cookie-keys"))
        return service.uri.apply(lambda uri: uri.startswith("https://shop-auth"))

    build()
    service = mocks.one("gcp:cloudrunv2/service:Service")
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" and service["invokerIamDisabled"] is False
    [container] = service["template"]["containers"]
    assert container["args"] == ["serve", "token-handler", "--listen", "0.0.0.0:8080"]
    env = {e["name"]: e for e in container["envs"]}
    assert json.loads(env["AUTHGATE_TOKEN_HANDLER_CONFIG"]["value"])["origin"] == "https://shop.example.com"
    for name, secret in (("AUTHGATE_CLIENT_SECRET", "shop-web-client-secret"),
                         ("AUTHGATE_COOKIE_KEYS", "shop-web-cookie-keys")):
        assert "value" not in env[name]
        assert env[name]["valueSource"]["secretKeyRef"] == {"secret": secret, "version": "latest"}
    assert service["template"]["serviceAccount"] == f"th-shop-auth@{PROJECT}.iam.gserviceaccount.com"
    grants = mocks.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert sorted(g.inputs["secretId"] for g in grants) == ["shop-web-client-secret", "shop-web-cookie-keys"]
    assert {g.inputs["role"] for g in grants} == {"roles/secretmanager.secretAccessor"}
    assert {g.inputs["member"] for g in grants} == {f"serviceAccount:th-shop-auth@{PROJECT}.iam.gserviceaccount.com"}


def test_app_service_token_handler_uses_key_vault_references_and_its_identity():
    from stacks.azure import TokenHandlerWebApp, TokenHandlerWebAppArgs
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        app = TokenHandlerWebApp("shop-auth", TokenHandlerWebAppArgs(
            name="shop-auth", resource_group_name="shop", location="westeurope",
            plan_id="/subscriptions/0000/resourceGroups/shop/providers/Microsoft.Web/serverfarms/shop-plan",
            image="acme.azurecr.io/authgate:1", config=_config(), key_vault_id=VAULT,
            client_secret_uri="https://shop-kv.vault.azure.net/secrets/shop-web-client-secret",
            cookie_keys_uri="https://shop-kv.vault.azure.net/secrets/shop-web-cookie-keys"))
        return app.web_app.id

    build()
    web = mocks.one("azure-native:web:WebApp")
    assert web["httpsOnly"] is True and web["identity"]["type"] == "SystemAssigned"
    site = web["siteConfig"]
    assert site["minTlsVersion"] == "1.2" and site["ftpsState"] == "Disabled"
    assert site["linuxFxVersion"] == "DOCKER|acme.azurecr.io/authgate:1"
    settings = {s["name"]: s["value"] for s in site["appSettings"]}
    assert settings["AUTHGATE_CLIENT_SECRET"] == \
        "@Microsoft.KeyVault(SecretUri=https://shop-kv.vault.azure.net/secrets/shop-web-client-secret)"
    assert settings["AUTHGATE_COOKIE_KEYS"].startswith("@Microsoft.KeyVault(SecretUri=")
    assert json.loads(settings["AUTHGATE_TOKEN_HANDLER_CONFIG"])["prefix"] == "/auth"
    role = mocks.one("azure-native:authorization:RoleAssignment")
    assert role["principalId"] == azure_pulumi_mocks._guid("app-principal/shop-auth-app")
    assert role["scope"] == VAULT and role["roleDefinitionId"].endswith("4633458b-17de-408a-b874-0445c86b69e6")


@pytest.mark.parametrize("change, message", [
    ({"origin": "http://shop.example.com"}, "must be https"),
    ({"format": "something/v0"}, "token handler configuration"),
])
def test_cloud_run_args_refuse_a_config_that_is_not_for_production(change, message):
    from stacks.gcp.token_handler import TokenHandlerServiceArgs
    with pytest.raises(ValueError, match=message):
        TokenHandlerServiceArgs(service_name="shop-auth", location="europe-west1", image="img",
                                config={**_config(), **change}, client_secret_id="a", cookie_keys_id="b")


def test_app_service_args_refuse_a_secret_that_is_not_in_key_vault():
    from stacks.azure.token_handler import TokenHandlerWebAppArgs
    with pytest.raises(ValueError, match="Key Vault secret URI"):
        TokenHandlerWebAppArgs(name="shop-auth", resource_group_name="shop", location="westeurope", plan_id="p",
                               image="img", config=_config(), key_vault_id=VAULT,
                               client_secret_uri="the-secret-itself", cookie_keys_uri="x")
