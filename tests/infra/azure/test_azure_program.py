"""The Pulumi program run as the azure-dev stack (config from Pulumi.azure-dev.yaml) against mocks, and its errors."""
from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from tests.infra.azure import azure_pulumi_mocks

from stacks.azure.program import entra_permissions, public_paths
from stacks.policy import load_policy
from stacks.policy.render.apim import render_apim, render_apim_operations
from stacks.pulumi_program.program import build_stack
from stacks.pulumi_program.settings import StackConfigError
from tests.support.pulumi_mocks import stack_config

ROOT = Path(__file__).resolve().parents[3]
BOUND_ROUTES_POLICY = ROOT / "tests" / "infra" / "bound_routes_policy.yaml"


def test_azure_dev_stack_builds_every_component_from_the_policy():
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.azure-dev.yaml"), root=ROOT)

    build()
    policy = load_policy(ROOT / "policies" / "example.yaml")
    api_policy = mocks.one("azure-native:apimanagement:ApiPolicy")
    assert api_policy["format"] == "rawxml"
    assert api_policy["value"] == render_apim(policy, "billing")
    assert "<validate-jwt" in api_policy["value"]
    operation_policies = mocks.of_type("azure-native:apimanagement:ApiOperationPolicy")
    rendered_operations = render_apim_operations(policy, "billing")
    # ANY fans out to seven APIM operations, each carrying that route's operation policy.
    expected = sum(7 if key.startswith("ANY ") else 1 for key in rendered_operations)
    assert len(operation_policies) == expected
    by_operation = {r.inputs["operationId"]: r.inputs["value"] for r in operation_policies}
    assert by_operation["get-health"] == rendered_operations["GET /health"]
    operations = {r.inputs["operationId"] for r in mocks.of_type("azure-native:apimanagement:ApiOperation")}
    assert {"get-health", "get-invoices", "get-invoices-id", "post-invoices-id-refunds", "get-exports-path"} <= \
        operations

    api_app = next(r.inputs for r in mocks.of_type("azuread:index/application:Application")
                   if r.inputs["displayName"] == "Billing API")
    assert {role["value"] for role in api_app["appRoles"]} == {"Billing.Refund", "Billing.Approve",
                                                               "Billing.Export"}
    assert [s["value"] for s in api_app["api"]["oauth2PermissionScopes"]] == ["billing.read"]
    assert mocks.one("azuread:index/appRoleAssignment:AppRoleAssignment")["appRoleId"]

    easy_auth = mocks.one("azure-native:web:WebAppAuthSettingsV2")
    assert easy_auth["globalValidation"]["unauthenticatedClientAction"] == "Return401"
    assert easy_auth["globalValidation"]["excludedPaths"] == ["/health"]
    assert easy_auth["identityProviders"]["azureActiveDirectory"]["registration"]["openIdIssuer"] == \
        f"https://login.microsoftonline.com/{azure_pulumi_mocks.TENANT_ID}/v2.0"

    cluster = mocks.one("azure-native:containerservice:ManagedCluster")
    assert cluster["oidcIssuerProfile"]["enabled"] is True
    assert cluster["securityProfile"]["workloadIdentity"]["enabled"] is True
    assert mocks.one("azure-native:managedidentity:FederatedIdentityCredential")["subject"] == \
        "system:serviceaccount:billing:billing-api"


def test_entra_permissions_come_from_entra_issuer_routes_only():
    policy = load_policy(ROOT / "policies" / "example.yaml")
    scopes, roles = entra_permissions(policy, "billing")
    assert scopes == [] and roles == ["Billing.Refund", "Billing.Approve", "Billing.Export"]
    assert entra_permissions(policy, "orders") == ([], [])
    assert public_paths(policy, "billing") == ["/health"]


@pytest.mark.parametrize("overrides, key, fragment", [
    # Routes that re-check tokens or need bound tokens: the gateway would enforce them as plain JWT routes.
    ({"authgate__policy": str(BOUND_ROUTES_POLICY), "authgate__api": "orders"}, "authgate:api",
     "route 'GET /reports': freshness: denylist cannot be enforced by Azure API Management"),
    ({"authgate__policy": str(BOUND_ROUTES_POLICY), "authgate__api": "orders"}, "authgate:api",
     "route 'POST /orders': proof: dpop cannot be enforced by Azure API Management"),
    ({"authgate__policy": str(BOUND_ROUTES_POLICY), "authgate__api": "orders"}, "authgate:api",
     "route 'PUT /orders': proof: mtls cannot be enforced by Azure API Management"),
    ({"authgate__location": None}, "authgate:location", "pulumi config set authgate:location westeurope"),
    ({"authgate__apim": None}, "authgate:apim", "is required"),
    ({"authgate__apim": {"serviceName": "acme"}}, "authgate:apim.publisherEmail", "is required"),
    ({"authgate__entra": None}, "authgate:appService", "configure authgate:entra"),
    ({"authgate__entra": {"authority": "b2c"}}, "authgate:entra", "B2C"),
    ({"authgate__aks": {"clusterName": "c", "workloads": [{"namespace": "*", "serviceAccount": "a",
                                                           "identityName": "abc"}]}},
     "authgate:aks.workloads[0]", "namespace"),
    ({"authgate__aks": {"clusterName": "c"}}, "authgate:aks.workloads", "must list"),
    ({"authgate__entra": {"spaRedirectUris": ["https://a.example.com/cb"], "spaScopes": ["billing.admin"]}},
     "authgate:entra.spaScopes", "not defined"),
    ({"authgate__entra": {"spaRedirectUris": ["https://*.example.com/cb"], "extraScopes": ["billing.read"]}},
     "authgate:entra.spaRedirectUris", "without wildcards"),
])
def test_bad_azure_config_names_the_key_and_creates_nothing(overrides, key, fragment):
    mocks = azure_pulumi_mocks.install()
    with pytest.raises(StackConfigError) as raised:
        @pulumi.runtime.test
        def build():
            build_stack(stack_config("Pulumi.azure-dev.yaml", **overrides), root=ROOT)
        build()
    assert raised.value.key == key
    assert fragment in str(raised.value)
    assert mocks.resources == []
