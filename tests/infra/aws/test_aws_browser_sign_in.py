"""Browser sign-in on AWS (context authgate:web): the token handler Lambda on the HTTP API, its secrets, the Cognito
confidential client and federated providers, and cookie routes behind an uncached authorizer that reads the cookie
keys; cdk-nag, cfn-lint and checkov as for the rest of the app."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cfn_gates import assert_cfn_lint_and_checkov_pass

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def assembly(tmp_path_factory, authorizer_asset_dir):
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from stacks.aws.app import add_nag_checks, build
    from stacks.aws.settings import AppSettings

    out = tmp_path_factory.mktemp("web-cdk-out")
    app = App(outdir=str(out), context={
        "authgate:policy": str(HERE / "web_policy.yaml"), "authgate:api": "orders", "authgate:stages": ["dev"],
        "authgate:cognito": {"issuer": "corp", "domain_prefix": "authgate-{stage}-shop"},
        "authgate:web": {"client": "shop-web"}, "authgate:authorizer_asset_dir": str(authorizer_asset_dir)})
    build(app, AppSettings.from_context(app.node.try_get_context))
    add_nag_checks(app)
    app.synth()
    return out


def _template(out: Path, name: str) -> dict:
    [path] = (out / "assembly-dev").glob(f"*{name}*.template.json")
    return json.loads(path.read_text())


def _resources(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_the_token_handler_answers_the_auth_path_and_reads_its_secrets_by_arn(assembly):
    template = _template(assembly, "HttpApi")
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in
              _resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert {"GET /auth/{proxy+}", "POST /auth/{proxy+}"} <= set(routes)
    assert routes["GET /auth/{proxy+}"].get("AuthorizationType", "NONE") == "NONE"
    [handler] = [f["Properties"] for f in _resources(template, "AWS::Lambda::Function").values()
                 if f["Properties"]["Handler"] == "lambdas.token_handler.http_api.handler"]
    env = handler["Environment"]["Variables"]
    assert set(env) >= {"AUTHGATE_TOKEN_HANDLER_CONFIG", "AUTHGATE_CLIENT_SECRET_ARN", "AUTHGATE_COOKIE_KEYS_ARN"}
    assert "AUTHGATE_CLIENT_SECRET" not in env and "AUTHGATE_COOKIE_KEYS" not in env
    # The extension's layer ARN is per region: a mapping the layer reference looks up.
    [layer] = handler["Layers"]
    assert "Fn::FindInMap" in layer or "AWS-Parameters-and-Secrets-Lambda-Extension" in json.dumps(layer)
    assert "AWS-Parameters-and-Secrets-Lambda-Extension" in json.dumps(template.get("Mappings", {})) + json.dumps(layer)
    config = json.dumps(env["AUTHGATE_TOKEN_HANDLER_CONFIG"])
    assert "https://shop.example.com" in config and "/auth" in config


def test_cookie_routes_use_an_uncached_authorizer_that_may_read_the_cookie_keys(assembly):
    template = _template(assembly, "HttpApi")
    authorizers = {a["Properties"]["Name"]: a["Properties"] for a in
                   _resources(template, "AWS::ApiGatewayV2::Authorizer").values()}
    cookie = authorizers["authgate-orders-cookie"]
    assert cookie["AuthorizerResultTtlInSeconds"] == 0 and not cookie.get("IdentitySource")
    # The header route stays with the native JWT authorizer: the cookie routes change nothing for it.
    assert authorizers["jwt-corp"]["AuthorizerType"] == "JWT"
    ids = {name: key for key, a in _resources(template, "AWS::ApiGatewayV2::Authorizer").items()
           for name in [a["Properties"]["Name"]]}
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in
              _resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert routes["GET /api/orders"]["AuthorizerId"] == {"Ref": ids["authgate-orders-cookie"]}
    assert routes["GET /orders"]["AuthorizerId"] == {"Ref": ids["jwt-corp"]}
    [authorizer_fn] = [f["Properties"] for f in _resources(template, "AWS::Lambda::Function").values()
                       if f["Properties"]["Handler"] == "lambdas.authorizers.http_api.handler"]
    assert authorizer_fn["Environment"]["Variables"]["AUTHGATE_WEB_ORIGIN"] == "https://shop.example.com"
    assert "AUTHGATE_COOKIE_KEYS_ARN" in authorizer_fn["Environment"]["Variables"]
    grants = [s for p in _resources(template, "AWS::IAM::Policy").values()
              for s in p["Properties"]["PolicyDocument"]["Statement"]
              if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    assert grants and all(s["Resource"] != "*" for s in grants)


def test_the_cookie_key_secret_is_generated_in_the_form_the_runtime_reads(assembly):
    template = _template(assembly, "HttpApi")
    [secret] = _resources(template, "AWS::SecretsManager::Secret").values()
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["SecretStringTemplate"] == '{"current": "k1"}' and generated["GenerateStringKey"] == "k1"
    assert generated["PasswordLength"] == 43 and generated["ExcludePunctuation"] is True


def test_cognito_has_a_confidential_web_client_and_federates_the_policy_providers(assembly):
    template = _template(assembly, "Issuer")
    clients = {c["Properties"]["ClientName"]: c["Properties"] for c in
               _resources(template, "AWS::Cognito::UserPoolClient").values()}
    web = clients["shop-web"]
    assert web["GenerateSecret"] is True and web["AllowedOAuthFlows"] == ["code"]
    assert web["CallbackURLs"] == ["https://shop.example.com/auth/callback"]
    assert web["EnableTokenRevocation"] is True and web["RefreshTokenRotation"]["RetryGracePeriodSeconds"] == 30
    assert set(web["SupportedIdentityProviders"]) == {"COGNITO", "okta", "Google", "acme-sso"} or \
        {"COGNITO", "okta", "acme-sso"} <= set(web["SupportedIdentityProviders"])
    providers = {p["Properties"]["ProviderName"]: p["Properties"] for p in
                 _resources(template, "AWS::Cognito::UserPoolIdentityProvider").values()}
    assert providers["okta"]["ProviderType"] == "OIDC"
    assert providers["okta"]["ProviderDetails"]["oidc_issuer"] == "https://example.okta.com"
    assert "{{resolve:secretsmanager:authgate/okta" in json.dumps(providers["okta"]["ProviderDetails"])
    assert providers["Google"]["ProviderType"] == "Google"
    assert providers["acme-sso"]["ProviderType"] == "SAML"
    assert providers["acme-sso"]["AttributeMapping"]["email"].endswith("emailaddress")
    assert _resources(template, "AWS::SecretsManager::Secret"), "the web client's secret is kept in Secrets Manager"


def test_nag_lint_and_checkov_pass_on_the_browser_sign_in_templates(assembly):
    report = json.loads((assembly / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
    assert_cfn_lint_and_checkov_pass(assembly / "assembly-dev")


def test_no_rest_api_is_built_for_an_api_with_cookie_routes(assembly):
    names = [p.name for p in (assembly / "assembly-dev").glob("*.template.json")]
    assert not [n for n in names if "RestApi" in n] and [n for n in names if "HttpApi" in n]


def test_cookie_routes_without_browser_sign_in_are_refused_at_synth(tmp_path, authorizer_asset_dir):
    from aws_cdk import App

    from stacks.aws.app import build
    from stacks.aws.refusals import UnsupportedConfiguration
    from stacks.aws.settings import AppSettings

    app = App(outdir=str(tmp_path), context={
        "authgate:policy": str(HERE / "web_policy.yaml"), "authgate:api": "orders",
        "authgate:authorizer_asset_dir": str(authorizer_asset_dir)})
    with pytest.raises(UnsupportedConfiguration, match="authgate:web"):
        build(app, AppSettings.from_context(app.node.try_get_context))
