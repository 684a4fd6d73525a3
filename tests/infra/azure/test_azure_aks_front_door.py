"""AKS in-cluster front door: authgate:aks.inCluster renders the forward-auth service and the gateway's
configuration and applies them to the program's AKS cluster through the Pulumi Kubernetes provider (mocks)."""
from __future__ import annotations

import base64
from pathlib import Path

import pulumi
import pytest

from tests.infra.azure import azure_pulumi_mocks

from stacks.azure.aks_forward_auth import AksForwardAuthArgs
from stacks.pulumi_program.program import build_stack
from stacks.pulumi_program.settings import StackConfigError
from tests.support.pulumi_mocks import stack_config

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "acme.azurecr.io/authgate-forward-auth@sha256:" + "cd" * 32
AKS = {"clusterName": "authgate-dev", "workloads": [{"namespace": "billing", "serviceAccount": "billing-api",
                                                      "identityName": "billing-api"}]}


def run(in_cluster: dict):
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.azure-dev.yaml", authgate__aks={**AKS, "inCluster": in_cluster}), root=ROOT)

    build()
    return mocks


def objects(mocks) -> list[dict]:
    return mocks.one("kubernetes:yaml/v2:ConfigGroup")["objs"]


def test_manifests_go_to_the_aks_cluster_through_its_kubeconfig():
    mocks = run({"image": IMAGE, "backend": "billing.shop:8080", "gateway": "istio", "selector": {"app": "billing"},
                 "gatewayNamespace": "aks-istio-ingress"})
    kubeconfig = mocks.one("pulumi:providers:kubernetes")["kubeconfig"]
    # The cluster's own user credential, passed as a Pulumi secret (the engine's secret signature).
    assert kubeconfig[pulumi.runtime.rpc._special_sig_key] == pulumi.runtime.rpc._special_secret_sig
    assert "authgate-dev" in kubeconfig["value"]
    group = next(r for r in mocks.resources if r.typ == "kubernetes:yaml/v2:ConfigGroup")
    assert group.provider and "aks-front-door-cluster" in group.provider
    kinds = [o["kind"] for o in objects(mocks)]
    assert kinds[:6] == ["ServiceAccount", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                         "NetworkPolicy"]
    assert {"RequestAuthentication", "AuthorizationPolicy"} <= set(kinds)
    deployment = next(o for o in objects(mocks) if o["kind"] == "Deployment")
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AUTHGATE_API"] == "billing" and env["AUTHGATE_FORWARD_AUTH_CONVENTION"] == "envoy"
    network = next(o for o in objects(mocks) if o["kind"] == "NetworkPolicy")
    assert network["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "aks-istio-ingress"}


def test_workload_identity_client_id_labels_the_pods():
    client_id = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a"
    mocks = run({"image": IMAGE, "backend": "billing.shop:8080", "clientId": client_id})
    items = objects(mocks)
    account = next(o for o in items if o["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"] == {"azure.workload.identity/client-id": client_id}
    pod = next(o for o in items if o["kind"] == "Deployment")["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    nginx = next(o for o in items if o["kind"] == "ConfigMap" and "authgate.conf" in o["data"])
    assert "auth_request /_authgate/auth;" in nginx["data"]["authgate.conf"]


@pytest.mark.parametrize("in_cluster, fragment", [
    ({"backend": "billing.shop:8080"}, "inCluster.image"),
    ({"image": "authgate:latest", "backend": "billing.shop:8080"}, "digest"),
    ({"image": IMAGE, "backend": "billing.shop:8080", "gateway": "kong"}, "gateway 'kong'"),
    ({"image": IMAGE, "backend": "billing.shop:8080", "gateway": "istio"}, "selector"),
    ({"image": IMAGE, "backend": "billing.shop:8080", "replicas": 3}, "replicas"),
])
def test_bad_in_cluster_config_names_the_key_and_creates_nothing(in_cluster, fragment):
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(stack_config("Pulumi.azure-dev.yaml", authgate__aks={**AKS, "inCluster": in_cluster}), root=ROOT)

    with pytest.raises(StackConfigError, match=fragment) as refused:
        build()
    assert "authgate:aks.inCluster" in str(refused.value)
    assert mocks.resources == []


def test_args_refuse_objects_without_a_kind():
    with pytest.raises(ValueError, match="apiVersion and kind"):
        AksForwardAuthArgs(resource_group_name="rg", cluster_name="c", manifests=[{"metadata": {}}])
    assert base64  # the mocks answer listClusterUserCredential with a base64 kubeconfig, as Azure does


SHARED_POLICY = str(Path(__file__).resolve().parent / "in_cluster_shared_policy.yaml")
REDIS = "rediss://billing.westeurope.redis.azure.net:10000/0"
SHARED = {"image": IMAGE, "backend": "billing.shop:8080", "publicOrigin": "https://billing.example.com",
          "trustedProxies": "10.244.0.0/16"}


def in_cluster_only(in_cluster: dict, **overrides):
    """The stack with the API served by the AKS front door alone (no APIM, no Entra/EasyAuth sections)."""
    values = {"authgate__policy": SHARED_POLICY, "authgate__apim": None, "authgate__entra": None,
              "authgate__appService": None, "authgate__aks": {**AKS, "inCluster": in_cluster}, **overrides}
    return stack_config("Pulumi.azure-dev.yaml", **values)


def test_an_api_only_the_cluster_can_serve_gets_the_replicas_shared_redis():
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(in_cluster_only({**SHARED, "redisUrl": REDIS}), root=ROOT)

    build()
    assert not [r for r in mocks.resources if r.typ.startswith("azure-native:apimanagement")]
    deployment = next(o for o in objects(mocks) if o["kind"] == "Deployment")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AUTHGATE_REDIS_URL"]["value"] == REDIS
    assert env["AUTHGATE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "authgate-forward-auth-redis"
    assert env["AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN"]["value"] == "https://billing.example.com"
    assert env["AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES"]["value"] == "10.244.0.0/16"


@pytest.mark.parametrize("config, fragment", [
    (in_cluster_only(SHARED), "authgate:aks.inCluster.redisUrl"),            # replicas would share nothing
    (in_cluster_only({**SHARED, "redisUrl": REDIS}, authgate__apim={"serviceName": "s", "publisherEmail": "p@x.io",
                                                                     "publisherName": "P",
                                                                     "backendUrl": "https://b.example.com"}),
     "remove authgate:apim"),                                               # APIM cannot enforce these routes
    (stack_config("Pulumi.azure-dev.yaml", authgate__apim=None), "authgate:apim: is required unless"),
])
def test_the_program_says_which_part_to_change_and_creates_nothing(config, fragment):
    mocks = azure_pulumi_mocks.install()

    @pulumi.runtime.test
    def build():
        build_stack(config, root=ROOT)

    with pytest.raises(StackConfigError, match=fragment) as refused:
        build()
    assert "--denylist-table" not in str(refused.value)   # AKS has no DynamoDB table to offer
    assert mocks.resources == []
