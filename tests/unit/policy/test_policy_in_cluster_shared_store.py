"""`render k8s` for an API whose decisions need state every replica shares (a denylist or DPoP route, or an issuer
that binds tokens): rendered only with the stage's revocation table, reached through the IRSA role, and refused
without it, naming what needs it; AKS, which has no DynamoDB, is refused with the reason."""
from __future__ import annotations

import pytest
import yaml

from stacks.policy.render.k8s import render_k8s
from tests.unit.policy.policy_testing import load_text

IMAGE = "registry.example.com/authgate/forward-auth@sha256:" + "0" * 64
ROLE = "arn:aws:iam::111122223333:role/authgate-prod-shop-forward-auth"
STORE = {"denylist_table": "authgate-prod-shop-revocation", "aws_region": "eu-west-1", "eks_role_arn": ROLE}
POLICY = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    revocation: {cache_seconds: 5}
apis:
  shop:
    routes:
      "DELETE /orders/{id}": {issuers: [corp], freshness: denylist}
      "GET /orders": {issuers: [corp]}
  plain:
    routes:
      "GET /items": {issuers: [corp]}
"""
BINDING_ONLY = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    binding: {dpop: true}
apis:
  shop:
    routes:
      "GET /orders": {issuers: [corp]}
"""


def container(manifests):
    deployment = next(doc for doc in manifests if doc["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_of(manifests) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container(manifests)["env"]}


def test_without_a_shared_store_the_renderer_refuses_and_says_what_needs_one(tmp_path):
    with pytest.raises(ValueError) as refused:
        render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE)
    message = str(refused.value)
    assert "DELETE /orders/{id}: freshness denylist" in message and "GET /orders" not in message
    assert "--denylist-table" in message and "--eks-role-arn" in message and "no replica would see a logout" in message


def test_an_issuer_that_binds_tokens_needs_the_store_on_routes_without_proof(tmp_path):
    with pytest.raises(ValueError, match=r"issuer corp binds tokens \(binding.dpop\)"):
        render_k8s(load_text(tmp_path, BINDING_ONLY), "shop", image=IMAGE)
    assert env_of(render_k8s(load_text(tmp_path, BINDING_ONLY), "shop", image=IMAGE, **STORE))[
        "AUTHGATE_DENYLIST_TABLE"] == "authgate-prod-shop-revocation"


def test_with_the_table_every_replica_reads_it_through_the_irsa_role(tmp_path):
    manifests = render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE, **STORE)
    env = env_of(manifests)
    assert env["AUTHGATE_DENYLIST_TABLE"] == "authgate-prod-shop-revocation" and env["AWS_REGION"] == "eu-west-1"
    account = next(doc for doc in manifests if doc["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE}
    assert account["automountServiceAccountToken"] is True   # IRSA exchanges the projected token for credentials
    assert next(doc for doc in manifests if doc["kind"] == "Deployment")["spec"]["replicas"] >= 2


AKS = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a"
REDIS = "rediss://orders.westeurope.redis.azure.net:10000/0"


def test_aks_needs_a_redis_and_is_told_so(tmp_path):
    with pytest.raises(ValueError) as refused:
        render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE, aks_client_id=AKS)
    assert "--redis-url" in str(refused.value) and "--denylist-table" not in str(refused.value)


def test_with_a_redis_every_replica_reads_its_password_from_the_secret(tmp_path):
    manifests = render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE, aks_client_id=AKS, redis_url=REDIS)
    env = {item["name"]: item for item in container(manifests)["env"]}
    assert env["AUTHGATE_REDIS_URL"]["value"] == REDIS
    assert env["AUTHGATE_REDIS_PASSWORD"]["valueFrom"] == {"secretKeyRef": {
        "name": "authgate-forward-auth-redis", "key": "password"}}
    assert env["AUTHGATE_REDIS_USERNAME"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "AUTHGATE_DENYLIST_TABLE" not in env and "AUTHGATE_REDIS_ALLOW_PLAINTEXT" not in env
    assert not any(doc["kind"] == "Secret" for doc in manifests)   # the operator creates it; no password here


@pytest.mark.parametrize("options, message", [
    ({"redis_url": "rediss://user:hunter2@redis.example.com:6380/0"}, "written into the manifest"),
    ({"redis_url": "redis://redis.shop.svc.cluster.local:6379/0"}, "--redis-allow-plaintext"),
    ({"redis_url": "https://redis.example.com"}, "rediss://"),
    ({"redis_url": REDIS, **STORE}, "not both"),
    ({"redis_allow_plaintext": True}, "goes with --redis-url"),
])
def test_a_redis_that_would_be_unsafe_or_unclear_is_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message) as refused:
        render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE, **options)
    assert "hunter2" not in str(refused.value)


def test_a_plaintext_redis_inside_a_mesh_is_accepted_when_said(tmp_path):
    env = env_of(render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE,
                            redis_url="redis://redis.shop.svc.cluster.local:6379/0", redis_allow_plaintext=True))
    assert env["AUTHGATE_REDIS_ALLOW_PLAINTEXT"] == "true"


@pytest.mark.parametrize("options, message", [
    ({**STORE, "denylist_table": "no spaces allowed"}, "not a DynamoDB table name"),
    ({**STORE, "aws_region": "Ireland"}, "--aws-region 'Ireland'"),
    ({**STORE, "aws_region": None}, "--aws-region None"),
    ({"denylist_table": "authgate-prod-shop-revocation", "aws_region": "eu-west-1"}, "needs --eks-role-arn"),
    ({"aws_region": "eu-west-1"}, "--aws-region goes with --denylist-table"),
])
def test_a_store_that_cannot_be_reached_is_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        render_k8s(load_text(tmp_path, POLICY), "shop", image=IMAGE, **options)


def test_an_api_without_shared_state_renders_as_before(tmp_path):
    env = env_of(render_k8s(load_text(tmp_path, POLICY), "plain", image=IMAGE))
    assert "AUTHGATE_DENYLIST_TABLE" not in env and "AWS_REGION" not in env


def test_cli_takes_the_table(tmp_path):
    from stacks.cli import main
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    target = tmp_path / "k8s.yaml"
    argv = ["render", "k8s", "--api", "shop", "--image", IMAGE, "--policy", str(policy), "-o", str(target)]
    assert main(argv) != 0 and not target.exists()
    assert main([*argv, "--denylist-table", STORE["denylist_table"], "--aws-region", "eu-west-1",
                 "--eks-role-arn", ROLE]) == 0
    assert env_of([d for d in yaml.safe_load_all(target.read_text()) if d])["AUTHGATE_DENYLIST_TABLE"] == \
        STORE["denylist_table"]


@pytest.mark.parametrize("store", ["table", "redis"])
def test_the_service_starts_in_a_pod_with_exactly_what_the_manifest_gives_it(tmp_path, store):
    """The rendered container environment (the Secret's keys filled in as the kubelet would) is one the service
    accepts in a Kubernetes pod, where it refuses to start without a shared store."""
    from lambdas.forward_auth.service import ForwardAuthService
    from stacks.policy.render.route_table import route_table_json

    policy = load_text(tmp_path, POLICY)
    options = dict(STORE) if store == "table" else {"aks_client_id": AKS, "redis_url": REDIS}
    manifests = render_k8s(policy, "shop", image=IMAGE, **options)
    secret = {"password": "from-the-secret"}   # username absent: its optional reference sets nothing
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    for item in container(manifests)["env"]:
        if "value" in item:
            environ[item["name"]] = item["value"]
        elif item["valueFrom"]["secretKeyRef"]["key"] in secret:
            environ[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    table = tmp_path / "routes.json"
    table.write_text(route_table_json(policy, apis=["shop"]))
    environ["AUTHGATE_POLICY"] = str(table)   # the ConfigMap's mount
    checks = ForwardAuthService.from_env(environ).runtime.request_checks
    assert type(checks.replay).__name__ == ("DynamoDbTable" if store == "table" else "RedisStore")
    assert checks.denylist.store is checks.replay
