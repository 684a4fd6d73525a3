"""The app with revocation and proof routes (tests/infra/aws/revocation_policy.yaml): context authgate:mtls_domain
feeding each API stack's custom domain with mutual TLS (truststore, execute-api off), refused when missing; the
back-channel logout endpoint on the HTTP API (no authorizer, PutItem on denylist keys only, the stage's one table that
every authorizer reads, its alarms); cdk-nag clean."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stacks.aws.refusals import UnsupportedConfiguration
from tests.support.cfn_gates import assert_cfn_lint_and_checkov_pass

HERE = Path(__file__).resolve().parent
POLICY = HERE / "revocation_policy.yaml"
MTLS = {"certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "truststore_uri": "s3://example-truststores/orders/ca.pem", "truststore_version": "v3",
        "http_api_domain": "orders-{stage}.api.example.com", "rest_api_domain": "orders-rest-{stage}.api.example.com"}


def build_app(out: Path, asset: Path, **context):
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from stacks.aws.app import add_nag_checks, build
    from stacks.aws.settings import AppSettings

    app = App(outdir=str(out), context={
        "authgate:policy": str(POLICY), "authgate:api": "orders", "authgate:stages": ["dev"],
        "authgate:authorizer_asset_dir": str(asset), **context})
    build(app, AppSettings.from_context(app.node.try_get_context))
    add_nag_checks(app)
    return app


@pytest.fixture(scope="module")
def assembly(tmp_path_factory, authorizer_asset_dir):
    out = tmp_path_factory.mktemp("revocation-cdk-out")
    build_app(out, authorizer_asset_dir, **{"authgate:mtls_domain": MTLS}).synth()
    return out


def template(out: Path, stack: str) -> dict:
    [path] = (out / "assembly-dev").glob(f"dev{stack}" + "?" * 8 + ".template.json")
    return json.loads(path.read_text())


def resources(doc: dict, kind: str) -> dict:
    return {k: v["Properties"] for k, v in doc["Resources"].items() if v["Type"] == kind}


def statements(doc: dict) -> list[dict]:
    return [s for p in resources(doc, "AWS::IAM::Policy").values() for s in p["PolicyDocument"]["Statement"]]


def test_each_api_stack_gets_its_mtls_domain_from_the_context_key(assembly):
    http, rest = template(assembly, "HttpApi"), template(assembly, "RestApi")
    [domain] = resources(http, "AWS::ApiGatewayV2::DomainName").values()
    assert domain["DomainName"] == "orders-dev.api.example.com"
    assert domain["MutualTlsAuthentication"] == {"TruststoreUri": "s3://example-truststores/orders/ca.pem",
                                                 "TruststoreVersion": "v3"}
    assert domain["DomainNameConfigurations"][0]["CertificateArn"] == MTLS["certificate_arn"]
    [api] = resources(http, "AWS::ApiGatewayV2::Api").values()
    assert api["DisableExecuteApiEndpoint"] is True
    assert len(resources(http, "AWS::ApiGatewayV2::ApiMapping")) == 1
    [rest_domain] = resources(rest, "AWS::ApiGateway::DomainName").values()
    assert rest_domain["DomainName"] == "orders-rest-dev.api.example.com"
    assert rest_domain["MutualTlsAuthentication"]["TruststoreUri"] == "s3://example-truststores/orders/ca.pem"
    [rest_api] = resources(rest, "AWS::ApiGateway::RestApi").values()
    assert rest_api["DisableExecuteApiEndpoint"] is True


def test_the_logout_endpoint_is_an_unauthorized_post_route_to_the_logout_handler(assembly):
    http = template(assembly, "HttpApi")
    routes = resources(http, "AWS::ApiGatewayV2::Route")
    [route] = [r for r in routes.values() if r["RouteKey"] == "POST /backchannel-logout"]
    assert route.get("AuthorizationType", "NONE") == "NONE" and "AuthorizerId" not in route
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    integration = http["Resources"][integration_id]["Properties"]
    function_id = integration["IntegrationUri"]["Fn::GetAtt"][0]
    function = http["Resources"][function_id]["Properties"]
    assert function["Handler"] == "lambdas.backchannel_logout.http_api.handler"
    env = function["Environment"]["Variables"]
    assert env["AUTHGATE_POLICY"] == "/var/task/authgate_routes.json" and env["AUTHGATE_API"] == "orders"
    assert "Fn::ImportValue" in json.dumps(env["AUTHGATE_DENYLIST_TABLE"]), "the stage's shared table"
    assert function["LoggingConfig"]["LogFormat"] == "JSON"


def test_the_logout_function_may_only_put_denylist_entries(assembly):
    http = template(assembly, "HttpApi")
    [role_id] = [k for k, v in resources(http, "AWS::IAM::Role").items()
                 if "back-channel logout" in v.get("Description", "")]
    mine = [s for p in resources(http, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Roles"] for s in p["PolicyDocument"]["Statement"]]
    dynamo = [s for s in mine if "dynamodb:" in json.dumps(s["Action"])]
    assert len(dynamo) == 1 and dynamo[0]["Action"] == "dynamodb:PutItem"
    assert dynamo[0]["Condition"] == {"ForAllValues:StringLike": {
        "dynamodb:LeadingKeys": ["sid|*", "sub|*", "jti|*", "logout:*"]}}
    assert not any(word in json.dumps(mine) for word in ("GetItem", "Delete", "Scan", "Query", "Update"))


def test_one_table_for_the_stage_read_by_every_authorizer(assembly):
    revocation = template(assembly, "Revocation")
    assert len(resources(revocation, "AWS::DynamoDB::Table")) == 1
    for stack in ("HttpApi", "RestApi"):
        doc = template(assembly, stack)
        assert not resources(doc, "AWS::DynamoDB::Table"), f"{stack} makes no table of its own"
        reads = [s for s in statements(doc) if s.get("Sid") == "RevocationRead"]
        assert reads and "Fn::ImportValue" in json.dumps(reads[0]["Resource"]), stack


def test_the_logout_endpoint_has_alarms(assembly):
    http = template(assembly, "HttpApi")
    alarms = [a["AlarmDescription"] for a in resources(http, "AWS::CloudWatch::Alarm").values()]
    assert any("back-channel logout endpoint answered 503" in a for a in alarms)
    assert any("back-channel logout function errored" in a for a in alarms)
    [metric_filter] = resources(http, "AWS::Logs::MetricFilter").values()
    assert '$.outcome = "unavailable"' in metric_filter["FilterPattern"]
    assert metric_filter["MetricTransformations"][0]["MetricNamespace"] == "authgate/dev"
    [dashboard] = resources(http, "AWS::CloudWatch::Dashboard").values()
    assert "Logout alarms" in json.dumps(dashboard["DashboardBody"])


def test_nag_lint_and_checkov_pass(assembly):
    report = json.loads((assembly / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
    assert_cfn_lint_and_checkov_pass(assembly / "assembly-dev")


def test_mtls_routes_without_the_context_key_are_refused_naming_it(tmp_path, authorizer_asset_dir):
    with pytest.raises(UnsupportedConfiguration, match=r"POST /orders have proof: mtls.*set context "
                                                       r"authgate:mtls_domain, e\.g\."):
        build_app(tmp_path, authorizer_asset_dir)


@pytest.mark.parametrize("change, message", [
    ({"certificate_arn": "arn:aws:iam::1:role/x"}, r"authgate:mtls_domain\.certificate_arn must be an ACM"),
    ({"truststore_uri": "https://bucket/ca.pem"}, r"authgate:mtls_domain: truststore_uri .* must be s3://bucket/key"),
    ({"http_api_domain": "Orders_API"}, r"authgate:mtls_domain\.http_api_domain 'Orders_API' is not a domain name"),
    ({"rest_api_domain": "orders-{stage}.api.example.com"}, r"each stack needs its own domain"),
    ({"truststore": "s3://x/y"}, r"authgate:mtls_domain has unknown field\(s\) truststore"),
])
def test_bad_mtls_domain_settings_say_what_to_fix(change, message):
    from stacks.aws.settings import AppSettings

    context = {"authgate:policy": "p.yaml", "authgate:api": "orders", "authgate:mtls_domain": {**MTLS, **change}}
    with pytest.raises(UnsupportedConfiguration, match=message):
        AppSettings.from_context(context.get)


def test_one_domain_for_several_stages_is_refused():
    from stacks.aws.settings import AppSettings

    context = {"authgate:policy": "p.yaml", "authgate:api": "orders", "authgate:stages": ["dev", "prod"],
               "authgate:mtls_domain": {**MTLS, "http_api_domain": "orders.api.example.com"}}
    with pytest.raises(UnsupportedConfiguration, match=r"same custom domain in every stage \(dev, prod\); put "
                                                       r"\{stage\} in it"):
        AppSettings.from_context(context.get)


def test_a_stack_without_its_domain_is_refused_naming_the_field(tmp_path, authorizer_asset_dir):
    partial = {k: v for k, v in MTLS.items() if k != "rest_api_domain"}
    with pytest.raises(UnsupportedConfiguration, match=r"authgate:mtls_domain\.rest_api_domain is not set: the "
                                                       r"RestApi stack"):
        build_app(tmp_path, authorizer_asset_dir, **{"authgate:mtls_domain": partial})


def test_a_policy_route_on_the_logout_path_is_refused(tmp_path, authorizer_asset_dir):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.read_text().replace('"GET /health": {public: true}',
                                                 '"POST /backchannel-logout": {public: true}'))
    with pytest.raises(UnsupportedConfiguration, match=r"POST /backchannel-logout of the policy use "
                                                       r"/backchannel-logout"):
        build_app(tmp_path, authorizer_asset_dir, **{"authgate:policy": str(policy), "authgate:mtls_domain": MTLS})


def test_the_eks_front_door_with_shared_table_routes_needs_a_pinned_environment(tmp_path, authorizer_asset_dir):
    eks = {"cluster_name": "shop", "front_door": "http-api-vpc-link",
           "oidc_issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"}
    with pytest.raises(UnsupportedConfiguration, match=r"pin authgate:account and authgate:region"):
        build_app(tmp_path, authorizer_asset_dir, **{"authgate:mtls_domain": MTLS, "authgate:eks": eks})


def test_authgate_synth_says_what_it_deploys_for_logout_and_mutual_tls():
    from stacks.aws.route_plan import ApiPlan
    from stacks.aws.settings import AppSettings
    from stacks.commands.synth import revocation_lines
    from stacks.policy import load_policy
    from stacks.policy.render.route_table import render_route_table

    plan = ApiPlan.from_route_table(render_route_table(load_policy(POLICY), apis=["orders"]), "orders")
    settings = AppSettings.from_context({"authgate:policy": str(POLICY), "authgate:api": "orders",
                                         "authgate:mtls_domain": MTLS}.get)
    logout, mtls = revocation_lines(plan, settings)
    assert logout.startswith("api orders: back-channel logout: POST /backchannel-logout on the HTTP API, no "
                             "authorizer") and "issuer(s) corp and client(s) orders-web" in logout
    assert mtls == ("api orders: mutual TLS (proof: mtls routes): HttpApi on https://orders-{stage}.api.example.com, "
                    "RestApi on https://orders-rest-{stage}.api.example.com; the execute-api endpoints are off")
