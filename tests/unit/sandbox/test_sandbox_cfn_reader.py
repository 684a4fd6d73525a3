"""Reading synthesized CloudFormation for the emulators: Refs, literals, functions behind authorizer URIs."""
from __future__ import annotations

import json

import pytest

from sandbox.gateways.cfn import Template, TemplateError

DOCUMENT = {"Resources": {
    "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "Handler": "lambdas.authorizers.rest.handler",
        "Environment": {"Variables": {"AUTHGATE_API": "orders", "TOKEN": {"Ref": "Secret"}}}}},
    "Auth": {"Type": "AWS::ApiGateway::Authorizer", "Properties": {
        "AuthorizerUri": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:",
                                            {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]},
        "Issuer": {"Fn::Sub": "https://${Domain}"}}},
}}


def test_resources_by_type_and_ref_targets():
    template = Template(DOCUMENT)
    assert [lid for lid, _ in template.of_type("AWS::Lambda::Function")] == ["Fn"]
    assert template.ref_target({"Ref": "Fn"}, where="x") == "Fn"
    assert template.ref_target({"Fn::GetAtt": ["Fn", "Arn"]}, where="x") == "Fn"
    with pytest.raises(TemplateError, match="expected a Ref"):
        template.ref_target("literal", where="Auth.AuthorizerId")


def test_literal_refuses_values_only_known_at_deploy_time():
    template = Template(DOCUMENT, source="t.json")
    assert template.literal(["a", "b"], where="x") == ["a", "b"]
    with pytest.raises(TemplateError, match=r"t.json: Auth.Issuer .*cannot resolve"):
        template.literal(DOCUMENT["Resources"]["Auth"]["Properties"]["Issuer"], where="Auth.Issuer")


def test_function_behind_an_authorizer_uri_and_its_handler_and_environment():
    template = Template(DOCUMENT)
    uri = DOCUMENT["Resources"]["Auth"]["Properties"]["AuthorizerUri"]
    assert template.function_behind(uri, where="Auth.AuthorizerUri") == "Fn"
    assert template.function_handler("Fn") == "lambdas.authorizers.rest.handler"
    assert template.lambda_environment("Fn") == {"AUTHGATE_API": "orders"}   # unresolvable values left out
    with pytest.raises(TemplateError, match="not an AWS::Lambda::Function"):
        template.function_handler("Auth")
    with pytest.raises(TemplateError, match="exactly one Lambda function"):
        template.function_behind({"Fn::Join": ["", ["arn:aws:lambda:fixed"]]}, where="Auth.AuthorizerUri")


def test_load_reports_an_unreadable_file(tmp_path):
    broken = tmp_path / "t.template.json"
    broken.write_text("{not json")
    with pytest.raises(TemplateError, match="cannot read CloudFormation template"):
        Template.load(broken)
    broken.write_text(json.dumps(DOCUMENT))
    assert Template.load(broken).source == str(broken)
