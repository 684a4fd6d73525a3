"""CDK assertions for revocation and proof of possession: the shared revocation table (on demand, TTL, PITR, a
rotating customer managed key), the authorizer's narrow grants on it and its environment, and synth refusing an
authorizer result cache on an API whose routes are checked per request."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from aws_cdk import App, Duration, Stack, aws_apigatewayv2_integrations as integ, aws_lambda as lambda_
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Match, Template

from stacks.aws.http_api.infrastructure import AuthgateHttpApi
from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.rest_api.infrastructure import AuthgateRestApi
from stacks.aws.route_plan import ApiPlan

FIXTURE = json.loads((Path(__file__).resolve().parent / "routes_fixture.json").read_text())
ASSET = Path(__file__).resolve().parents[3] / "lambdas" / "validation"  # any directory: templates need its hash


def bound_table(**route_fields) -> dict:
    table = copy.deepcopy(FIXTURE)
    table["issuers"]["corp"]["binding"] = {"dpop": True, "mtls": False}
    table["issuers"]["corp"]["revocation"] = {"cache_seconds": 5}
    post = next(r for r in table["apis"]["orders"]["routes"] if r["route_key"] == "POST /orders")
    post.update(route_fields or {"proof": "dpop", "freshness": "denylist"})
    return table


def http_api(table: dict, **options):
    stack = Stack(App(), "T")
    api = AuthgateHttpApi(stack, "Http", plan=ApiPlan.from_route_table(table, "orders"),
                          integration=integ.HttpUrlIntegration("U", "https://backend.example.com"),
                          shortest_token_lifetime=Duration.minutes(10),
                          authorizer_code=lambda_.Code.from_asset(str(ASSET)), **options)
    return api, Template.from_stack(stack)


def rest_api(table: dict, **options):
    stack = Stack(App(), "T")
    api = AuthgateRestApi(stack, "Rest", plan=ApiPlan.from_route_table(table, "orders"),
                          integration=apigw.HttpIntegration("https://backend.example.com"),
                          shortest_token_lifetime=Duration.minutes(10),
                          authorizer_code=lambda_.Code.from_asset(str(ASSET)), **options)
    return api, Template.from_stack(stack)


def test_the_table_is_on_demand_with_ttl_pitr_and_a_rotating_key():
    _, template = http_api(bound_table())
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()}})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


def test_the_authorizer_reads_entries_and_writes_only_replay_records():
    _, template = http_api(bound_table())
    statements = [s for policy in template.find_resources("AWS::IAM::Policy").values()
                  for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    dynamo = [s for s in statements if any(str(a).startswith("dynamodb:") for a in
                                           (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
    by_sid = {s["Sid"]: s for s in dynamo}
    assert set(by_sid) == {"RevocationRead", "RevocationWriteReplay"}
    assert by_sid["RevocationRead"]["Action"] == "dynamodb:BatchGetItem"
    assert by_sid["RevocationWriteReplay"]["Action"] == "dynamodb:PutItem"
    assert by_sid["RevocationWriteReplay"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["dpop:*"]}}
    for statement in dynamo:
        assert "Delete" not in json.dumps(statement) and "Scan" not in json.dumps(statement)
    template.has_resource_properties("AWS::Lambda::Function", {
        "Environment": {"Variables": Match.object_like({"AUTHGATE_DENYLIST_TABLE": Match.any_value(),
                                                        "AUTHGATE_RESULT_TTL_SECONDS": "0"})}})


def test_dpop_api_gets_no_authorizer_cache_and_an_explicit_one_is_refused():
    _, template = http_api(bound_table())
    template.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {
        "AuthorizerType": "REQUEST", "AuthorizerResultTtlInSeconds": 0})
    with pytest.raises(UnsupportedConfiguration, match=r"cache TTL 300s is refused: route\(s\) POST /orders"):
        http_api(bound_table(), authorizer_cache_ttl=Duration.minutes(5))
    with pytest.raises(UnsupportedConfiguration, match="single-use DPoP proof"):
        rest_api(bound_table(), authorizer_cache_ttl=Duration.seconds(60))


def test_rest_api_with_a_denylist_route_gets_the_table_and_no_cache():
    _, template = rest_api(bound_table(freshness="denylist"))
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.has_resource_properties("AWS::ApiGateway::Authorizer", {
        "Type": "REQUEST", "AuthorizerResultTtlInSeconds": 0})


def test_rest_token_authorizer_cannot_serve_proof_routes():
    with pytest.raises(UnsupportedConfiguration, match="TOKEN authorizer sees only the token"):
        rest_api(bound_table(), authorizer_type="token")


def test_an_api_without_such_routes_is_unchanged():
    _, template = http_api(copy.deepcopy(FIXTURE))
    template.resource_count_is("AWS::DynamoDB::Table", 0)
    template.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {"AuthorizerResultTtlInSeconds": 300})
    functions = template.find_resources("AWS::Lambda::Function")
    assert not any("AUTHGATE_DENYLIST_TABLE" in json.dumps(f) for f in functions.values())


MTLS = MtlsDomainSettings(domain_name="orders.api.example.com",
                          certificate_arn="arn:aws:acm:eu-west-1:111122223333:certificate/abc",
                          truststore_uri="s3://example-truststores/orders/ca.pem", truststore_version="v3")


def mtls_table() -> dict:
    table = bound_table(proof="mtls")
    table["issuers"]["corp"]["binding"] = {"dpop": False, "mtls": True}
    return table


def test_mtls_routes_need_a_custom_domain():
    with pytest.raises(UnsupportedConfiguration, match="POST /orders have proof: mtls, which needs a custom domain"):
        http_api(mtls_table())
    with pytest.raises(UnsupportedConfiguration, match="needs a custom domain with mutual TLS"):
        rest_api(mtls_table())


def test_http_api_mtls_domain_with_truststore_and_no_execute_api():
    _, template = http_api(mtls_table(), mtls_domain=MTLS)
    template.has_resource_properties("AWS::ApiGatewayV2::DomainName", {
        "DomainName": "orders.api.example.com",
        "MutualTlsAuthentication": {"TruststoreUri": "s3://example-truststores/orders/ca.pem",
                                    "TruststoreVersion": "v3"}})
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"DisableExecuteApiEndpoint": True})
    template.resource_count_is("AWS::ApiGatewayV2::ApiMapping", 1)


def test_rest_api_mtls_domain_with_truststore_and_no_execute_api():
    _, template = rest_api(mtls_table(), mtls_domain=MTLS)
    template.has_resource_properties("AWS::ApiGateway::DomainName", {
        "DomainName": "orders.api.example.com", "SecurityPolicy": "TLS_1_2",
        "MutualTlsAuthentication": {"TruststoreUri": "s3://example-truststores/orders/ca.pem",
                                    "TruststoreVersion": "v3"}})
    template.has_resource_properties("AWS::ApiGateway::RestApi", {"DisableExecuteApiEndpoint": True})


def test_apis_without_mtls_routes_keep_execute_api():
    _, template = http_api(bound_table())
    template.resource_count_is("AWS::ApiGatewayV2::DomainName", 0)
    assert "DisableExecuteApiEndpoint" not in json.dumps(template.find_resources("AWS::ApiGatewayV2::Api")) or \
        '"DisableExecuteApiEndpoint": false' in json.dumps(template.find_resources("AWS::ApiGatewayV2::Api"))


@pytest.mark.parametrize("uri", ["https://x", "s3://bucket-only", "s3://bucket/", "s3:///ca.pem"])
def test_truststore_must_be_an_s3_object(uri):
    with pytest.raises(UnsupportedConfiguration, match="must be s3://bucket/key"):
        MtlsDomainSettings(domain_name="x.example.com", certificate_arn="arn:aws:acm:x", truststore_uri=uri)
    assert MTLS.truststore_location == ("example-truststores", "orders/ca.pem")


def test_logout_endpoint_grant_writes_denylist_entries_only():
    from aws_cdk import aws_iam as iam

    from stacks.aws.revocation_table.infrastructure import RevocationTable
    stack = Stack(App(), "T")
    table = RevocationTable(stack, "Revocation")
    role = iam.Role(stack, "LogoutRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    table.grant_logout_endpoint(role)
    statements = [s for policy in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
                  for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    [write] = [s for s in statements if s.get("Sid") == "RevocationWriteDenylist"]
    assert write["Action"] == "dynamodb:PutItem"
    assert write["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["sid|*", "sub|*", "jti|*",
                                                                                   "logout:*"]
    assert not any("dynamodb:BatchGetItem" in json.dumps(s) or "Delete" in json.dumps(s) for s in statements)


def binding_issuer_table() -> dict:
    """An issuer that binds tokens (binding.dpop) and not one route with proof or freshness set."""
    table = copy.deepcopy(FIXTURE)
    table["issuers"]["corp"]["binding"] = {"dpop": True, "mtls": False}
    return table


def test_an_issuer_that_binds_tokens_gets_the_table_and_no_cache_on_every_route():
    # A DPoP-bound token's proof is checked on whatever route it is presented (its jti recorded in the shared table),
    # and a cached Allow keyed on "DPoP <token>" would admit a stolen token with any proof.
    for build, authorizer in ((http_api, "AWS::ApiGatewayV2::Authorizer"), (rest_api, "AWS::ApiGateway::Authorizer")):
        _, template = build(binding_issuer_table())
        template.resource_count_is("AWS::DynamoDB::Table", 1)
        template.has_resource_properties(authorizer, {"AuthorizerResultTtlInSeconds": 0})
        template.has_resource_properties("AWS::Lambda::Function", {
            "Environment": {"Variables": Match.object_like({"AUTHGATE_DENYLIST_TABLE": Match.any_value()})}})
    with pytest.raises(UnsupportedConfiguration, match=r"issuer\(s\) corp bind tokens to DPoP keys"):
        http_api(binding_issuer_table(), authorizer_cache_ttl=Duration.minutes(5))
