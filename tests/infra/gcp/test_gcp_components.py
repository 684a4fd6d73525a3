"""Mock-based tests of the GCP components: issuers, invoker bindings, gateway config, IAP, Cloud Armor, WIF."""
from __future__ import annotations

import base64
import json

import pulumi
import pytest

from tests.infra.gcp import gcp_pulumi_mocks
from tests.infra.gcp.gcp_pulumi_mocks import PROJECT, PROJECT_NUMBER

from stacks.gcp import (ApiGateway, ApiGatewayArgs, GithubActionsFederation, GithubActionsFederationArgs,
                        IapWebBackend, IapWebBackendArgs, IdentityPlatformIssuer, IdentityPlatformIssuerArgs,
                        OidcFederationProvider, PrivateCloudRunServiceArgs)
from stacks.gcp.github_federation import github_attribute_condition
from stacks.gcp.token_handler import TokenHandlerServiceArgs


def _openapi_for(backend_url: str) -> dict:
    return {
        "swagger": "2.0",
        "info": {"title": "orders", "version": "1"},
        "securityDefinitions": {"corp": {"type": "oauth2", "flow": "implicit", "authorizationUrl": "",
                                         "x-google-issuer": "https://issuer.example.com",
                                         "x-google-audiences": "orders-api"}},
        "paths": {"/orders": {"get": {"operationId": "getOrders", "security": [{"corp": []}],
                                      "x-google-backend": {"address": backend_url, "jwt_audience": backend_url},
                                      "responses": {"200": {"description": "ok"}}}}},
    }


def test_api_gateway_backend_is_invoked_only_by_the_gateway_service_account():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        gateway = ApiGateway("orders", ApiGatewayArgs(api_id="orders", region="europe-west1",
                                                      backend_image="europe-docker.pkg.dev/acme/orders:1",
                                                      openapi_for_backend=_openapi_for))

        def check(values):
            url, sa_email, doc = values
            assert url == "https://orders-gateway-x1y2z3.ew.gateway.dev"
            assert sa_email == f"gw-orders@{PROJECT}.iam.gserviceaccount.com"
            backend = json.loads(doc)["paths"]["/orders"]["get"]["x-google-backend"]
            assert backend["address"] == "https://orders-backend-abc123-ew.a.run.app"

        return pulumi.Output.all(gateway.gateway_url, gateway.service_account.email,
                                 gateway.openapi_document).apply(check)

    build()
    service = mocks.one("gcp:cloudrunv2/service:Service")
    assert service["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert service["invokerIamDisabled"] is False
    binding = mocks.one("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding")
    assert binding["role"] == "roles/run.invoker"
    assert binding["members"] == [f"serviceAccount:gw-orders@{PROJECT}.iam.gserviceaccount.com"]
    assert not mocks.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")

    config = mocks.one("gcp:apigateway/apiConfig:ApiConfig")
    assert config["apiConfigIdPrefix"] == "orders-"
    assert config["gatewayConfig"]["backendConfig"]["googleServiceAccount"] == \
        f"gw-orders@{PROJECT}.iam.gserviceaccount.com"
    document = json.loads(base64.b64decode(config["openapiDocuments"][0]["document"]["contents"]))
    assert document["paths"]["/orders"]["get"]["security"] == [{"corp": []}]
    assert document["securityDefinitions"]["corp"]["x-google-issuer"] == "https://issuer.example.com"
    gateway = mocks.one("gcp:apigateway/gateway:Gateway")
    assert gateway["region"] == "europe-west1" and gateway["gatewayId"] == "orders-gateway"


def test_api_config_is_replaced_not_updated_and_its_text_is_stable():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        ApiGateway("orders", ApiGatewayArgs(api_id="orders", region="europe-west1", backend_image="img",
                                            openapi_for_backend=_openapi_for))

    build()
    first = mocks.one("gcp:apigateway/apiConfig:ApiConfig")["openapiDocuments"]
    config_resource = mocks.of_type("gcp:apigateway/apiConfig:ApiConfig")[0]
    assert config_resource.name == "orders-config"
    # Same policy, same document bytes: a second run must not produce a different (immutable) config.
    mocks = gcp_pulumi_mocks.install()
    build()
    assert mocks.one("gcp:apigateway/apiConfig:ApiConfig")["openapiDocuments"] == first


def test_api_config_options_request_replacement():
    gcp_pulumi_mocks.install()
    seen = {}

    def capture(args: pulumi.ResourceTransformationArgs):
        seen[args.type_] = args.opts
        return None

    @pulumi.runtime.test
    def build():
        ApiGateway("orders", ApiGatewayArgs(api_id="orders", region="europe-west1", backend_image="img",
                                            openapi_for_backend=_openapi_for),
                   opts=pulumi.ResourceOptions(transformations=[capture]))

    build()
    config_opts = seen["gcp:apigateway/apiConfig:ApiConfig"]
    assert config_opts.replace_on_changes == ["*"]
    assert config_opts.delete_before_replace is False


def test_identity_platform_issuer_config_and_federated_oidc_provider():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        issuer = IdentityPlatformIssuer("idp", IdentityPlatformIssuerArgs(
            project=PROJECT, authorized_domains=["app.example.com", "localhost"],
            oidc_providers=[OidcFederationProvider(provider_id="oidc.corp", display_name="Corp SSO",
                                                   issuer="https://corp.okta.com", client_id="0oa123",
                                                   client_secret=pulumi.Output.secret("s3cret"))]))
        assert issuer.issuer == f"https://securetoken.google.com/{PROJECT}"
        assert issuer.audience == PROJECT
        return issuer.config.authorized_domains.apply(lambda d: d == ["app.example.com", "localhost"] or
                                                      pytest.fail(f"authorized domains {d}"))

    build()
    config = mocks.one("gcp:identityplatform/config:Config")
    assert config["signIn"]["email"] == {"enabled": True, "passwordRequired": True}
    assert config["signIn"]["phoneNumber"] == {"enabled": False}
    assert config["mfa"]["state"] == "ENABLED"
    assert config["mfa"]["providerConfigs"][0]["totpProviderConfig"] == {"adjacentIntervals": 1}
    provider = mocks.one("gcp:identityplatform/oauthIdpConfig:OauthIdpConfig")
    assert provider["name"] == "oidc.corp" and provider["issuer"] == "https://corp.okta.com"
    assert provider["responseType"] == {"code": True, "idToken": False}


def test_iap_web_backend_lb_armor_and_access():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        web = IapWebBackend("portal", IapWebBackendArgs(
            name_prefix="portal", region="europe-west1", image="img", domains=["portal.example.com"],
            iap_members=["group:portal-users@example.com"], rate_limit_requests=100,
            rate_limit_interval_seconds=60))
        return web.address.address.apply(lambda ip: ip == "203.0.113.10" or pytest.fail(ip))

    build()
    service = mocks.one("gcp:cloudrunv2/service:Service")
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    binding = mocks.one("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding")
    assert binding["members"] == [f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-iap.iam.gserviceaccount.com"]

    backend = mocks.one("gcp:compute/backendService:BackendService")
    assert backend["iap"]["enabled"] is True
    assert backend["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert backend["securityPolicy"].endswith("portal-armor")

    armor = mocks.one("gcp:compute/securityPolicy:SecurityPolicy")
    rate_rule = next(rule for rule in armor["rules"] if rule["priority"] == 1000)
    assert rate_rule["action"] == "rate_based_ban"
    assert rate_rule["rateLimitOptions"]["rateLimitThreshold"] == {"count": 100, "intervalSec": 60}
    assert rate_rule["rateLimitOptions"]["enforceOnKey"] == "IP"
    assert rate_rule["rateLimitOptions"]["exceedAction"] == "deny(429)"
    assert any(rule["priority"] == 2147483647 for rule in armor["rules"])

    access = mocks.one("gcp:iap/webBackendServiceIamBinding:WebBackendServiceIamBinding")
    assert access["role"] == "roles/iap.httpsResourceAccessor"
    assert access["members"] == ["group:portal-users@example.com"]
    rule = mocks.one("gcp:compute/globalForwardingRule:GlobalForwardingRule")
    assert rule["portRange"] == "443"
    assert mocks.one("gcp:compute/managedSslCertificate:ManagedSslCertificate")["managed"]["domains"] == \
        ["portal.example.com"]


def test_github_federation_conditions_on_the_repository_and_ref():
    mocks = gcp_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        fed = GithubActionsFederation("gha", GithubActionsFederationArgs(
            repository="acme/orders-api", ref="refs/heads/main", repository_id="123456",
            project=PROJECT, project_roles=["roles/run.developer"]))
        return fed.provider.name.apply(lambda n: n.endswith("/providers/github") or pytest.fail(n))

    build()
    provider = mocks.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider["attributeCondition"] == ('assertion.repository == "acme/orders-api" && '
                                              'assertion.repository_id == "123456" && '
                                              'assertion.ref == "refs/heads/main"')
    assert provider["oidc"]["issuerUri"] == "https://token.actions.githubusercontent.com"
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    member = mocks.one("gcp:serviceaccount/iAMMember:IAMMember")
    assert member["role"] == "roles/iam.workloadIdentityUser"
    assert member["member"] == (f"principalSet://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/"
                                "workloadIdentityPools/github-actions/attribute.repository/acme/orders-api")
    assert mocks.one("gcp:projects/iAMMember:IAMMember")["role"] == "roles/run.developer"


def test_attribute_condition_quotes_values():
    assert github_attribute_condition("acme/app") == 'assertion.repository == "acme/app"'


@pytest.mark.parametrize("kwargs, message", [
    ({"repository": "acme/*"}, "owner/name"),
    ({"repository": "acme"}, "owner/name"),
    ({"repository": "acme/app", "ref": "refs/heads/*"}, "full ref"),
    ({"repository": "acme/app", "ref": "main"}, "full ref"),
    ({"repository": "acme/app", "pool_id": "gcp-pool"}, "reserved"),
    ({"repository": "acme/app", "project_roles": ["roles/owner"], "project": PROJECT}, "basic role"),
    ({"repository": "acme/app", "project_roles": ["roles/run.developer"]}, "needs project"),
])
def test_github_federation_rejects_wildcards_and_broad_grants(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GithubActionsFederationArgs(**kwargs)


@pytest.mark.parametrize("invokers, message", [
    (["allUsers"], "public"),
    (["allAuthenticatedUsers"], "public"),
    ([], "at least one"),
    (["someone@example.com"], "not an IAM member"),
])
def test_private_cloud_run_refuses_public_or_malformed_invokers(invokers, message):
    with pytest.raises(ValueError, match=message):
        PrivateCloudRunServiceArgs(service_name="svc", location="europe-west1", image="img", invokers=invokers,
                                   ingress="INGRESS_TRAFFIC_ALL")


def test_component_args_name_the_bad_field():
    with pytest.raises(ValueError, match="api_id"):
        ApiGatewayArgs(api_id="Orders_API", region="europe-west1", backend_image="img",
                       openapi_for_backend=_openapi_for)
    with pytest.raises(ValueError, match="authorized_domains"):
        IdentityPlatformIssuerArgs(project=PROJECT, authorized_domains=["https://app.example.com"])
    with pytest.raises(ValueError, match="oidc."):
        OidcFederationProvider(provider_id="corp", display_name="x", issuer="https://x", client_id="c")
    with pytest.raises(ValueError, match="iap_members"):
        IapWebBackendArgs(name_prefix="portal", region="r", image="i", domains=["a.example.com"],
                          iap_members=["allUsers"])
    with pytest.raises(ValueError, match="rate_limit_action"):
        IapWebBackendArgs(name_prefix="portal", region="r", image="i", domains=["a.example.com"],
                          iap_members=["user:a@example.com"], rate_limit_action="deny")


def test_api_gateway_refuses_a_policy_api_it_cannot_enforce_before_any_resource():
    """Used on its own (without the program's own check), the component refuses an API whose routes need a proof or
    a revocation re-check when it is declared: the document is built once with a stand-in backend URL."""
    from pathlib import Path

    from stacks.policy import load_policy
    from stacks.policy.render.openapi import render_openapi

    policy = load_policy(Path(__file__).resolve().parents[1] / "bound_routes_policy.yaml")
    mocks = gcp_pulumi_mocks.install()
    with pytest.raises(ValueError, match="route 'POST /orders': proof: dpop cannot be enforced by GCP API Gateway"):
        @pulumi.runtime.test
        def build():
            ApiGateway("orders", ApiGatewayArgs(
                api_id="orders", region="europe-west1", backend_image="img",
                openapi_for_backend=lambda url: render_openapi(policy, "orders", backend_url=url)))
        build()
    assert mocks.resources == []


@pytest.mark.parametrize("make_args, field, service", [
    (lambda region: PrivateCloudRunServiceArgs(service_name="svc", location=region, image="img",
                                               invokers=["user:a@example.com"], ingress="INGRESS_TRAFFIC_ALL"),
     "location", "Cloud Run"),
    (lambda region: TokenHandlerServiceArgs(
        service_name="shop-auth", location=region, image="img", client_secret_id="s", cookie_keys_id="k",
        config={"format": "authgate.token-handler/v1", "origin": "https://shop.example.com"}), "location", "Cloud Run"),
    (lambda region: IapWebBackendArgs(name_prefix="portal", region=region, image="i", domains=["a.example.com"],
                                      iap_members=["user:a@example.com"]), "region", "Cloud Run"),
    (lambda region: ApiGatewayArgs(api_id="orders", region=region, backend_image="img",
                                   openapi_for_backend=_openapi_for), "region", "API Gateway"),
])
def test_component_args_refuse_an_empty_region_naming_the_field(make_args, field, service):
    with pytest.raises(ValueError, match=f"^{field} must name the {service} region to deploy to, for example "):
        make_args("")
    make_args("europe-west1")
