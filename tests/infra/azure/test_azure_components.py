"""Mock-based tests of the Azure components: Entra registrations, APIM, EasyAuth and AKS workload identity."""
from __future__ import annotations

import pulumi
import pytest

from tests.infra.azure import azure_pulumi_mocks
from tests.infra.azure.azure_pulumi_mocks import AKS_ISSUER, TENANT_ID

from stacks.azure import (AksWorkloadIdentity, AksWorkloadIdentityArgs, ApimGateway, ApimGatewayArgs,
                          AppServiceEasyAuth, AppServiceEasyAuthArgs, EntraApi, EntraApiArgs, EntraDaemonClient,
                          EntraDaemonClientArgs, EntraSpaClient, EntraSpaClientArgs, WorkloadIdentityBinding,
                          operations_for_routes)
from stacks.azure.entra import permission_id, v2_issuer

POLICY_XML = ('<policies><inbound><base /><validate-jwt header-name="Authorization" failed-validation-httpcode="401">'
              '<openid-config url="https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration" />'
              '<audiences><audience>api://billing</audience></audiences></validate-jwt></inbound>'
              '<backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>')


def _entra_api(**overrides) -> EntraApi:
    args = dict(api_name="billing", display_name="Billing API", scopes=["billing.read", "billing.write"],
                app_roles=["Billing.Refund", "Billing.Export"])
    args.update(overrides)
    return EntraApi("billing", EntraApiArgs(**args))


def test_entra_api_spa_and_daemon_registrations():
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        api = _entra_api()
        spa = EntraSpaClient("web", EntraSpaClientArgs(
            display_name="Billing web", api=api, scopes=["billing.read"],
            redirect_uris=["https://billing.example.com/auth/callback", "http://localhost:5173/auth/callback"]))
        daemon = EntraDaemonClient("sync", EntraDaemonClientArgs(
            display_name="Billing sync", api=api, app_roles=["Billing.Export"]))

        def check(values):
            issuer, client_id, identifier_uri, spa_id, daemon_id = values
            assert issuer == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
            assert identifier_uri == f"api://{client_id}"
            assert len({client_id, spa_id, daemon_id}) == 3

        return pulumi.Output.all(api.issuer, api.client_id, api.identifier_uri, spa.client_id,
                                 daemon.client_id).apply(check)

    build()
    apps = {r.inputs["displayName"]: r.inputs for r in mocks.of_type("azuread:index/application:Application")}
    api_app = apps["Billing API"]
    assert api_app["api"]["requestedAccessTokenVersion"] == 2
    scopes = {s["value"]: s for s in api_app["api"]["oauth2PermissionScopes"]}
    assert set(scopes) == {"billing.read", "billing.write"}
    assert scopes["billing.read"]["id"] == permission_id("billing", "scope", "billing.read")
    roles = {r["value"]: r for r in api_app["appRoles"]}
    assert set(roles) == {"Billing.Refund", "Billing.Export"}
    assert roles["Billing.Export"]["allowedMemberTypes"] == ["User", "Application"]

    spa_app = apps["Billing web"]
    assert spa_app["singlePageApplication"]["redirectUris"] == [
        "https://billing.example.com/auth/callback", "http://localhost:5173/auth/callback"]
    access = spa_app["requiredResourceAccesses"][0]
    assert access["resourceAccesses"] == [{"id": permission_id("billing", "scope", "billing.read"), "type": "Scope"}]
    assert "web" not in spa_app and "password" not in spa_app  # PKCE public client: no secret, no web redirect

    uri = mocks.one("azuread:index/applicationIdentifierUri:ApplicationIdentifierUri")
    assert uri["identifierUri"].startswith("api://")
    assignment = mocks.one("azuread:index/appRoleAssignment:AppRoleAssignment")
    assert assignment["appRoleId"] == permission_id("billing", "role", "Billing.Export")
    sps = {r.name: r for r in mocks.of_type("azuread:index/servicePrincipal:ServicePrincipal")}
    assert assignment["principalObjectId"] == azure_pulumi_mocks._guid("sp/sync-sp")
    assert assignment["resourceObjectId"] == azure_pulumi_mocks._guid("sp/billing-sp")
    assert sps["billing-sp"].inputs["appRoleAssignmentRequired"] is True
    assert not mocks.of_type("azuread:index/applicationPassword:ApplicationPassword")


def test_external_id_issuer_and_permission_ids_are_stable():
    assert v2_issuer("t1", "external_id") == "https://t1.ciamlogin.com/t1/v2.0"
    assert permission_id("billing", "role", "Billing.Export") == permission_id("billing", "role", "Billing.Export")
    assert permission_id("billing", "role", "x") != permission_id("billing", "scope", "x")


@pytest.mark.parametrize("overrides, message", [
    ({"scopes": ["billing read"]}, "Entra permission value"),
    ({"scopes": [".hidden"]}, "Entra permission value"),
    ({"scopes": [], "app_roles": []}, "at least one scope"),
    ({"authority": "b2c"}, "B2C"),
    ({"identifier_uri": "api://*"}, "identifier_uri"),
    ({"sign_in_audience": "AzureADandPersonalMicrosoftAccount"}, "sign_in_audience"),
])
def test_entra_api_args_reject_bad_values(overrides, message):
    args = dict(api_name="billing", display_name="Billing API", scopes=["billing.read"], app_roles=[])
    args.update(overrides)
    with pytest.raises(ValueError, match=message):
        EntraApiArgs(**args)


def test_client_args_refuse_unknown_permissions_and_loose_redirects():
    azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        api = _entra_api()
        with pytest.raises(ValueError, match="not defined by the API"):
            EntraSpaClientArgs(display_name="w", api=api, scopes=["billing.admin"],
                               redirect_uris=["https://a.example.com/cb"])
        with pytest.raises(ValueError, match="exact https"):
            EntraSpaClientArgs(display_name="w", api=api, scopes=[], redirect_uris=["https://*.example.com/cb"])
        with pytest.raises(ValueError, match="exact https"):
            EntraSpaClientArgs(display_name="w", api=api, scopes=[], redirect_uris=["http://app.example.com/cb"])
        with pytest.raises(ValueError, match="not defined by the API"):
            EntraDaemonClientArgs(display_name="d", api=api, app_roles=["Billing.Admin"])

    build()


def test_apim_service_api_operations_and_raw_xml_policy():
    mocks = azure_pulumi_mocks.install()
    routes = ["GET /health", "GET /invoices/{id}", "POST /invoices/{id}/refunds", "ANY /exports/{path+}"]

    @pulumi.runtime.test
    def build():
        gateway = ApimGateway("billing", ApimGatewayArgs(
            resource_group_name="rg-authgate", location="westeurope", service_name="acme-apis",
            publisher_email="platform@example.com", publisher_name="Acme", api_name="billing",
            api_path="billing", backend_url="https://billing.internal.example.com", route_keys=routes,
            api_policy_xml=POLICY_XML))
        return gateway.gateway_url.apply(
            lambda url: url == "https://acme-apis.azure-api.net/billing" or pytest.fail(url))

    build()
    service = mocks.one("azure-native:apimanagement:ApiManagementService")
    assert service["sku"] == {"name": "Consumption", "capacity": 0}
    api = mocks.one("azure-native:apimanagement:Api")
    assert api["path"] == "billing" and api["protocols"] == ["https"]
    assert api["subscriptionRequired"] is False
    assert api["serviceUrl"] == "https://billing.internal.example.com"
    ops = {r.inputs["operationId"]: r.inputs for r in mocks.of_type("azure-native:apimanagement:ApiOperation")}
    assert ops["get-invoices-id"]["urlTemplate"] == "/invoices/{id}"
    assert ops["get-invoices-id"]["templateParameters"] == [{"name": "id", "type": "string", "required": True}]
    assert ops["post-invoices-id-refunds"]["method"] == "POST"
    exports = [o for o in ops.values() if o["urlTemplate"] == "/exports/*"]
    assert sorted(o["method"] for o in exports) == sorted(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                                           "OPTIONS"])
    policy = mocks.one("azure-native:apimanagement:ApiPolicy")
    assert policy["format"] == "rawxml"
    assert policy["value"] == POLICY_XML
    assert policy["apiId"] == "billing"


def test_apim_operation_translation_and_argument_checks():
    ops = operations_for_routes(["GET /a/{x}/b/{y}"])
    assert ops[0].url_template == "/a/{x}/b/{y}" and ops[0].parameters == ("x", "y")
    with pytest.raises(ValueError, match="route key"):
        operations_for_routes(["FETCH /a"])
    common = dict(resource_group_name="rg", location="westeurope", publisher_email="p@example.com",
                  publisher_name="P", api_name="billing", api_path="billing",
                  backend_url="https://b.example.com", route_keys=["GET /a"], api_policy_xml=POLICY_XML)
    with pytest.raises(ValueError, match="service_name"):
        ApimGatewayArgs(service_name="-bad", **common)
    with pytest.raises(ValueError, match="<policies>"):
        ApimGatewayArgs(service_name="acme", **{**common, "api_policy_xml": "<inbound/>"})
    with pytest.raises(ValueError, match="https"):
        ApimGatewayArgs(service_name="acme", **{**common, "backend_url": "http://b.example.com"})
    with pytest.raises(ValueError, match="not in route_keys"):
        ApimGatewayArgs(service_name="acme", **{**common, "operation_policy_xml": {"GET /b": POLICY_XML}})


def test_easy_auth_returns_401_to_unauthenticated_callers():
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        AppServiceEasyAuth("billing", AppServiceEasyAuthArgs(
            resource_group_name="rg", web_app_name="billing-app", client_id="0d9e8f7a",
            open_id_issuer=f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
            allowed_audiences=["0d9e8f7a", "api://billing"], excluded_paths=["/health"]))

    build()
    settings = mocks.one("azure-native:web:WebAppAuthSettingsV2")
    assert settings["name"] == "billing-app"
    assert settings["globalValidation"]["unauthenticatedClientAction"] == "Return401"
    assert settings["globalValidation"]["requireAuthentication"] is True
    assert settings["globalValidation"]["excludedPaths"] == ["/health"]
    assert settings["platform"]["enabled"] is True
    aad = settings["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"]["openIdIssuer"] == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
    assert aad["validation"]["allowedAudiences"] == ["0d9e8f7a", "api://billing"]
    assert settings["httpSettings"]["requireHttps"] is True
    with pytest.raises(ValueError, match="excluded_paths"):
        AppServiceEasyAuthArgs(resource_group_name="rg", web_app_name="a", client_id="c",
                               open_id_issuer="https://i", allowed_audiences=["c"], excluded_paths=["/public/*"])


def test_aks_enables_oidc_issuer_and_workload_identity_with_exact_subjects():
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        aks = AksWorkloadIdentity("apps", AksWorkloadIdentityArgs(
            resource_group_name="rg", location="westeurope", cluster_name="authgate-aks",
            workloads=[WorkloadIdentityBinding(namespace="orders", service_account="orders-api",
                                               identity_name="orders-api-id")]))
        return aks.oidc_issuer_url.apply(lambda url: url == AKS_ISSUER or pytest.fail(url))

    build()
    cluster = mocks.one("azure-native:containerservice:ManagedCluster")
    assert cluster["oidcIssuerProfile"] == {"enabled": True}
    assert cluster["securityProfile"]["workloadIdentity"] == {"enabled": True}
    assert cluster["resourceName"] == "authgate-aks"
    credential = mocks.one("azure-native:managedidentity:FederatedIdentityCredential")
    assert credential["subject"] == "system:serviceaccount:orders:orders-api"
    assert credential["issuer"] == AKS_ISSUER
    assert credential["audiences"] == ["api://AzureADTokenExchange"]
    assert credential["resourceName"] == "orders-api-id"


@pytest.mark.parametrize("kwargs, message", [
    ({"namespace": "*", "service_account": "a", "identity_name": "abc"}, "namespace"),
    ({"namespace": "orders", "service_account": "*", "identity_name": "abc"}, "service_account"),
    ({"namespace": "Orders", "service_account": "a", "identity_name": "abc"}, "namespace"),
])
def test_workload_binding_refuses_wildcards(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WorkloadIdentityBinding(**kwargs)
