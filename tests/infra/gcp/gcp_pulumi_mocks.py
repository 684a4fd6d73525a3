"""Pulumi mocks for the GCP component tests: record every resource and fill in the outputs Google would compute."""
from __future__ import annotations

from typing import Any

from tests.support.pulumi_mocks import RecordingMocks

PROJECT = "acme-orders-dev"
PROJECT_NUMBER = "123456789012"


class RecordingGcpMocks(RecordingMocks):
    """Answers like the GCP provider would for the properties the components read back."""

    def provider_outputs(self, args, state: dict[str, Any]) -> None:
        typ = args.typ
        if typ == "gcp:serviceaccount/account:Account":
            state["email"] = f"{args.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
            state["name"] = f"projects/{PROJECT}/serviceAccounts/{state['email']}"
        elif typ == "gcp:cloudrunv2/service:Service":
            state["uri"] = f"https://{args.inputs['name']}-abc123-ew.a.run.app"
        elif typ == "gcp:apigateway/apiConfig:ApiConfig":
            state["apiConfigId"] = f"{args.inputs['apiConfigIdPrefix']}20250101"
        elif typ == "gcp:apigateway/gateway:Gateway":
            state["defaultHostname"] = f"{args.inputs['gatewayId']}-x1y2z3.ew.gateway.dev"
        elif typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            service = args.inputs["service"].split(".")[0]
            state["email"] = f"service-{PROJECT_NUMBER}@gcp-sa-{service}.iam.gserviceaccount.com"
            state["member"] = f"serviceAccount:{state['email']}"
        elif typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            state["name"] = (f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
                             f"{args.inputs['workloadIdentityPoolId']}")
        elif typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            state["name"] = (f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
                             f"{args.inputs['workloadIdentityPoolId']}/providers/"
                             f"{args.inputs['workloadIdentityPoolProviderId']}")
        elif typ == "gcp:compute/globalAddress:GlobalAddress":
            state["address"] = "203.0.113.10"
        if typ.startswith("gcp:compute/"):
            state.setdefault("selfLink", f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/{args.name}")
        return None


def install() -> RecordingGcpMocks:
    return RecordingGcpMocks().install("gcp-test")
