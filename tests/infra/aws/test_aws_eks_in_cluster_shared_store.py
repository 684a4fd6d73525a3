"""EKS in-cluster front door for an API whose decisions need state every replica shares: the stage's revocation
table gets a fixed name, the forward-auth service account an IRSA role with the authorizers' grant on it (read
entries, write DPoP replay records, nothing else), and the manifests written for GitOps name the table, its region
and the role; without a pinned account and region synthesis stops and says why."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from stacks.aws.refusals import UnsupportedConfiguration

HERE = Path(__file__).resolve().parent
POLICY = HERE / "in_cluster_shared_policy.yaml"
CERT = "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/authgate-forward-auth@sha256:" + "ab" * 32
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
EKS = {"cluster_name": "shop", "oidc_issuer": ISSUER, "front_door": "in-cluster",
       "in_cluster": {"certificate_arn": CERT, "image": IMAGE, "backend": "orders.shop:8080",
                      "trusted_proxies": "10.0.0.0/16", "public_origin": "https://orders.example.com"}}
PINNED = {"authgate:account": "111122223333", "authgate:region": "eu-west-1"}


def build_app(out: Path, asset: Path, **context):
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from stacks.aws.app import add_nag_checks, build
    from stacks.aws.settings import AppSettings

    app = App(outdir=str(out), context={
        "authgate:policy": str(POLICY), "authgate:api": "orders", "authgate:stages": ["prod"],
        "authgate:authorizer_asset_dir": str(asset), "authgate:eks": EKS, **context})
    build(app, AppSettings.from_context(app.node.try_get_context))
    add_nag_checks(app)
    return app


@pytest.fixture(scope="module")
def assembly(tmp_path_factory, authorizer_asset_dir):
    out = tmp_path_factory.mktemp("in-cluster-shared")
    build_app(out, authorizer_asset_dir, **PINNED).synth()   # cdk-nag: an unacknowledged finding raises here
    return out / "assembly-prod"


def template(assembly: Path, stack: str) -> dict:
    [path] = assembly.glob(f"prod{stack}" + "?" * 8 + ".template.json")
    return json.loads(path.read_text())


def resources(doc: dict, kind: str) -> dict:
    return {k: v["Properties"] for k, v in doc["Resources"].items() if v["Type"] == kind}


def forward_auth_env(assembly: Path) -> dict[str, str]:
    docs = [d for d in yaml.safe_load_all((assembly / "authgate-in-cluster" / "forward-auth.yaml").read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    return {**env, "role": account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]}


def test_the_table_has_the_name_the_manifests_give_the_replicas(assembly):
    [table] = resources(template(assembly, "Revocation"), "AWS::DynamoDB::Table").values()
    env = forward_auth_env(assembly)
    assert table["TableName"] == env["AUTHGATE_DENYLIST_TABLE"] == "authgate-prod-orders-revocation"
    assert env["AWS_REGION"] == "eu-west-1"
    # DPoP proofs' htu and the gateway pods whose forwarded facts count, from authgate:eks.in_cluster.
    assert env["AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN"] == "https://orders.example.com"
    assert env["AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES"] == "10.0.0.0/16"


def test_the_pods_role_trusts_one_service_account_and_may_only_read_and_write_replay_records(assembly):
    doc = template(assembly, "EksInCluster")
    [role] = [r for r in resources(doc, "AWS::IAM::Role").values()
              if r.get("RoleName") == "authgate-prod-orders-forward-auth"]
    assert forward_auth_env(assembly)["role"] == "arn:aws:iam::111122223333:role/authgate-prod-orders-forward-auth"
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert "oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF" in json.dumps(
        trust["Principal"])
    conditions = json.dumps(doc["Resources"])
    assert "system:serviceaccount:authgate:authgate-forward-auth" in conditions
    statements = [s for p in resources(doc, "AWS::IAM::Policy").values() for s in p["PolicyDocument"]["Statement"]]
    dynamo = {s["Sid"]: s for s in statements if str(s["Action"]).startswith("dynamodb:")}
    assert set(dynamo) == {"RevocationRead", "RevocationWriteReplay"}
    assert dynamo["RevocationRead"]["Action"] == "dynamodb:BatchGetItem"
    assert dynamo["RevocationWriteReplay"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["dpop:*"]}}


def test_without_a_pinned_account_and_region_synthesis_stops(tmp_path, authorizer_asset_dir):
    with pytest.raises(UnsupportedConfiguration, match="pin authgate:account and authgate:region"):
        build_app(tmp_path / "out", authorizer_asset_dir)
