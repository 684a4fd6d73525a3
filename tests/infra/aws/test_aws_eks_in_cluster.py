"""EKS front_door in-cluster: the internet-facing ALB (no login at the listener, IP targets for the gateway), the
manifests written into the cloud assembly for each gateway, cdk-nag and checkov on the stack, and the refusals."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment, Stage  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from stacks.aws.app import add_nag_checks  # noqa: E402
from stacks.aws.eks_in_cluster.infrastructure import MANIFEST_DIR  # noqa: E402
from stacks.aws.refusals import UnsupportedConfiguration  # noqa: E402
from stacks.aws.settings import AppSettings, InClusterSettings  # noqa: E402
from stacks.aws.stacks import EksInClusterFrontDoorStack  # noqa: E402
from stacks.policy import load_policy  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CERT = "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/authgate-forward-auth@sha256:" + "ab" * 32


def settings(**overrides) -> InClusterSettings:
    return InClusterSettings(**{"certificate_arn": CERT, "image": IMAGE, "backend": "orders.shop:8080", **overrides})


def synth(tmp_path, **overrides):
    app = App(outdir=str(tmp_path / "cdk.out"))
    stage = Stage(app, "dev")
    stack = EksInClusterFrontDoorStack(stage, "EksInCluster", policy=load_policy(REPO / "policies/example.yaml"),
                                       api="orders", settings=settings(**overrides),
                                       env=Environment(account="111122223333", region="eu-west-1"))
    add_nag_checks(app)
    assembly = app.synth()   # cdk-nag: an unacknowledged finding raises here
    return stack, Path(assembly.directory) / "assembly-dev"


@pytest.fixture(scope="module")
def nginx_front_door(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("in-cluster"))


def test_alb_forwards_to_ip_targets_without_a_login(nginx_front_door):
    stack, _ = nginx_front_door
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"})
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {
        "Protocol": "HTTPS", "DefaultActions": [Match.object_like({"Type": "forward"})]})
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::TargetGroup",
                                     {"TargetType": "ip", "Port": 8080, "HealthCheckPath": "/healthz"})
    template.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    listeners = template.find_resources("AWS::ElasticLoadBalancingV2::Listener")
    assert not any(a.get("Type") == "authenticate-oidc" for l in listeners.values()
                   for a in l["Properties"].get("DefaultActions", []))
    assert "GatewayTargetGroupArn" in "".join(template.find_outputs("*"))


def test_manifests_are_written_for_gitops(nginx_front_door):
    _, assembly = nginx_front_door
    files = {p.name: p.read_text() for p in (assembly / MANIFEST_DIR).iterdir()}
    assert set(files) == {"forward-auth.yaml", "gateway.yaml"}
    kinds = [d["kind"] for d in yaml.safe_load_all(files["forward-auth.yaml"]) if d]
    assert kinds == ["ServiceAccount", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]
    (nginx,) = [d for d in yaml.safe_load_all(files["gateway.yaml"]) if d]
    assert nginx["kind"] == "ConfigMap" and nginx["metadata"]["namespace"] == "ingress"
    conf = nginx["data"]["authgate.conf"]
    assert "server authgate-forward-auth.authgate.svc.cluster.local:9100;" in conf
    assert "server orders.shop.svc.cluster.local:8080;" in conf


@pytest.mark.parametrize("gateway, extra, expected", [
    ("gateway-api", {}, {"forward-auth.yaml", "gateway.yaml"}),
    ("istio", {"selector": {"app": "orders"}}, {"forward-auth.yaml", "gateway.yaml", "istio-mesh-config.yaml"})])
def test_envoy_gateways_get_their_manifests_and_the_envoy_convention(tmp_path, gateway, extra, expected):
    _, assembly = synth(tmp_path, gateway=gateway, **extra)
    files = {p.name: p.read_text() for p in (assembly / MANIFEST_DIR).iterdir()}
    assert set(files) == expected
    deployment = next(d for d in yaml.safe_load_all(files["forward-auth.yaml"]) if d and d["kind"] == "Deployment")
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AUTHGATE_FORWARD_AUTH_CONVENTION"] == "envoy"


def test_checkov_passes_the_stack(nginx_front_door):
    if not CHECKOV.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHECKOV} is missing; `make setup` installs it")
        pytest.skip(f"{CHECKOV} is not installed")
    _, assembly = nginx_front_door
    result = subprocess.run([str(CHECKOV), "-f", str(next(assembly.glob("*EksInCluster*.template.json"))),
                             "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert [f["check_id"] for f in report["results"]["failed_checks"]] == []


@pytest.mark.parametrize("overrides, message", [
    ({"image": "authgate-forward-auth:1.0"}, "digest"),
    ({"gateway": "istio"}, "selector"),
    ({"backend": "Orders:80"}, "backend")])
def test_bad_in_cluster_inputs_stop_synthesis(tmp_path, overrides, message):
    with pytest.raises(UnsupportedConfiguration, match=message):
        synth(tmp_path, **overrides)


def test_context_refusals():
    def context(eks):
        values = {"authgate:policy": "policies/example.yaml", "authgate:api": "orders", "authgate:stages": ["dev"],
                  "authgate:eks": {"cluster_name": "c", "oidc_issuer": "https://x", **eks}}
        return values.get
    with pytest.raises(UnsupportedConfiguration, match="needs it"):
        AppSettings.from_context(context({"front_door": "in-cluster"}))
    with pytest.raises(UnsupportedConfiguration, match="goes with front_door in-cluster"):
        AppSettings.from_context(context({"in_cluster": {"certificate_arn": CERT, "image": IMAGE, "backend": "a:1"}}))
    with pytest.raises(UnsupportedConfiguration, match="gateway must be one of"):
        AppSettings.from_context(context({"front_door": "in-cluster", "in_cluster": {
            "certificate_arn": CERT, "image": IMAGE, "backend": "a:1", "gateway": "kong"}}))
    parsed = AppSettings.from_context(context({"front_door": "in-cluster", "in_cluster": {
        "certificate_arn": CERT, "image": IMAGE, "backend": "a:1"}}))
    assert parsed.eks.in_cluster.gateway == "nginx"


def test_manifests_that_leave_a_route_open_are_refused():
    from stacks.policy.render.in_cluster import open_route_problems
    request_authentication = {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
                              "metadata": {"name": "ra", "namespace": "shop"},
                              "spec": {"selector": {"matchLabels": {"app": "orders"}}, "jwtRules": []}}
    assert "no ALLOW AuthorizationPolicy" in open_route_problems([request_authentication])[0]
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "orders", "namespace": "shop"}, "spec": {"parentRefs": [{"name": "gw"}]}}
    empty = {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
             "metadata": {"name": "orders", "namespace": "shop"},
             "spec": {"targetRefs": [{"kind": "HTTPRoute", "name": "orders"}]}}
    problems = open_route_problems([route, empty])
    assert "neither jwt nor extAuth" in problems[0] and "HTTPRoute orders is not public" in problems[1]
