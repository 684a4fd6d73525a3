"""The GCP API Gateway renderer: golden document, OpenAPI 2.0 validity, security per operation, refusals."""
from __future__ import annotations

import copy
import json
import re

import pytest
from openapi_spec_validator.validation.validators import OpenAPIV2SpecValidator

from stacks.policy import load_policy
from stacks.policy.render import render_openapi
from tests.unit.policy.policy_testing import REPO, assert_golden, load_text

BACKEND = "https://billing-3kx7q2-ew.a.run.app"


def example():
    return load_policy(REPO / "policies/example.yaml")


def spec_errors(document: dict) -> list[str]:
    """Validation errors against the OpenAPI 2.0 schema and rules.

    GCP API Gateway spells a multi-segment path variable `{name=**}` (documented for OpenAPI 2.0); the generic
    validator reads the whole `name=**` as the parameter name, so the copy it checks uses plain `{name}`.
    """
    checked = copy.deepcopy(document)
    checked["paths"] = {re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)=\*\*\}", r"{\1}", path): item
                        for path, item in checked["paths"].items()}
    return [str(error) for error in OpenAPIV2SpecValidator(checked).iter_errors()]


def test_billing_document_matches_golden_and_is_valid_openapi_2():
    document = render_openapi(example(), "billing", backend_url=BACKEND)
    assert spec_errors(document) == []
    assert_golden("example.billing.openapi.json", json.dumps(document, indent=2) + "\n")


def test_local_document_is_valid_and_uses_the_published_key_url():
    policy = load_policy(REPO / "policies/local.yaml", variables={"LOCAL_ISSUER_URL": "http://127.0.0.1:41234"})
    document = render_openapi(policy, "orders", backend_url="http://127.0.0.1:8081")
    assert spec_errors(document) == []
    assert document["securityDefinitions"]["local"]["x-google-jwks_uri"] == "http://127.0.0.1:41234/jwks"


def test_the_validator_catches_a_broken_document():
    document = render_openapi(example(), "billing", backend_url=BACKEND)
    del document["paths"]["/invoices/{id}"]["get"]["parameters"]
    assert any("id" in error for error in spec_errors(document))


def test_security_definitions_and_operation_security():
    document = render_openapi(example(), "billing", backend_url=BACKEND, jwt_audience="https://billing.internal")
    assert document["x-google-backend"] == {"address": BACKEND, "jwt_audience": "https://billing.internal",
                                            "path_translation": "APPEND_PATH_TO_ADDRESS"}
    assert document["securityDefinitions"]["partners"] == {
        "type": "oauth2", "flow": "implicit", "authorizationUrl": "",
        "x-google-issuer": "https://login.microsoftonline.com/8c1a5f3e-2b4d-4e6f-9a0b-1c2d3e4f5a6b/v2.0",
        "x-google-jwks_uri": "https://login.microsoftonline.com/8c1a5f3e-2b4d-4e6f-9a0b-1c2d3e4f5a6b/discovery/v2.0/keys",
        "x-google-audiences": "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a"}
    paths = document["paths"]
    health = paths["/health"]["get"]
    assert health["security"] == [] and "x-authgate-requirements" not in health
    refund = paths["/invoices/{id}/refunds"]["post"]
    assert refund["security"] == [{"partners": []}]
    assert refund["x-authgate-requirements"] == {"issuers": ["partners"],
                                                 "roles_all": ["Billing.Refund", "Billing.Approve"],
                                                 "token_use": ["access"]}
    exports = paths["/exports/{path=**}"]
    assert set(exports) == {"get", "post", "put", "patch", "delete", "head", "options"}
    assert exports["put"]["security"] == [{"partners": []}, {"workforce": []}]
    assert exports["get"]["parameters"] == [{"name": "path", "in": "path", "required": True, "type": "string"}]
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert "Scopes, roles, groups and claim rules are not enforced here" in document["info"]["description"]


def test_a_specific_method_wins_over_any_on_the_same_path(tmp_path):
    policy = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [a], jwks_uri: https://idp.example.com/keys}
        apis:
          a:
            routes:
              "ANY /files/{id}": {issuers: [corp], roles: [admin]}
              "GET /files/{name}": {public: true}
    """)
    document = render_openapi(policy, "a", backend_url=BACKEND)
    # One path for both: templates that differ only in parameter names would be ambiguous.
    assert list(document["paths"]) == ["/files/{id}"]
    files = document["paths"]["/files/{id}"]
    assert files["get"]["security"] == [] and files["post"]["security"] == [{"corp": []}]
    assert files["get"]["parameters"][0]["name"] == "id"
    assert spec_errors(document) == []


@pytest.mark.parametrize("issuer_yaml, expected", [
    ('{issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc", profile: cognito, audiences: [c]}',
     "Cognito access tokens carry no aud claim"),
    ("{issuer: https://idp.example.com, audiences: [a]}", "no jwks_uri is set; set jwks_uri"),
])
def test_issuers_gcp_cannot_check_are_refused(tmp_path, issuer_yaml, expected):
    policy = load_text(tmp_path, f'issuers:\n  corp: {issuer_yaml}\napis:\n  a:\n    routes:\n'
                                 f'      "GET /x": {{issuers: [corp], scopes: [s]}}\n')
    with pytest.raises(ValueError, match=re.escape(expected)):
        render_openapi(policy, "a", backend_url=BACKEND)


def test_backend_must_be_https_and_api_must_exist():
    with pytest.raises(ValueError, match="must be an https:// URL"):
        render_openapi(example(), "billing", backend_url="http://billing.example.com")
    with pytest.raises(KeyError, match="no API named 'shop'"):
        render_openapi(example(), "shop", backend_url=BACKEND)


def test_output_is_stable():
    first = json.dumps(render_openapi(example(), "billing", backend_url=BACKEND))
    assert first == json.dumps(render_openapi(example(), "billing", backend_url=BACKEND))
