"""The Pulumi program run as the gcp-dev stack (config from Pulumi.gcp-dev.yaml) on mocks, and its config errors."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pulumi
import pytest

from tests.infra.gcp import gcp_pulumi_mocks

from stacks.pulumi_program.program import build_stack
from stacks.pulumi_program.settings import StackConfigError
from tests.support.pulumi_mocks import stack_config, stack_config_values

ROOT = Path(__file__).resolve().parents[3]
BOUND_ROUTES_POLICY = ROOT / "tests" / "infra" / "bound_routes_policy.yaml"


def test_gcp_dev_stack_builds_every_component_from_the_policy():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.gcp-dev.yaml"), root=ROOT)

    build()
    config = mocks.one("gcp:apigateway/apiConfig:ApiConfig")
    document = json.loads(base64.b64decode(config["openapiDocuments"][0]["document"]["contents"]))
    definitions = document["securityDefinitions"]
    assert definitions["workforce"]["x-google-issuer"] == "https://example.okta.com/oauth2/aus1billing2exmpl3"
    assert definitions["workforce"]["x-google-audiences"] == "api://billing"
    assert definitions["partners"]["x-google-audiences"] == "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a"
    assert document["x-google-backend"]["address"] == "https://billing-backend-abc123-ew.a.run.app"
    assert document["paths"]["/invoices"]["get"]["security"] == [{"workforce": []}]

    services = {r.inputs["service"] for r in mocks.of_type("gcp:projects/service:Service")}
    assert {"apigateway.googleapis.com", "identitytoolkit.googleapis.com", "iap.googleapis.com",
            "sts.googleapis.com"} <= services
    assert mocks.one("gcp:identityplatform/config:Config")["authorizedDomains"] == ["billing.example.com",
                                                                                    "localhost"]
    assert mocks.one("gcp:iap/webBackendServiceIamBinding:WebBackendServiceIamBinding")["members"] == [
        "group:billing-staff@example.com"]
    provider = mocks.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider["attributeCondition"] == 'assertion.repository == "acme/billing-api" && ' \
                                             'assertion.ref == "refs/heads/main"'
    invokers = [r.inputs["members"] for r in mocks.of_type("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding")]
    assert [f"serviceAccount:gw-billing@{gcp_pulumi_mocks.PROJECT}.iam.gserviceaccount.com"] in invokers
    assert all("allUsers" not in members for members in invokers)


def test_minimal_gcp_stack_has_only_the_gateway():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.gcp-dev.yaml", authgate__identityPlatform=None, authgate__iap=None,
                                 authgate__github=None), root=ROOT)

    build()
    assert mocks.of_type("gcp:apigateway/gateway:Gateway")
    assert not mocks.of_type("gcp:identityplatform/config:Config")
    assert not mocks.of_type("gcp:compute/backendService:BackendService")
    assert not mocks.of_type("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")


@pytest.mark.parametrize("overrides, key, fragment", [
    ({"authgate__cloud": None}, "authgate:cloud", "pulumi config set authgate:cloud gcp"),
    ({"authgate__cloud": "aws"}, "authgate:cloud", "one of gcp, azure"),
    ({"authgate__policy": "policies/missing.yaml"}, "authgate:policy", "no policy file"),
    ({"authgate__api": "shipping"}, "authgate:api", "no API 'shipping'"),
    # orders trusts Cognito access tokens, which carry no aud: GCP's gateway would refuse them all.
    ({"authgate__api": "orders"}, "authgate:api", "cannot be served by GCP API Gateway"),
    # Routes that re-check tokens or need bound tokens: the gateway would enforce them as plain JWT routes.
    ({"authgate__policy": str(BOUND_ROUTES_POLICY), "authgate__api": "orders"}, "authgate:api",
     "route 'GET /reports': freshness: denylist cannot be enforced by GCP API Gateway"),
    ({"authgate__policy": str(BOUND_ROUTES_POLICY), "authgate__api": "orders"}, "authgate:api",
     "route 'POST /orders': proof: dpop cannot be enforced by GCP API Gateway"),
    ({"authgate__policy": str(BOUND_ROUTES_POLICY), "authgate__api": "orders"}, "authgate:api",
     "route 'PUT /orders': proof: mtls cannot be enforced by GCP API Gateway"),
    ({"authgate__region": None}, "authgate:region", "pulumi config set authgate:region europe-west1"),
    ({"authgate__backendImage": None}, "authgate:backendImage", "is required"),
    ({"gcp__project": None}, "gcp:project", "pulumi config set gcp:project"),
    ({"authgate__github": {"repository": "acme/*"}}, "authgate:github", "owner/name"),
    ({"authgate__github": {"repo": "acme/x"}}, "authgate:github.repo", "not a setting here"),
    ({"authgate__iap": {"image": "i", "domains": "portal.example.com", "members": ["user:a@example.com"]}},
     "authgate:iap.domains", "list of strings"),
    ({"authgate__iap": {"image": "i", "domains": ["portal.example.com"], "members": ["allUsers"]}},
     "authgate:iap", "public"),
    ({"authgate__identityPlatform": "not-json"}, "authgate:identityPlatform", "structured value"),
])
def test_bad_stack_config_names_the_key_and_the_fix(overrides, key, fragment):
    mocks = gcp_pulumi_mocks.install()
    with pytest.raises(StackConfigError) as raised:
        @pulumi.runtime.test
        def build():
            build_stack(stack_config("Pulumi.gcp-dev.yaml", **overrides), root=ROOT)
        build()
    assert raised.value.key == key
    assert fragment in str(raised.value)
    assert mocks.resources == []


def test_entry_point_reads_real_pulumi_config(monkeypatch):
    """__main__.py as `pulumi up` runs it: config through pulumi.Config, paths relative to Pulumi.yaml."""
    import runpy

    from pulumi.runtime.config import set_all_config

    mocks = gcp_pulumi_mocks.install()
    monkeypatch.chdir(ROOT / "stacks" / "pulumi_program")  # Pulumi runs the program from its main directory
    set_all_config(stack_config_values("Pulumi.gcp-dev.yaml"))
    try:
        @pulumi.runtime.test
        def build():
            runpy.run_path(str(ROOT / "stacks" / "pulumi_program" / "__main__.py"), run_name="__main__")

        build()
    finally:
        set_all_config({})
    assert mocks.one("gcp:apigateway/gateway:Gateway")["gatewayId"] == "billing-gateway"
    assert mocks.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")["attributeCondition"]
