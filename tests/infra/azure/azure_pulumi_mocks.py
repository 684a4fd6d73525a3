"""Pulumi mocks for the Azure component tests: record every resource and fill in what Azure and Entra compute."""
from __future__ import annotations

import uuid
from typing import Any

import pulumi

from tests.support.pulumi_mocks import RecordingMocks

TENANT_ID = "8c1a5f3e-2b4d-4e6f-9a0b-1c2d3e4f5a6b"
AKS_ISSUER = f"https://westeurope.oic.prod-aks.azure.com/{TENANT_ID}/0a1b2c3d-0000-4000-8000-000000000001/"


def _guid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


class RecordingAzureMocks(RecordingMocks):
    """Answers like azure-native and azuread would for the properties the components read back."""

    def provider_outputs(self, args, state: dict[str, Any]) -> str | None:
        typ = args.typ
        if typ == "azuread:index/application:Application":
            state["clientId"] = _guid(f"client/{args.name}")
            state["objectId"] = _guid(f"object/{args.name}")
            return f"/applications/{state['objectId']}"
        if typ == "azuread:index/servicePrincipal:ServicePrincipal":
            state["objectId"] = _guid(f"sp/{args.name}")
        elif typ == "azuread:index/applicationPassword:ApplicationPassword":
            state["value"] = "generated-secret-value"
        elif typ == "azure-native:apimanagement:ApiManagementService":
            state["name"] = args.inputs["serviceName"]
            state["gatewayUrl"] = f"https://{args.inputs['serviceName']}.azure-api.net"
        elif typ == "azure-native:apimanagement:Api":
            state["name"] = args.inputs["apiId"]
        elif typ == "azure-native:apimanagement:ApiOperation":
            state["name"] = args.inputs["operationId"]
        elif typ == "azure-native:containerservice:ManagedCluster":
            # The raw property names azure-native uses: oidcIssuerProfile.issuerURL.
            state["oidcIssuerProfile"] = {"enabled": args.inputs["oidcIssuerProfile"]["enabled"],
                                          "issuerURL": AKS_ISSUER}
            state["name"] = args.inputs["resourceName"]
        elif typ == "azure-native:managedidentity:UserAssignedIdentity":
            state["name"] = args.inputs["resourceName"]
            state["clientId"] = _guid(f"mi/{args.name}")
            state["principalId"] = _guid(f"mi-principal/{args.name}")
        elif typ == "azure-native:web:WebApp" and (args.inputs.get("identity") or {}).get("type") == "SystemAssigned":
            state["identity"] = {**args.inputs["identity"], "principalId": _guid(f"app-principal/{args.name}")}
            state["defaultHostName"] = f"{args.inputs.get('name')}.azurewebsites.net"
        return None

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":
            import base64
            kubeconfig = f"apiVersion: v1\nkind: Config\nclusters: [{{name: {args.args['resourceName']}}}]\n"
            return {"kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(kubeconfig.encode()).decode()}]}
        if args.token == "azuread:index/getClientConfig:getClientConfig":
            return {"tenantId": TENANT_ID, "clientId": _guid("deployer"), "objectId": _guid("deployer-object")}
        return {}


def install() -> RecordingAzureMocks:
    return RecordingAzureMocks().install("azure-test")
