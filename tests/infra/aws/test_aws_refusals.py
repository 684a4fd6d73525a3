"""Synth-time refusals: combinations AWS cannot enforce fail with an error that says what to change."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from stacks.aws.refusals import (UnsupportedConfiguration, require_alb_oidc_provider,
                                 require_cache_within_token_lifetime, require_native_jwt_issuer)
from stacks.aws.route_plan import ApiPlan
from stacks.aws.settings import AppSettings

FIXTURE = json.loads((Path(__file__).resolve().parent / "routes_fixture.json").read_text())


def table_with(mutate) -> dict:
    table = copy.deepcopy(FIXTURE)
    mutate(table)
    return table


def route(table: dict, key: str) -> dict:
    return next(r for r in table["apis"]["orders"]["routes"] if r["route_key"] == key)


def test_fixture_plan_splits_routes_by_enforcement():
    plan = ApiPlan.from_route_table(FIXTURE, "orders")
    assert [r.route_key for r in plan.native_routes] == ["GET /orders", "GET /orders/{id}"]
    assert [r.route_key for r in plan.lambda_routes] == ["POST /orders", "DELETE /orders/{id}",
                                                         "ANY /partners/{proxy+}"]
    assert [r.route_key for r in plan.public_routes] == ["GET /health"]


def test_http_issuer_is_refused():
    table = table_with(lambda t: t["issuers"]["corp"].update(issuer="http://idp.example.com", profile="generic"))
    with pytest.raises(UnsupportedConfiguration, match="not an https:// URL"):
        ApiPlan.from_route_table(table, "orders")


def test_local_development_issuer_is_refused_for_aws():
    table = table_with(lambda t: t["issuers"]["corp"].update(allow_insecure_http=True))
    with pytest.raises(UnsupportedConfiguration, match="local sandbox only"):
        ApiPlan.from_route_table(table, "orders")


def test_non_rsa_issuer_on_a_native_route_is_refused():
    table = table_with(lambda t: route(t, "GET /orders").update(issuers=["partners"]))
    with pytest.raises(UnsupportedConfiguration, match="marked native but issuer partners allows ES256, which the "
                                                       "native JWT authorizer cannot verify"):
        ApiPlan.from_route_table(table, "orders")


def test_more_than_ten_scopes_on_a_native_route_is_refused():
    table = table_with(lambda t: route(t, "GET /orders").update(scopes=[f"orders-api/s{i}" for i in range(11)]))
    with pytest.raises(UnsupportedConfiguration, match="11 any-of scopes exceed the native JWT authorizer's limit of "
                                                       "10"):
        ApiPlan.from_route_table(table, "orders")


@pytest.mark.parametrize("field,value", [("roles", ["admin"]), ("groups_all", ["ops"]), ("claims", {"tenant": ["a"]}),
                                         ("scopes_all", ["a/x", "a/y"]), ("token_use", "id")])
def test_native_route_demanding_more_than_the_gateway_checks_is_refused(field, value):
    table = table_with(lambda t: route(t, "GET /orders").update({field: value}))
    with pytest.raises(UnsupportedConfiguration, match="marked native but .*the Lambda authorizer"):
        ApiPlan.from_route_table(table, "orders")


def test_native_route_with_two_issuers_is_refused():
    table = table_with(lambda t: route(t, "GET /orders").update(issuers=["corp", "partners"]))
    with pytest.raises(UnsupportedConfiguration, match="takes one JWT authorizer, which trusts one issuer"):
        ApiPlan.from_route_table(table, "orders")


def test_native_issuer_without_audience_is_refused():
    with pytest.raises(UnsupportedConfiguration, match="no audiences"):
        require_native_jwt_issuer("corp", issuer="https://idp.example.com", audiences=[])


def test_unknown_api_and_wrong_format_are_named():
    with pytest.raises(UnsupportedConfiguration, match="'billing' is not in the route table; it has: orders"):
        ApiPlan.from_route_table(FIXTURE, "billing")
    with pytest.raises(UnsupportedConfiguration, match="authgate render routes"):
        ApiPlan.from_route_table({"format": "other"}, "orders")


@pytest.mark.parametrize("issuer,profile", [("https://securetoken.google.com/my-project", None),
                                            ("https://idp.example.com", "identity_platform")])
def test_firebase_identity_platform_as_alb_oidc_provider_is_refused(issuer, profile):
    with pytest.raises(UnsupportedConfiguration, match="Firebase / Identity Platform"):
        require_alb_oidc_provider(issuer, profile=profile)


def test_authorizer_cache_longer_than_the_shortest_token_is_refused():
    require_cache_within_token_lifetime(300, 300, what="x")
    with pytest.raises(UnsupportedConfiguration, match="longer than the shortest token lifetime"):
        require_cache_within_token_lifetime(301, 300, what="REST API Lambda authorizer")
    with pytest.raises(UnsupportedConfiguration, match="maximum of 3600"):
        require_cache_within_token_lifetime(3601, 7200, what="x")


def test_native_scope_limit_boundary():
    table = table_with(lambda t: route(t, "GET /orders").update(scopes=[f"orders-api/s{i}" for i in range(10)]))
    plan = ApiPlan.from_route_table(table, "orders")
    assert next(r for r in plan.routes if r.route_key == "GET /orders").scopes[-1] == "orders-api/s9"


def context(**values):
    base = {"authgate:policy": "policies/example.yaml", "authgate:api": "orders"}
    base.update({f"authgate:{k}": v for k, v in values.items()})
    return base.get


def test_settings_defaults_and_refusals():
    settings = AppSettings.from_context(context())
    assert settings.stages == ("dev",) and settings.account is None and settings.shortest_token_lifetime_minutes == 15
    assert AppSettings.from_context(context(stages='["dev","prod"]')).stages == ("dev", "prod")
    # `-c authgate:cognito=` (an empty value) switches a section off; it is not malformed JSON
    assert AppSettings.from_context(context(cognito="")).cognito is None
    with pytest.raises(UnsupportedConfiguration, match="both"):
        AppSettings.from_context(context(account="111122223333"))
    with pytest.raises(UnsupportedConfiguration, match="unknown field"):
        AppSettings.from_context(context(github={"repository": "a/b", "refs": "refs/heads/main"}))
    with pytest.raises(UnsupportedConfiguration, match="namespace/service-account"):
        AppSettings.from_context(context(eks={"cluster_name": "c", "oidc_issuer": "https://x", "irsa": ["nope"]}))


@pytest.fixture(scope="module")
def stack():
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App, Stack
    return Stack(App(), "Refusals")


def test_construct_level_refusals(stack):
    from aws_cdk import Duration, SecretValue

    from stacks.aws.alb_oidc.infrastructure import MachineRoute, OidcLogin
    from stacks.aws.cognito_issuer.infrastructure import CognitoIssuer
    from stacks.aws.github_oidc.infrastructure import github_subject
    from stacks.aws.workload_identity.infrastructure import ClusterOidcProvider, IrsaRole

    with pytest.raises(UnsupportedConfiguration, match="longer than 15 min"):
        CognitoIssuer(stack, "LongTokens", resource_server_identifier="api", scopes={"api/read": ""},
                      domain_prefix="authgate-test", access_token_lifetime=Duration.minutes(60))
    with pytest.raises(UnsupportedConfiguration, match="'<resource server>/<scope>'|'api/<name>'"):
        CognitoIssuer(stack, "BadScope", resource_server_identifier="api", scopes={"read": ""},
                      domain_prefix="authgate-test2")
    with pytest.raises(UnsupportedConfiguration, match="no wildcards"):
        github_subject("example-org/shop", ref="refs/heads/*")
    with pytest.raises(UnsupportedConfiguration, match="exactly one of ref"):
        github_subject("example-org/shop")
    assert github_subject("example-org/shop", environment="prod") == "repo:example-org/shop:environment:prod"
    provider = ClusterOidcProvider(stack, "Oidc", issuer_url="https://oidc.eks.eu-west-1.amazonaws.com/id/ABC")
    with pytest.raises(UnsupportedConfiguration, match="no wildcards"):
        IrsaRole(stack, "Wild", provider=provider, namespace="orders", service_account="*")
    login = OidcLogin(issuer="https://idp.example.com", authorization_endpoint="https://idp.example.com/a",
                      token_endpoint="https://idp.example.com/t", user_info_endpoint="https://idp.example.com/u",
                      client_id="c", client_secret=SecretValue.unsafe_plain_text("test-only"), scope="profile")
    with pytest.raises(UnsupportedConfiguration, match="lacks 'openid'"):
        login.check()
    with pytest.raises(UnsupportedConfiguration, match="no audiences"):
        MachineRoute(path_patterns=["/m/*"], issuer="https://idp.example.com",
                     jwks_endpoint="https://idp.example.com/jwks", audiences=[]).check()


def test_http_api_without_authorizer_code_for_lambda_routes_is_refused(stack):
    from aws_cdk import Duration, aws_apigatewayv2_integrations as integ

    from stacks.aws.http_api.infrastructure import AuthgateHttpApi
    with pytest.raises(ValueError, match="pass authorizer_code"):
        AuthgateHttpApi(stack, "NoCode", plan=ApiPlan.from_route_table(FIXTURE, "orders"),
                        integration=integ.HttpUrlIntegration("U", "https://backend.example.com"),
                        shortest_token_lifetime=Duration.minutes(10))


def test_cognito_resource_scopes_leave_out_every_built_in_scope():
    """policy_inputs kept its own list of Cognito's built-in scopes without offline_access and address, which the
    policy model lets a client request: a client asking for offline_access broke the Cognito stack's synth."""
    from stacks.aws.policy_inputs import cognito_clients, cognito_scopes
    from stacks.policy import load_policy

    policy = load_policy(Path(__file__).resolve().parents[3] / "policies" / "example.yaml")
    plan = ApiPlan.from_route_table(_example_table(policy), "orders")
    client = next(c for c in policy.clients.values() if c.issuer == "corp")
    client.scopes.extend(["offline_access", "address"])
    identifier, scopes = cognito_scopes(policy, plan, "corp")
    assert "offline_access" not in scopes and "address" not in scopes and identifier == "orders-api"
    spa, service, _ = cognito_clients(policy, "corp")
    assert all("offline_access" not in c.scopes for c in [*spa, *service])


def _example_table(policy) -> dict:
    from stacks.policy.render.route_table import render_route_table
    return render_route_table(policy, apis=["orders"])


def test_an_api_that_does_not_use_the_cognito_issuer_gets_no_user_pool(authorizer_asset_dir, capsys, monkeypatch,
                                                                      tmp_path):
    from aws_cdk import App

    from stacks.aws.app import build
    from stacks.commands.synth import project_context

    repo = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(repo)
    context = {**project_context(repo), "authgate:api": "billing",
               "authgate:authorizer_asset_dir": str(authorizer_asset_dir)}
    app = App(outdir=str(tmp_path), context=context)
    build(app, AppSettings.from_context(app.node.try_get_context))
    stacks = {child.node.id for stage in app.node.children for child in stage.node.children}
    assert "Issuer" not in stacks and {"HttpApi", "RestApi"} <= stacks
    assert "no Cognito issuer stack: API 'billing'" in capsys.readouterr().err
