"""Security-relevant properties of every AWS construct, read from the app `authgate synth` produced."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.aws.conftest import resources_of

CORP_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ex4mpLe01"
CORP_AUDIENCES = ["4f2c6b1a9d8e7f0a1b2c3d4e5f", "7h3k9m2n4p6q8r1s3t5v7w9x2z"]


def template(templates, stack_id: str) -> Template:
    return Template.from_json(templates[stack_id])


def routes_by_key(tpl: dict) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in resources_of(tpl, "AWS::ApiGatewayV2::Route").values()}


def test_synth_prints_each_route_mechanism_and_reason(synthesized):
    code, output, _ = synthesized
    assert code == 0, output
    assert "GET /orders/{id}     native JWT authorizer jwt-corp scopes any of orders-api/orders.read, " \
           "orders-api/orders.admin" in output
    assert "POST /orders         Lambda authorizer authgate-orders" in output
    assert "because: scopes_all needs the Lambda authorizer" in output
    assert "GET /health          public (no authorizer)" in output
    assert "api notifications: WebSocket API: $connect runs the Lambda REQUEST authorizer (token from query)" in output
    assert "no unacknowledged findings" in output


def test_http_api_jwt_authorizer_checks_the_policy_issuer_and_audiences(templates):
    tpl = template(templates, "HttpApi")
    tpl.resource_properties_count_is("AWS::ApiGatewayV2::Authorizer", {"AuthorizerType": "JWT"}, 1)
    tpl.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {
        "AuthorizerType": "JWT", "Name": "jwt-corp", "IdentitySource": ["$request.header.Authorization"],
        "JwtConfiguration": {"Issuer": CORP_ISSUER, "Audience": CORP_AUDIENCES}})


def test_http_api_routes_carry_the_policy_scopes_and_authorizer_kind(templates):
    routes = routes_by_key(templates["HttpApi"])
    assert set(routes) == {"GET /health", "GET /orders", "GET /orders/{id}", "POST /orders", "DELETE /orders/{id}"}
    assert routes["GET /orders"]["AuthorizationType"] == "JWT"
    assert routes["GET /orders"]["AuthorizationScopes"] == ["orders-api/orders.read"]
    assert routes["GET /orders/{id}"]["AuthorizationScopes"] == ["orders-api/orders.read", "orders-api/orders.admin"]
    for key in ("POST /orders", "DELETE /orders/{id}"):
        assert routes[key]["AuthorizationType"] == "CUSTOM"
        assert "AuthorizationScopes" not in routes[key]
    assert routes["GET /health"]["AuthorizationType"] == "NONE"


def test_http_api_lambda_authorizer_cache_is_keyed_by_route_when_routes_differ(templates):
    tpl = template(templates, "HttpApi")
    # POST /orders and DELETE /orders/{id} need different things, so a cached simple response must be per route.
    tpl.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {
        "AuthorizerType": "REQUEST", "EnableSimpleResponses": True, "AuthorizerPayloadFormatVersion": "2.0",
        "IdentitySource": ["$request.header.Authorization", "$context.routeKey"],
        "AuthorizerResultTtlInSeconds": 300})
    # The handler re-checks the same rule at init from these settings.
    tpl.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.authorizers.http_api.handler",
        "Environment": {"Variables": {
            "AUTHGATE_POLICY": "/var/task/authgate_routes.json", "AUTHGATE_API": "orders",
            "AUTHGATE_RESPONSE": "simple", "AUTHGATE_RESULT_TTL_SECONDS": "300",
            "AUTHGATE_IDENTITY_SOURCES": "$request.header.Authorization,$context.routeKey"}}})


def test_http_api_stage_logs_access_and_throttles(templates):
    tpl = template(templates, "HttpApi")
    tpl.has_resource_properties("AWS::ApiGatewayV2::Stage", {
        "StageName": "$default", "AutoDeploy": True,
        "DefaultRouteSettings": {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200},
        "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("routeKey")}})
    tpl.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})


def test_rest_api_authorizer_is_the_lambda_request_authorizer_with_a_bounded_cache(templates):
    tpl = template(templates, "RestApi")
    tpl.has_resource_properties("AWS::ApiGateway::Authorizer", {
        "Type": "REQUEST", "IdentitySource": "method.request.header.Authorization",
        "AuthorizerResultTtlInSeconds": 300})
    tpl.has_resource_properties("AWS::Lambda::Function", {"Handler": "lambdas.authorizers.rest.handler"})
    methods = resources_of(templates["RestApi"], "AWS::ApiGateway::Method")
    kinds = sorted((m["Properties"]["HttpMethod"], m["Properties"]["AuthorizationType"]) for m in methods.values())
    assert kinds == [("DELETE", "CUSTOM"), ("GET", "CUSTOM"), ("GET", "CUSTOM"), ("GET", "NONE"), ("POST", "CUSTOM")]
    for method in methods.values():
        assert method["Properties"]["RequestValidatorId"]


def test_rest_api_stage_logs_without_request_bodies_and_has_a_rate_limited_waf(templates):
    tpl = template(templates, "RestApi")
    tpl.has_resource_properties("AWS::ApiGateway::Stage", {
        "StageName": "v1", "TracingEnabled": True, "AccessLogSetting": Match.object_like({}),
        "MethodSettings": [Match.object_like({"DataTraceEnabled": False, "LoggingLevel": "ERROR",
                                              "ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200})]})
    tpl.has_resource_properties("AWS::ApiGateway::RequestValidator", {
        "ValidateRequestBody": True, "ValidateRequestParameters": True})
    tpl.has_resource_properties("AWS::WAFv2::WebACL", {
        "Scope": "REGIONAL", "Rules": Match.array_with([Match.object_like({
            "Name": "RatePerSourceIp", "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"Limit": 1000, "AggregateKeyType": "IP",
                                                 "EvaluationWindowSec": 300}}})])})
    tpl.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    tpl.has_resource_properties("AWS::WAFv2::LoggingConfiguration", {
        "RedactedFields": [{"SingleHeader": {"Name": "authorization"}}]})


def test_cognito_pool_is_hardened(templates):
    tpl = template(templates, "Issuer")
    tpl.has_resource_properties("AWS::Cognito::UserPool", {
        "MfaConfiguration": "ON", "DeletionProtection": "ACTIVE", "UserPoolTier": "PLUS",
        "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
        "Policies": {"PasswordPolicy": Match.object_like({
            "MinimumLength": 14, "RequireLowercase": True, "RequireUppercase": True, "RequireNumbers": True,
            "RequireSymbols": True})}})
    tpl.has_resource_properties("AWS::Cognito::UserPoolResourceServer", {
        "Identifier": "orders-api",
        "Scopes": [Match.object_like({"ScopeName": "orders.admin"}), Match.object_like({"ScopeName": "orders.read"}),
                   Match.object_like({"ScopeName": "orders.write"})]})
    tpl.has_resource_properties("AWS::Cognito::UserPoolDomain", {"Domain": "authgate-dev-orders"})


def test_cognito_spa_client_is_public_pkce_code_flow_with_short_tokens(templates):
    tpl = template(templates, "Issuer")
    tpl.has_resource_properties("AWS::Cognito::UserPoolClient", {
        "ClientName": "orders-web", "GenerateSecret": False, "AllowedOAuthFlows": ["code"],
        "AllowedOAuthFlowsUserPoolClient": True,
        "CallbackURLs": ["https://shop.example.com/auth/callback", "http://localhost:5173/auth/callback"],
        "AccessTokenValidity": 15, "IdTokenValidity": 15,
        "TokenValidityUnits": Match.object_like({"AccessToken": "minutes", "IdToken": "minutes"}),
        "EnableTokenRevocation": True, "PreventUserExistenceErrors": "ENABLED",
        "RefreshTokenRotation": {"Feature": "ENABLED", "RetryGracePeriodSeconds": 10}})


def test_cognito_service_client_uses_client_credentials_with_a_secret(templates):
    tpl = template(templates, "Issuer")
    tpl.has_resource_properties("AWS::Cognito::UserPoolClient", {
        "ClientName": "fulfilment-worker", "GenerateSecret": True, "AllowedOAuthFlows": ["client_credentials"],
        "AccessTokenValidity": 15})
    tpl.has_output("*", {"Value": {"Fn::Join": ["", Match.array_with(["https://cognito-idp.", "/.well-known/jwks.json"])]}})


def test_alb_listener_authenticates_with_oidc_then_forwards(templates):
    tpl = template(templates, "Alb")
    tpl.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {
        "Port": 443, "Protocol": "HTTPS", "SslPolicy": Match.string_like_regexp("TLS13"),
        "DefaultActions": [
            Match.object_like({"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": Match.object_like({
                "Issuer": CORP_ISSUER,
                "AuthorizationEndpoint": "https://authgate-dev-orders.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
                "TokenEndpoint": "https://authgate-dev-orders.auth.eu-west-1.amazoncognito.com/oauth2/token",
                "ClientId": "5alb0c1ient0id0example00000", "Scope": "openid", "SessionTimeout": "3600",
                "SessionCookieName": "authgate-session", "OnUnauthenticatedRequest": "authenticate",
                "ClientSecret": Match.string_like_regexp("resolve:secretsmanager:authgate/alb-client")})}),
            Match.object_like({"Type": "forward", "Order": 2})]})


def test_alb_verifies_jwts_on_machine_paths_with_audience_and_scope_claims(templates):
    tpl = template(templates, "Alb")
    tpl.has_resource_properties("AWS::ElasticLoadBalancingV2::ListenerRule", {
        "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/internal/*"]}}],
        "Actions": [
            {"Type": "jwt-validation", "Order": 1, "JwtValidationConfig": {
                "Issuer": CORP_ISSUER, "JwksEndpoint": f"{CORP_ISSUER}/.well-known/jwks.json",
                "AdditionalClaims": [
                    {"Name": "client_id", "Format": "single-string", "Values": CORP_AUDIENCES},
                    {"Name": "scope", "Format": "space-separated-values", "Values": ["orders-api/orders.read"]}]}},
            Match.object_like({"Type": "forward", "Order": 2})]})


def test_alb_drops_invalid_headers_logs_access_and_may_reach_the_idp(templates):
    tpl = template(templates, "Alb")
    (balancer,) = resources_of(templates["Alb"], "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["Properties"]["Scheme"] == "internet-facing"
    attributes = {a["Key"]: a["Value"] for a in balancer["Properties"]["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["routing.http.desync_mitigation_mode"] == "strictest"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == "true"
    tpl.has_resource_properties("AWS::EC2::SecurityGroup", {
        "SecurityGroupEgress": Match.array_with([Match.object_like(
            {"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"})])})
    tpl.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)


def test_irsa_trust_names_exactly_one_service_account_and_the_sts_audience(templates):
    tpl = templates["WorkloadIdentity"]
    issuer_host = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    conditions = [json.loads(r["Properties"]["Value"]) if isinstance(r["Properties"]["Value"], str)
                  else r["Properties"]["Value"] for r in resources_of(tpl, "Custom::AWSCDKCfnJson").values()]
    assert conditions == [{f"{issuer_host}:sub": "system:serviceaccount:orders:orders-api",
                           f"{issuer_host}:aud": "sts.amazonaws.com"}]
    Template.from_json(tpl).has_resource_properties("AWS::IAM::Role", {
        "AssumeRolePolicyDocument": {"Statement": [Match.object_like({
            "Action": "sts:AssumeRoleWithWebIdentity", "Effect": "Allow",
            "Condition": {"StringEquals": {"Fn::GetAtt": Match.any_value()}},
            "Principal": {"Federated": Match.any_value()}})]}})
    Template.from_json(tpl).has_resource_properties("AWS::IAM::OIDCProvider", {
        "Url": f"https://{issuer_host}"})


def test_pod_identity_role_trusts_the_service_for_this_cluster_only(templates):
    tpl = Template.from_json(templates["WorkloadIdentity"])
    tpl.has_resource_properties("AWS::EKS::PodIdentityAssociation", {
        "ClusterName": "shop", "Namespace": "billing", "ServiceAccount": "billing-api"})
    tpl.has_resource_properties("AWS::IAM::Role", {"AssumeRolePolicyDocument": {"Statement": [{
        "Action": ["sts:AssumeRole", "sts:TagSession"], "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}, "aws:SourceArn": {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":eks:", {"Ref": "AWS::Region"}, ":",
                              {"Ref": "AWS::AccountId"}, ":cluster/shop"]]}}}}]}})


def test_github_role_trusts_one_repository_and_ref(templates):
    tpl = Template.from_json(templates["GithubOidc"])
    tpl.has_resource_properties("AWS::IAM::OIDCProvider", {
        "Url": "https://token.actions.githubusercontent.com", "ClientIdList": ["sts.amazonaws.com"]})
    tpl.has_resource_properties("AWS::IAM::Role", {
        "MaxSessionDuration": 3600,
        "AssumeRolePolicyDocument": {"Statement": [Match.object_like({
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": "repo:example-org/shop:ref:refs/heads/main"}}})]}})


def test_eks_front_door_reaches_an_internal_alb_through_a_vpc_link(templates):
    tpl = Template.from_json(templates["EksFrontDoor"])
    tpl.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"})
    tpl.resource_count_is("AWS::ApiGatewayV2::VpcLink", 1)
    tpl.has_resource_properties("AWS::ApiGatewayV2::Integration", {
        "ConnectionType": "VPC_LINK", "IntegrationType": "HTTP_PROXY", "IntegrationUri": {"Ref": Match.any_value()}})
    tpl.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {
        "AuthorizerType": "JWT", "JwtConfiguration": {"Issuer": CORP_ISSUER, "Audience": CORP_AUDIENCES}})
    # Only the VPC link's security group may reach the internal listener.
    tpl.has_resource_properties("AWS::EC2::SecurityGroupIngress", {
        "FromPort": 80, "ToPort": 80, "SourceSecurityGroupId": Match.any_value()})


@pytest.mark.parametrize("stack_id", ["Issuer", "HttpApi", "RestApi", "Alb", "EksFrontDoor", "WorkloadIdentity",
                                      "GithubOidc"])
def test_every_stack_was_synthesized(templates, stack_id):
    assert templates[stack_id]["Resources"]
