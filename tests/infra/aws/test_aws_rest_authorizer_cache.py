"""The REST API construct keeps the authorizer cache right for every route: keyed on the token only when every
principal's policy is route-wide (checked at synth over every combination of the API's permissions), keyed on the
method and path too (REQUEST) or off (TOKEN) when not, and it says which and why."""
from __future__ import annotations

from aws_cdk import App, Duration, Stack, aws_apigateway as apigw, aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from lambdas.authorizers.iam_policy import MAX_CHECKED_COMBINATIONS, policy_coverage
from lambdas.validation.route_table import RouteTable
from stacks.aws.rest_api.infrastructure import AuthgateRestApi
from stacks.aws.route_plan import ApiPlan
from tests.support.route_tables import route, table_document


def _table(routes):
    """A table whose issuer's keys come from an https key URL (the CDK plan reads the table; nothing is verified)."""
    return table_document(None, routes, jwks=None, jwks_uri="https://idp.example.test/jwks")


# Four routes per service: every combination of the three permissions gets a wildcard policy.
SERVICES = _table([r for i in range(25) for r in (
    route(f"GET /svc{i}/items", scopes=["read"]), route(f"GET /svc{i}/items/{{id}}", scopes=["read"]),
    route(f"POST /svc{i}/items", scopes=["write"]),
    route(f"DELETE /svc{i}/items/{{id}}", scopes=["write"], roles=["admin"]))])
# Readers and auditors interleaved under every service: no wildcard holds only one kind, and 60 such long paths of
# either kind do not fit in 8 KB. (Small enough for one CloudFormation stack: 500 resources at most.)
LONG = "x" * 100
INTERLEAVED = _table([r for i in range(60) for r in (
    route(f"GET /svc{i}-{LONG}/summary", scopes=["read"]), route(f"GET /svc{i}-{LONG}/audit", scopes=["audit"]))])
MANY_PERMISSIONS = _table([route(f"GET /r{i}", scopes=[f"scope{i}"]) for i in range(9)])


def _api(table):
    return RouteTable.load(table).api("orders")


def test_coverage_is_route_wide_when_every_permission_combination_fits():
    coverage = policy_coverage(_api(SERVICES), stage="v1")
    assert coverage.route_wide
    assert "every combination of the API's 3 permissions" in coverage.reason


def test_coverage_names_a_combination_that_does_not_fit():
    coverage = policy_coverage(_api(INTERLEAVED), stage="v1")
    assert not coverage.route_wide
    assert "gets no route-wide policy within 8192 bytes" in coverage.reason


def test_coverage_refuses_to_guess_past_the_combinations_it_can_try():
    assert 2 ** 9 > MAX_CHECKED_COMBINATIONS
    coverage = policy_coverage(_api(MANY_PERMISSIONS), stage="v1")
    assert not coverage.route_wide and "9 distinct permissions" in coverage.reason


def _synth(table, authorizer_type, tmp_path):
    (tmp_path / "index.py").write_text("def handler(event, context):\n    raise Exception('Unauthorized')\n")
    app = App()
    stack = Stack(app, "RestCache")
    construct = AuthgateRestApi(stack, "Rest", plan=ApiPlan.from_route_table(table, "orders"),
                                integration=apigw.MockIntegration(), authorizer_code=lambda_.Code.from_asset(
                                    str(tmp_path)),
                                shortest_token_lifetime=Duration.hours(1), authorizer_type=authorizer_type)
    return construct, Template.from_stack(stack), Annotations.from_stack(stack)


def test_route_wide_policies_keep_the_token_keyed_cache(tmp_path):
    construct, template, annotations = _synth(SERVICES, "request", tmp_path)
    assert construct.cache.mode == "token"
    template.has_resource_properties("AWS::ApiGateway::Authorizer", {
        "Type": "REQUEST", "IdentitySource": "method.request.header.Authorization",
        "AuthorizerResultTtlInSeconds": 300})
    annotations.has_info("*", Match.string_like_regexp("REST authorizer cached per token .*every combination"))


def test_a_request_authorizer_keys_its_cache_on_the_route_when_a_policy_may_not_be_route_wide(tmp_path):
    construct, template, annotations = _synth(INTERLEAVED, "request", tmp_path)
    assert construct.cache.mode == "token+route"
    template.has_resource_properties("AWS::ApiGateway::Authorizer", {
        "Type": "REQUEST", "AuthorizerResultTtlInSeconds": 300,
        "IdentitySource": "method.request.header.Authorization,context.httpMethod,context.path"})
    annotations.has_info("*", Match.string_like_regexp("cached per token, method and path .*no route-wide policy"))


def test_a_token_authorizer_turns_caching_off_when_a_policy_may_not_be_route_wide(tmp_path):
    construct, template, annotations = _synth(INTERLEAVED, "token", tmp_path)
    assert construct.cache.mode == "off"
    template.has_resource_properties("AWS::ApiGateway::Authorizer", {
        "Type": "TOKEN", "AuthorizerResultTtlInSeconds": 0})
    annotations.has_info("*", Match.string_like_regexp("caching off .*TOKEN authorizer keys its cache on the token"))


def test_authgate_synth_says_how_the_rest_authorizer_caches_and_why(synthesized):
    code, output, _ = synthesized
    assert code == 0, output
    assert "REST authorizer cached per token (method.request.header.Authorization; TTL 300 s): every combination" \
        in output
