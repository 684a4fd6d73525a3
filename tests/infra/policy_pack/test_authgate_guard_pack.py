"""The authgate guard CrossGuard rules, called the way the policy engine calls them, with passing and failing shapes."""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
import yaml
from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

PACK_DIR = Path(__file__).resolve().parents[3] / "policies" / "pulumi-pack"
sys.path.insert(0, str(PACK_DIR))

from authgate_guard.aks_identity import validate_aks_workload_identity  # noqa: E402
from authgate_guard.apim_jwt import validate_api_policy, validate_every_api_has_jwt  # noqa: E402
from authgate_guard.cloud_run_public import validate_cloud_run_not_public  # noqa: E402
from authgate_guard.federation import (validate_federated_credential, validate_no_pool_wide_grant,  # noqa: E402
                                       validate_wif_provider)
from authgate_guard.gcp_gateway import validate_api_config  # noqa: E402
from authgate_guard.pack import POLICIES  # noqa: E402

from stacks.azure.apim import operations_for_routes  # noqa: E402
from stacks.policy import load_policy  # noqa: E402
from stacks.policy.render.openapi import render_openapi  # noqa: E402

EXAMPLE_POLICY = Path(__file__).resolve().parents[3] / "policies" / "example.yaml"
VALID_XML = ('<policies><inbound><base /><validate-jwt header-name="Authorization" failed-validation-httpcode="401">'
             '<openid-config url="https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration" />'
             '</validate-jwt></inbound><backend><base /></backend><outbound /><on-error /></policies>')


def run_rule(rule, resource_type: str, props: dict, config: dict | None = None) -> list[str]:
    violations: list[str] = []
    # The engine hands rules read-only proxies of the inputs, not dicts; so do the tests.
    args = ResourceValidationArgs(resource_type, unknown_checking_proxy(props),
                                  f"urn:pulumi:dev::authgate::{resource_type}::r", "r", None, None, config or {})
    rule(args, lambda message, urn=None: violations.append(message))
    return violations


# ---- APIM ----------------------------------------------------------------------------------------------------

APIM_POLICY = "azure-native:apimanagement:ApiPolicy"


def test_apim_policy_with_validate_jwt_passes():
    assert run_rule(validate_api_policy, APIM_POLICY, {"format": "rawxml", "value": VALID_XML}) == []
    assert run_rule(validate_api_policy, "azure-native:apimanagement/v20240501:ApiPolicy",
                    {"format": "rawxml", "value": VALID_XML}) == []


@pytest.mark.parametrize("props, fragment", [
    ({"format": "rawxml", "value": "<policies><inbound><base /></inbound></policies>"}, "no <validate-jwt>"),
    ({"format": "rawxml", "value": "<policies><inbound><!-- <validate-jwt header-name='a'/> --></inbound>"
                                   "</policies>"}, "no <validate-jwt>"),
    ({"format": "rawxml", "value": "<policies><outbound><validate-jwt header-name='a'/></outbound></policies>"},
     "no <inbound>"),
    ({"format": "rawxml-link", "value": "https://example.com/policy.xml"}, "cannot be checked"),
    ({"format": "rawxml", "value": "  "}, "empty"),
])
def test_apim_policy_without_inbound_jwt_validation_fails(props, fragment):
    violations = run_rule(validate_api_policy, APIM_POLICY, props)
    assert len(violations) == 1 and fragment in violations[0]


def test_apim_policy_rule_ignores_other_types():
    assert run_rule(validate_api_policy, "azure-native:apimanagement:Api", {"value": "nothing"}) == []


def _resource(typ: str, name: str, props: dict, deps=(), prop_deps=None) -> PolicyResource:
    return PolicyResource(typ, unknown_checking_proxy(props), f"urn:pulumi:dev::authgate::{typ}::{name}", name,
                          None, None, None, list(deps), prop_deps or {})


def _stack(resources) -> list[str]:
    violations: list[str] = []
    validate_every_api_has_jwt(StackValidationArgs(resources), lambda m, urn=None: violations.append(m))
    return violations


def test_stack_rule_accepts_an_api_with_a_jwt_policy():
    api = _resource("azure-native:apimanagement:Api", "billing-api", {"name": "billing"})
    policy = _resource(APIM_POLICY, "billing-policy", {"format": "rawxml", "value": VALID_XML}, deps=[api],
                       prop_deps={"apiId": [api]})
    assert _stack([api, policy]) == []


def test_stack_rule_matches_policy_to_api_by_id_when_dependencies_are_absent():
    api = _resource("azure-native:apimanagement:Api", "billing-api", {"name": "billing"})
    policy = _resource(APIM_POLICY, "p", {"format": "rawxml", "value": VALID_XML,
                                          "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement"
                                                "/service/acme/apis/billing/policies/policy"})
    assert _stack([api, policy]) == []


def test_stack_rule_fails_an_api_without_any_policy_or_with_anothers():
    billing = _resource("azure-native:apimanagement:Api", "billing-api", {"name": "billing"})
    orders = _resource("azure-native:apimanagement:Api", "orders-api", {"name": "orders"})
    orders_policy = _resource(APIM_POLICY, "orders-policy", {"format": "rawxml", "value": VALID_XML},
                              deps=[orders])
    violations = _stack([billing, orders, orders_policy])
    assert len(violations) == 1 and "billing-api" in violations[0]


def test_stack_rule_accepts_jwt_policies_on_every_operation_only():
    api = _resource("azure-native:apimanagement:Api", "a", {"name": "billing"})
    op1 = _resource("azure-native:apimanagement:ApiOperation", "op1", {"name": "get-x"}, deps=[api])
    op2 = _resource("azure-native:apimanagement:ApiOperation", "op2", {"name": "get-y"}, deps=[api])
    p1 = _resource("azure-native:apimanagement:ApiOperationPolicy", "p1",
                   {"format": "rawxml", "value": VALID_XML}, deps=[api, op1])
    p2 = _resource("azure-native:apimanagement:ApiOperationPolicy", "p2",
                   {"format": "rawxml", "value": VALID_XML}, deps=[api, op2])
    assert _stack([api, op1, op2, p1, p2]) == []
    assert len(_stack([api, op1, op2, p1])) == 1


# ---- GCP API Gateway -----------------------------------------------------------------------------------------

API_CONFIG = "gcp:apigateway/apiConfig:ApiConfig"


def _config_props(document, as_yaml: bool = False) -> dict:
    text = yaml.safe_dump(document) if as_yaml else json.dumps(document)
    return {"openapiDocuments": [{"document": {"path": "openapi.json",
                                               "contents": base64.b64encode(text.encode()).decode()}}]}


def _rendered_billing() -> dict:
    return render_openapi(load_policy(EXAMPLE_POLICY), "billing", backend_url="https://billing-xyz-ew.a.run.app")


def test_rendered_openapi_passes_with_its_public_route_allowed():
    config = {"publicOperations": ["GET /health"]}
    assert run_rule(validate_api_config, API_CONFIG, _config_props(_rendered_billing()), config) == []
    assert run_rule(validate_api_config, API_CONFIG, _config_props(_rendered_billing(), as_yaml=True), config) == []


def test_rendered_openapi_public_route_fails_unless_allowed():
    violations = run_rule(validate_api_config, API_CONFIG, _config_props(_rendered_billing()))
    assert len(violations) == 1 and "GET /health" in violations[0] and "publicOperations" in violations[0]


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["paths"]["/invoices"]["get"].pop("security"), "no security requirement"),
    (lambda d: d["paths"]["/invoices"]["get"].__setitem__("security", [{}]), "empty security alternative"),
    (lambda d: d["paths"]["/invoices"]["get"].__setitem__("security", [{"nobody": []}]), "names no"),
    (lambda d: d["securityDefinitions"].__setitem__("workforce", {"type": "apiKey", "name": "key", "in": "query"}),
     "API key"),
    (lambda d: d["securityDefinitions"]["workforce"].pop("x-google-issuer"), "not a JWT issuer"),
])
def test_operations_without_a_jwt_requirement_fail(mutate, fragment):
    document = _rendered_billing()
    mutate(document)
    violations = run_rule(validate_api_config, API_CONFIG, _config_props(document),
                          {"publicOperations": ["GET /health"]})
    assert violations and any(fragment in v for v in violations), violations


def test_top_level_security_covers_operations_without_their_own():
    document = _rendered_billing()
    document["security"] = [{"workforce": []}]
    del document["paths"]["/invoices"]["get"]["security"]
    config = {"publicOperations": ["GET /health"]}
    assert run_rule(validate_api_config, API_CONFIG, _config_props(document), config) == []


def test_undecodable_or_missing_documents_fail():
    assert "base64" in run_rule(validate_api_config, API_CONFIG,
                                {"openapiDocuments": [{"document": {"path": "a", "contents": "%%%"}}]})[0]
    assert "no OpenAPI document" in run_rule(validate_api_config, API_CONFIG, {"grpcServices": []})[0]


# ---- Cloud Run -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typ, props", [
    ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", {"role": "roles/run.invoker", "member": "allUsers"}),
    ("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
     {"role": "roles/run.invoker", "members": ["serviceAccount:gw@p.iam.gserviceaccount.com", "allUsers"]}),
    ("gcp:cloudrun/iamMember:IamMember", {"role": "roles/run.invoker", "member": "allAuthenticatedUsers"}),
    ("gcp:cloudrun/iamBinding:IamBinding", {"role": "roles/run.invoker", "members": ["allUsers"]}),
    ("gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
     {"policyData": json.dumps({"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]})}),
    ("gcp:cloudrun/iamPolicy:IamPolicy",
     {"policyData": json.dumps({"bindings": [{"role": "roles/run.invoker", "members": ["allAuthenticatedUsers"]}]})}),
    ("gcp:cloudrunv2/service:Service", {"name": "svc", "invokerIamDisabled": True}),
    ("gcp:cloudrun/service:Service",
     {"metadata": {"annotations": {"run.googleapis.com/invoker-iam-disabled": "true"}}}),
])
def test_public_cloud_run_fails(typ, props):
    violations = run_rule(validate_cloud_run_not_public, typ, props)
    assert len(violations) == 1, violations


@pytest.mark.parametrize("typ, props", [
    ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
     {"role": "roles/run.invoker", "member": "serviceAccount:gw@p.iam.gserviceaccount.com"}),
    ("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
     {"role": "roles/run.invoker", "members": ["serviceAccount:gw@p.iam.gserviceaccount.com"]}),
    ("gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
     {"policyData": json.dumps({"bindings": [{"role": "roles/run.invoker", "members": ["group:g@example.com"]}]})}),
    ("gcp:cloudrunv2/service:Service", {"name": "svc", "invokerIamDisabled": False}),
    ("gcp:cloudrunv2/service:Service", {"name": "svc"}),
    ("gcp:storage/bucketIAMMember:BucketIAMMember", {"member": "allUsers"}),
])
def test_private_cloud_run_passes(typ, props):
    assert run_rule(validate_cloud_run_not_public, typ, props) == []


# ---- AKS -----------------------------------------------------------------------------------------------------

AKS = "azure-native:containerservice:ManagedCluster"


def test_aks_with_issuer_and_workload_identity_passes():
    props = {"oidcIssuerProfile": {"enabled": True}, "securityProfile": {"workloadIdentity": {"enabled": True}}}
    assert run_rule(validate_aks_workload_identity, AKS, props) == []


@pytest.mark.parametrize("props, fragments", [
    ({}, ["OIDC issuer", "workload identity"]),
    ({"oidcIssuerProfile": {"enabled": True}}, ["workload identity"]),
    ({"oidcIssuerProfile": {"enabled": False}, "securityProfile": {"workloadIdentity": {"enabled": True}}},
     ["OIDC issuer"]),
    ({"oidcIssuerProfile": {"enabled": True}, "securityProfile": {"workloadIdentity": {"enabled": False}}},
     ["workload identity"]),
])
def test_aks_without_issuer_or_workload_identity_fails(props, fragments):
    violations = run_rule(validate_aks_workload_identity, AKS, props)
    assert len(violations) == len(fragments)
    for fragment, violation in zip(fragments, violations):
        assert fragment in violation


# ---- Federation ----------------------------------------------------------------------------------------------

AKS_ISSUER = "https://westeurope.oic.prod-aks.azure.com/tenant/cluster/"
FIC = "azure-native:managedidentity:FederatedIdentityCredential"
APP_FIC = "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
FLEX_FIC = "azuread:index/applicationFlexibleFederatedIdentityCredential:ApplicationFlexibleFederatedIdentityCredential"
WIF = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
GITHUB = {"issuerUri": "https://token.actions.githubusercontent.com"}


@pytest.mark.parametrize("typ, props", [
    (FIC, {"issuer": AKS_ISSUER, "subject": "system:serviceaccount:orders:orders-api",
           "audiences": ["api://AzureADTokenExchange"]}),
    (APP_FIC, {"issuer": "https://token.actions.githubusercontent.com",
               "subject": "repo:acme/orders-api:ref:refs/heads/main"}),
    (FLEX_FIC, {"claimsMatchingExpression": "claims['sub'] eq 'repo:acme/orders-api:ref:refs/heads/main'"}),
])
def test_exact_federated_credentials_pass(typ, props):
    assert run_rule(validate_federated_credential, typ, props) == []


@pytest.mark.parametrize("typ, props, fragment", [
    (FIC, {"issuer": AKS_ISSUER, "subject": "system:serviceaccount:orders:*"}, "wildcard"),
    (FIC, {"issuer": AKS_ISSUER, "subject": "system:serviceaccount:orders"}, "not exactly"),
    (FIC, {"issuer": AKS_ISSUER}, "no subject"),
    (FIC, {"subject": "system:serviceaccount:orders:api"}, "no issuer"),
    (APP_FIC, {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:acme/*"}, "wildcard"),
    (FLEX_FIC, {"claimsMatchingExpression": "claims['sub'] matches 'repo:acme/*'"}, "wildcard"),
    (FLEX_FIC, {}, "no claims matching expression"),
])
def test_wildcard_or_missing_subjects_fail(typ, props, fragment):
    violations = run_rule(validate_federated_credential, typ, props)
    assert violations and fragment in violations[0], violations


@pytest.mark.parametrize("condition", [
    'assertion.repository == "acme/orders-api"',
    "assertion.repository == 'acme/orders-api' && assertion.ref == 'refs/heads/main'",
    "assertion.repository_owner == 'acme'",
])
def test_wif_provider_with_exact_condition_passes(condition):
    assert run_rule(validate_wif_provider, WIF, {"attributeCondition": condition, "oidc": GITHUB}) == []


@pytest.mark.parametrize("props, fragment", [
    ({"oidc": GITHUB}, "no attribute condition"),
    ({"attributeCondition": "  ", "oidc": GITHUB}, "no attribute condition"),
    ({"attributeCondition": "true", "oidc": GITHUB}, "always true"),
    ({"attributeCondition": "assertion.repository.startsWith('acme/')", "oidc": GITHUB}, "pins no claim"),
    ({"attributeCondition": "assertion.sub == 'x' || assertion.repository.matches('acme/.*')", "oidc": GITHUB},
     "pattern"),
    ({"attributeCondition": "assertion.repository == 'acme/*'", "oidc": GITHUB}, "wildcard"),
    ({"attributeCondition": "assertion.ref == 'refs/heads/main'", "oidc": GITHUB}, "does not name a repository"),
])
def test_wif_provider_without_exact_condition_fails(props, fragment):
    violations = run_rule(validate_wif_provider, WIF, props)
    assert len(violations) == 1 and fragment in violations[0], violations


def test_pool_wide_grants_fail_and_attribute_grants_pass():
    pool = "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/github-actions"
    typ = "gcp:serviceaccount/iAMMember:IAMMember"
    bad = run_rule(validate_no_pool_wide_grant, typ, {"role": "roles/iam.workloadIdentityUser", "member": pool + "/*"})
    assert len(bad) == 1 and "every identity" in bad[0]
    good = run_rule(validate_no_pool_wide_grant, typ,
                    {"role": "roles/iam.workloadIdentityUser", "member": pool + "/attribute.repository/acme/app"})
    assert good == []
    assert len(run_rule(validate_no_pool_wide_grant, "gcp:serviceaccount/iAMBinding:IAMBinding",
                        {"role": "r", "members": [pool + "/*"]})) == 1


# ---- the pack itself -----------------------------------------------------------------------------------------

def test_every_policy_is_mandatory_and_uniquely_named():
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    assert all(p.enforcement_level.value == "mandatory" for p in POLICIES)


def test_pack_files_are_complete():
    assert (PACK_DIR / "PulumiPolicy.yaml").is_file() and (PACK_DIR / "__main__.py").is_file()
    requirements = (PACK_DIR / "requirements.txt").read_text()
    assert "pulumi-policy==1.21.0" in requirements


# ---- APIM with the real renderer's output --------------------------------------------------------------------

def test_rendered_apim_policies_pass_with_the_public_operation_declared():
    from authgate_guard.apim_jwt import validate_operation_policy
    from stacks.policy.render.apim import render_apim, render_apim_operations

    policy = load_policy(EXAMPLE_POLICY)
    assert run_rule(validate_api_policy, APIM_POLICY, {"format": "rawxml", "value": render_apim(policy, "billing")}) \
        == []
    config = {"publicOperations": ["get-health"]}
    rendered = render_apim_operations(policy, "billing")
    # The operation ids ApimGateway gives each route, so the policies are checked exactly as deployed.
    for operation in operations_for_routes(list(rendered)):
        props = {"format": "rawxml", "value": rendered[operation.route_key], "operationId": operation.operation_id}
        assert run_rule(validate_operation_policy, "azure-native:apimanagement:ApiOperationPolicy", props,
                        config) == [], operation
    health = render_apim_operations(policy, "billing")["GET /health"]
    violations = run_rule(validate_operation_policy, "azure-native:apimanagement:ApiOperationPolicy",
                          {"format": "rawxml", "value": health, "operationId": "get-health"})
    assert len(violations) == 1 and "publicOperations" in violations[0]


@pytest.mark.parametrize("xml, ok", [
    ("<policies><inbound><base /><set-header name='a' exists-action='delete' /></inbound></policies>", True),
    ("<policies><inbound><validate-jwt header-name='Authorization' /></inbound></policies>", True),
    ("<policies><inbound><set-header name='a' exists-action='delete' /></inbound></policies>", False),
    ("<policies><inbound><!-- <base /> --></inbound></policies>", False),
])
def test_operation_policy_must_keep_or_replace_the_token_check(xml, ok):
    from authgate_guard.apim_jwt import validate_operation_policy

    violations = run_rule(validate_operation_policy, "azure-native:apimanagement:ApiOperationPolicy",
                          {"format": "rawxml", "value": xml, "operationId": "get-x"})
    assert (violations == []) is ok, violations


# ---- APIM: validate-jwt inside a <choose> (per-issuer checks) ---------------------------------------------------

WHEN_A = '<when condition="@(context.Request.Headers.GetValueOrDefault(&quot;Authorization&quot;, &quot;&quot;).AsJwt()?.Issuer == &quot;https://a&quot;)">'
WHEN_B = "<when condition='@(context.Variables.GetValueOrDefault<string>(\"x\", \"\").Length > 0)'>"
CHECK = '<validate-jwt header-name="Authorization"><audiences><audience>a</audience></audiences></validate-jwt>'
REFUSE_401 = '<return-response><set-status code="401" reason="Unauthorized" /><set-body>no</set-body></return-response>'


def _inbound(inner: str) -> str:
    return f"<policies><inbound><base />{inner}</inbound><backend><base /></backend></policies>"


@pytest.mark.parametrize("inner", [
    f"<choose>{WHEN_A}{CHECK}</when>{WHEN_B}{CHECK}</when><otherwise>{REFUSE_401}</otherwise></choose>",
    f"<choose>{WHEN_A}{CHECK}</when><otherwise>{CHECK}</otherwise></choose>",
    f"<choose>{WHEN_A}<choose>{WHEN_B}{CHECK}</when><otherwise>{REFUSE_401}</otherwise></choose></when>"
    f"<otherwise>{REFUSE_401.replace('401', '403')}</otherwise></choose>",
    f"<choose>{WHEN_A}<set-header name='x' /></when></choose>{CHECK}",   # an unconditional check after it
])
def test_apim_choose_with_every_branch_checked_or_refused_passes(inner):
    assert run_rule(validate_api_policy, APIM_POLICY, {"format": "rawxml", "value": _inbound(inner)}) == []


@pytest.mark.parametrize("inner, fragment", [
    (f"<choose>{WHEN_A}{CHECK}</when></choose>", "has no <otherwise>"),
    (f"<choose>{WHEN_A}{CHECK}</when><otherwise><set-header name='x' exists-action='delete' /></otherwise></choose>",
     "its <otherwise> lets requests through unchecked"),
    (f"<choose>{WHEN_A}{CHECK}</when><otherwise><return-response><set-status code='200' /></return-response>"
     f"</otherwise></choose>", "without a 401 or 403 <set-status>"),
    (f"<choose>{WHEN_A}{CHECK}</when><otherwise><return-response><set-body>x</set-body></return-response>"
     f"</otherwise></choose>", "without a 401 or 403 <set-status>"),
    (f"<choose>{WHEN_A}{CHECK}</when>{WHEN_B}<set-header name='x' /></when><otherwise>{REFUSE_401}</otherwise>"
     f"</choose>", "its <when> number 2 lets requests through"),
    (f"<choose>{WHEN_A}{CHECK}</when><otherwise><!-- {REFUSE_401} --></otherwise></choose>", "<otherwise>"),
    (f"<choose>{WHEN_A}{CHECK}</otherwise></choose>", "do not nest"),
])
def test_apim_choose_that_falls_through_fails(inner, fragment):
    violations = run_rule(validate_api_policy, APIM_POLICY, {"format": "rawxml", "value": _inbound(inner)})
    assert len(violations) == 1 and fragment in violations[0], violations


def test_operation_policy_with_a_falling_through_choose_and_no_base_fails():
    from authgate_guard.apim_jwt import validate_operation_policy

    def check(xml):
        return run_rule(validate_operation_policy, "azure-native:apimanagement:ApiOperationPolicy",
                        {"format": "rawxml", "value": xml, "operationId": "get-x"})
    open_choose = f"<choose>{WHEN_A}{CHECK}</when></choose>"
    assert check(_inbound(open_choose)) == []     # <base /> runs the API's check first
    [violation] = check(f"<policies><inbound>{open_choose}</inbound></policies>")
    assert "has no <otherwise>" in violation and "publicOperations" in violation


def test_stack_rule_does_not_count_a_falling_through_choose():
    api = _resource("azure-native:apimanagement:Api", "billing-api", {"name": "billing"})
    leaky = _inbound(f"<choose>{WHEN_A}{CHECK}</when></choose>")
    policy = _resource(APIM_POLICY, "p", {"format": "rawxml", "value": leaky}, deps=[api])
    assert len(_stack([api, policy])) == 1


def test_rendered_multi_issuer_policies_are_recognised():
    """The billing API trusts two issuers: its API policy and the two-issuer operation are per-issuer <choose>s."""
    from authgate_guard.apim_jwt import validate_operation_policy
    from stacks.policy.render.apim import render_apim

    policy = load_policy(EXAMPLE_POLICY)
    api_xml = render_apim(policy, "billing")
    assert "<choose>" in api_xml
    assert run_rule(validate_api_policy, APIM_POLICY, {"format": "rawxml", "value": api_xml}) == []
    operation = render_apim(policy, "billing", route_key="ANY /exports/{path+}")
    without_base = operation.replace("<base />", "", 1)   # the operation's own choose must stand on its own
    assert run_rule(validate_operation_policy, "azure-native:apimanagement:ApiOperationPolicy",
                    {"format": "rawxml", "value": without_base, "operationId": "any-exports"}) == []
    leaky = api_xml[:api_xml.index("<otherwise>")] + api_xml[api_xml.index("</otherwise>") + len("</otherwise>"):]
    [violation] = run_rule(validate_api_policy, APIM_POLICY, {"format": "rawxml", "value": leaky})
    assert "has no <otherwise>" in violation
