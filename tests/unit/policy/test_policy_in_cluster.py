"""The in-cluster renderers (render gateway-api, istio, k8s): golden files, the per-route native / forward-auth
choice with its reasons, the Istio pairing rule, and the manifests checked against the Kubernetes schemas
(kubernetes-validate, strict) and by checkov's kubernetes framework.

The custom resources (Envoy Gateway's SecurityPolicy and ClientTrafficPolicy, Gateway API HTTPRoute and
ReferenceGrant, Istio's RequestAuthentication and AuthorizationPolicy) are not schema-validated: no package on the
index ships their CRD schemas, and copying them into the repository is not done. Their shape is pinned by the golden
files and the assertions below.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from stacks.policy import load_policy
from stacks.policy.render.gateway_api import render_gateway_api
from stacks.policy.render.in_cluster import (FORWARD_AUTH, NATIVE, ServiceRef, manifests_yaml, may_overlap,
                                             plan_routes)
from stacks.policy.render.istio import pairing_problems, render_istio
from stacks.policy.render.k8s import render_k8s
from lambdas.validation.route_table import PathTemplate
from tests.unit.policy.policy_testing import REPO, assert_golden, load_text

kubernetes_validate = pytest.importorskip("kubernetes_validate")
K8S_VERSION = "1.33"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
IMAGE = "registry.example.com/authgate-forward-auth@sha256:" + "0" * 64

MESH_POLICY = """
issuers:
  realm:
    issuer: https://sso.example.com/realms/shop
    profile: keycloak
    audiences: [catalog-api]
    jwks_uri: https://sso.example.com/realms/shop/protocol/openid-connect/certs
apis:
  catalog:
    routes:
      "GET /health": {public: true}
      "GET /items": {issuers: [realm], scopes: [catalog:read, catalog:admin]}
      "POST /items": {issuers: [realm], scopes_all: [catalog:read, catalog:write]}
      "GET /items/{id}": {issuers: [realm], scopes: [catalog:read]}
      "GET /items/special": {issuers: [realm], roles: [buyer]}
      "DELETE /items/{id}": {issuers: [realm], scopes: [catalog:write], claims: {tenant: [acme]}}
      "GET /files/{path+}": {issuers: [realm], scopes: [catalog:read]}
"""


def example():
    return load_policy(REPO / "policies/example.yaml")


@pytest.fixture
def mesh(tmp_path):
    return load_text(tmp_path, MESH_POLICY)


def by_kind(manifests, kind):
    return [m for m in manifests if m["kind"] == kind]


# --- golden files -------------------------------------------------------------------------------------------------

def test_goldens(mesh):
    assert_golden("example.billing.gateway-api.yaml", manifests_yaml(render_gateway_api(
        example(), "billing", backend="billing:8080", namespace="shop", gateway="gateways/edge")))
    assert_golden("mesh.catalog.gateway-api.yaml", manifests_yaml(render_gateway_api(
        mesh, "catalog", backend="catalog:8080", namespace="shop")))
    manifests, snippet = render_istio(mesh, "catalog", selector={"app": "catalog"}, namespace="shop")
    assert_golden("mesh.catalog.istio.yaml", manifests_yaml([*manifests, {"meshConfig": snippet}]))
    manifests, snippet = render_istio(example(), "billing", selector={"app": "billing"}, namespace="shop")
    assert_golden("example.billing.istio.yaml", manifests_yaml([*manifests, {"meshConfig": snippet}]))
    assert_golden("example.orders.k8s.yaml", manifests_yaml(render_k8s(example(), "orders", image=IMAGE)))


# --- the per-route choice -----------------------------------------------------------------------------------------

def test_each_route_says_how_it_is_enforced_and_why(mesh):
    plans = {p.route_key: p for p in plan_routes(mesh, "catalog", gateway="Envoy Gateway")}
    assert plans["GET /items"].enforcement == NATIVE
    assert plans["POST /items"].enforcement == NATIVE
    assert plans["GET /health"].enforcement == "public"
    assert "roles and groups" in plans["GET /items/special"].reason
    assert "claim rules" in plans["DELETE /items/{id}"].reason
    # /items/{id} and /items/special overlap: only the table's router orders them.
    assert plans["GET /items/{id}"].enforcement == FORWARD_AUTH and "overlaps GET /items/special" in \
        plans["GET /items/{id}"].reason
    assert plans["GET /files/{path+}"].enforcement == NATIVE
    istio = {p.route_key: p for p in plan_routes(mesh, "catalog", gateway="Istio", greedy_native=False)}
    assert istio["GET /files/{path+}"].enforcement == FORWARD_AUTH


def test_example_issuers_go_to_the_forward_auth_service_with_reasons():
    plans = {p.route_key: p for p in plan_routes(example(), "orders", gateway="Envoy Gateway")}
    assert "Cognito" in plans["GET /orders"].reason
    plans = {p.route_key: p for p in plan_routes(example(), "billing", gateway="Envoy Gateway")}
    assert "scp" in plans["GET /invoices"].reason


@pytest.mark.parametrize("a, b, overlap", [
    ("/a/{x}/c", "/{y}/b/c", True), ("/a/b", "/a/c", False), ("/a/{x}", "/a/b/c", False),
    ("/a/{rest+}", "/a/b/c", True), ("/a", "/a/{x}", False), ("/{p+}", "/", False), ("/x/{p+}", "/y/z", False)])
def test_overlap(a, b, overlap):
    assert may_overlap(PathTemplate.parse(a, where="t"), PathTemplate.parse(b, where="t")) is overlap
    assert may_overlap(PathTemplate.parse(b, where="t"), PathTemplate.parse(a, where="t")) is overlap


# --- Envoy Gateway -------------------------------------------------------------------------------------------------

def test_native_routes_get_jwt_and_authorization_the_rest_ext_auth(mesh):
    manifests = render_gateway_api(mesh, "catalog", backend="catalog:8080", namespace="shop")
    policies = {m["metadata"]["annotations"]["authgate.dev/route"]: m["spec"]
                for m in by_kind(manifests, "SecurityPolicy")}
    assert "GET /health" not in policies
    items = policies["GET /items"]
    assert items["jwt"]["providers"][0]["remoteJWKS"]["uri"].endswith("/certs")
    assert items["authorization"]["defaultAction"] == "Deny"
    assert [r["principal"]["jwt"]["scopes"] for r in items["authorization"]["rules"]] == [["catalog:read"],
                                                                                         ["catalog:admin"]]
    assert policies["POST /items"]["authorization"]["rules"][0]["principal"]["jwt"]["scopes"] == [
        "catalog:read", "catalog:write"]
    special = policies["GET /items/special"]
    assert "jwt" not in special and special["extAuth"]["failOpen"] is False
    assert special["extAuth"]["http"]["path"] == "/ext-authz"
    assert by_kind(manifests, "ReferenceGrant")[0]["metadata"]["namespace"] == "authgate"
    # Every protected route has a SecurityPolicy with jwt or extAuth (what the policy pack refuses otherwise).
    protected = {m["metadata"]["name"] for m in by_kind(manifests, "HTTPRoute")
                 if m["metadata"]["annotations"]["authgate.dev/enforcement"] != "public"}
    covered = {m["spec"]["targetRefs"][0]["name"] for m in by_kind(manifests, "SecurityPolicy")
               if "jwt" in m["spec"] or "extAuth" in m["spec"]}
    assert protected == covered


def test_gateway_api_refuses_bad_references(mesh):
    with pytest.raises(ValueError, match="--backend"):
        render_gateway_api(mesh, "catalog", backend="Catalog:8080")
    with pytest.raises(ValueError, match="must be in --namespace"):
        render_gateway_api(mesh, "catalog", backend="catalog.other:8080", namespace="shop")
    with pytest.raises(ValueError, match="--forward-auth"):
        render_gateway_api(mesh, "catalog", backend="catalog:8080", forward_auth="fa")
    assert ServiceRef.parse("fa.auth.svc.cluster.local:9100", option="x", namespace="d").namespace == "auth"


# --- Istio ---------------------------------------------------------------------------------------------------------

def test_istio_never_writes_request_authentication_alone(mesh):
    manifests, snippet = render_istio(mesh, "catalog", selector={"app": "catalog"}, namespace="shop")
    assert pairing_problems(manifests) == []
    without_allow = [m for m in manifests if not m["metadata"]["name"].endswith("-allow")]
    assert "would pass" in pairing_problems(without_allow)[0]
    allow = next(m for m in manifests if m["metadata"]["name"].endswith("-allow"))
    native = [r for r in allow["spec"]["rules"] if "when" in r]
    assert native and all(r["from"][0]["source"]["requestPrincipals"] == ["https://sso.example.com/realms/shop/*"]
                          for r in native)
    custom = next(m for m in manifests if m["spec"].get("action") == "CUSTOM")
    assert custom["spec"]["provider"]["name"] == snippet["extensionProviders"][0]["name"]
    assert {"paths": ["/files/{**}"], "methods": ["GET"]} in [r["to"][0]["operation"] for r in custom["spec"]["rules"]]
    provider = snippet["extensionProviders"][0]["envoyExtAuthzHttp"]
    assert provider["failOpen"] is False and provider["service"] == "authgate-forward-auth.authgate.svc.cluster.local"


def test_istio_all_of_scopes_are_separate_conditions(mesh):
    manifests, _ = render_istio(mesh, "catalog", selector={"app": "catalog"})
    allow = next(m for m in manifests if m["metadata"]["name"].endswith("-allow"))
    post = next(r for r in allow["spec"]["rules"] if r["to"][0]["operation"].get("methods") == ["POST"])
    assert post["when"] == [{"key": "request.auth.claims[scope]", "values": ["catalog:read"]},
                            {"key": "request.auth.claims[scope]", "values": ["catalog:write"]}]


# --- Kubernetes ----------------------------------------------------------------------------------------------------

def rendered_manifests(mesh):
    manifests = render_k8s(example(), "orders", image=IMAGE)
    manifests += render_k8s(mesh, "catalog", image=IMAGE, convention="envoy", eks_role_arn=
                            "arn:aws:iam::123456789012:role/authgate-forward-auth")
    manifests += render_k8s(mesh, "catalog", image=IMAGE, aks_client_id="0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a")
    return manifests


def test_every_core_manifest_validates_against_the_kubernetes_schemas(mesh):
    for manifest in rendered_manifests(mesh):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_the_validator_catches_a_broken_manifest(mesh):
    deployment = by_kind(render_k8s(mesh, "catalog", image=IMAGE), "Deployment")[0]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_deployment_hardening_and_cloud_identity(mesh):
    manifests = render_k8s(mesh, "catalog", image=IMAGE, gateway_namespace="istio-ingress",
                           aks_client_id="0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a")
    deployment = by_kind(manifests, "Deployment")[0]["spec"]
    pod = deployment["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["replicas"] == 2
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {"topology.kubernetes.io/zone",
                                                                             "kubernetes.io/hostname"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    routes = json.loads(by_kind(manifests, "ConfigMap")[0]["data"]["routes.json"])
    assert list(routes["apis"]) == ["catalog"]
    network = by_kind(manifests, "NetworkPolicy")[0]["spec"]
    assert network["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "istio-ingress"}}}]
    irsa = render_k8s(mesh, "catalog", image=IMAGE, eks_role_arn="arn:aws:iam::123456789012:role/x")
    assert by_kind(irsa, "ServiceAccount")[0]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"}
    assert by_kind(render_k8s(mesh, "catalog", image=IMAGE), "ServiceAccount")[0]["automountServiceAccountToken"] \
        is False


def test_k8s_trusted_proxies_and_public_origin_reach_the_service(mesh):
    env = {e["name"]: e["value"] for e in by_kind(render_k8s(
        mesh, "catalog", image=IMAGE, trusted_proxies="10.244.0.0/16", public_origin="https://api.example.com"),
        "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES"] == "10.244.0.0/16"
    assert env["AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN"] == "https://api.example.com"
    plain = by_kind(render_k8s(mesh, "catalog", image=IMAGE), "Deployment")[0]
    assert "AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES" not in str(plain)   # unset: no proxy is trusted


@pytest.mark.parametrize("options, message", [
    ({"image": "authgate-forward-auth:latest"}, "digest"), ({"replicas": 1}, "at least 2"),
    ({"convention": "auto"}, "convention"), ({"eks_role_arn": "role"}, "IAM role"),
    ({"aks_client_id": "NOT-A-GUID"}, "GUID"),
    ({"eks_role_arn": "arn:aws:iam::123456789012:role/x", "aks_client_id": "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a"},
     "not both"), ({"trusted_proxies": "10.0.0.0/33"}, "--trusted-proxies"),
    ({"public_origin": "https://api.example.com/base"}, "--public-origin")])
def test_k8s_refusals(mesh, options, message):
    with pytest.raises(ValueError, match=message):
        render_k8s(mesh, "catalog", **{"image": IMAGE, **options})


def test_checkov_kubernetes_has_no_failed_check(mesh, tmp_path):
    if not CHECKOV.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHECKOV} is missing; `make setup` installs it")
        pytest.skip(f"{CHECKOV} is not installed")
    out = tmp_path / "manifests"
    out.mkdir()
    (out / "forward-auth.yaml").write_text(manifests_yaml(rendered_manifests(mesh)))
    result = subprocess.run([str(CHECKOV), "-d", str(out), "--framework", "kubernetes", "--skip-download",
                             "--compact", "-o", "json"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 50
    skipped = report["results"]["skipped_checks"]
    assert {s["check_id"] for s in skipped} == {"CKV_K8S_38"}   # only with a cloud identity, with its reason
    assert all(len(s["check_result"].get("suppress_comment") or "") >= 40 for s in skipped)


def test_cli_writes_parseable_yaml(tmp_path, mesh):
    from stacks.cli import main
    policy = tmp_path / "p.yaml"
    policy.write_text(MESH_POLICY)
    for argv in (["render", "gateway-api", "--api", "catalog", "--backend", "catalog:80"],
                 ["render", "istio", "--api", "catalog", "--selector", "app=catalog"],
                 ["render", "k8s", "--api", "catalog", "--image", IMAGE]):
        target = tmp_path / f"{argv[1]}.yaml"
        assert main([*argv, "--policy", str(policy), "-o", str(target)]) == 0
        docs = [d for d in yaml.safe_load_all(target.read_text()) if d]
        assert docs and all("kind" in d for d in docs)
    assert "extensionProviders" in (tmp_path / "istio.yaml").read_text()
    assert Path(tmp_path / "k8s.yaml").read_text().startswith("# authgate render k8s")
