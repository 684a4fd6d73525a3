"""Session fixtures for the AWS infra tests: the whole app is synthesized once, through `authgate synth`."""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

# Every optional section switched on, so every construct is in the assembly the tests read.
FULL_CONTEXT = {
    "authgate:policy": "policies/example.yaml",
    "authgate:api": "orders",
    "authgate:stages": ["dev"],
    "authgate:cognito": {"issuer": "corp", "domain_prefix": "authgate-{stage}-orders"},
    "authgate:alb": {
        "certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "issuer": "corp", "client_id": "5alb0c1ient0id0example00000", "client_secret_name": "authgate/alb-client",
        "hosted_domain_url": "https://authgate-dev-orders.auth.eu-west-1.amazoncognito.com",
        "machine_paths": ["/internal/*"], "machine_scopes": ["orders-api/orders.read"]},
    "authgate:eks": {
        "cluster_name": "shop",
        "oidc_issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        "irsa": ["orders/orders-api"], "pod_identity": ["billing/billing-api"], "front_door": "http-api-vpc-link"},
    "authgate:github": {"repository": "example-org/shop", "ref": "refs/heads/main",
                        "managed_policy_arns": ["arn:aws:iam::111122223333:policy/shop-deploy"]},
    "authgate:websocket": {"api": "notifications", "token_source": "query"},
    "authgate:alarm_topic_arn": "arn:aws:sns:eu-west-1:111122223333:authgate-oncall",
}


@pytest.fixture(scope="session")
def authorizer_asset_dir(tmp_path_factory) -> Path:
    """A stand-in authorizer asset (the lambdas package without dependencies): templates need only its hash."""
    root = tmp_path_factory.mktemp("authorizer-asset")
    shutil.copytree(REPO / "lambdas", root / "lambdas", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory, authorizer_asset_dir):
    """Runs `authgate synth` once with every section on; returns (exit code, stdout, assembly dir)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.commands import synth

    out = tmp_path_factory.mktemp("cdk-out")
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    argv = ["--project-dir", str(REPO), "--authorizer-asset", str(authorizer_asset_dir), "-o", str(out)]
    for key, value in FULL_CONTEXT.items():
        argv += ["-c", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    cwd = os.getcwd()
    os.chdir(REPO)   # the policy path in context is relative to the project, as with `cdk synth`
    try:
        import contextlib
        import io
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = synth.run(parser.parse_args(argv))
    finally:
        os.chdir(cwd)
    return code, buffer.getvalue(), out


@pytest.fixture(scope="session")
def templates(synthesized) -> dict[str, dict]:
    """Stack id (Issuer, HttpApi, RestApi, WebSocketApi, Alb, EksFrontDoor, WorkloadIdentity, GithubOidc) -> template."""
    code, output, out = synthesized
    assert code == 0, output
    found = {}
    for path in sorted((out / "assembly-dev").glob("*.template.json")):
        stack_id = path.name.removeprefix("dev").split(".")[0][:-8]   # devHttpApiF550D7A5 -> HttpApi
        found[stack_id] = json.loads(path.read_text())
    return found


def resources_of(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}
