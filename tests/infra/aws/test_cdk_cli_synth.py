"""`npx cdk synth` (the pinned AWS CDK CLI reading cdk.json) works offline, without credentials, like `authgate synth`."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CDK = REPO / "node_modules" / ".bin" / "cdk"


def test_cdk_cli_synthesizes_the_app_from_cdk_json(tmp_path, authorizer_asset_dir):
    if not CDK.exists():
        if os.environ.get("CI"):
            pytest.fail("node_modules/.bin/cdk is missing: `make setup` installs the pinned AWS CDK CLI")
        pytest.skip("the AWS CDK CLI is not installed; run `make setup`")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true",
               CDK_DISABLE_NOTICES="true", AWS_EC2_METADATA_DISABLED="true")
    out = tmp_path / "cdk.out"
    result = subprocess.run([str(CDK), "synth", "--no-notices", "-q", "-o", str(out),
                             "-c", f"authgate:authorizer_asset_dir={authorizer_asset_dir}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    templates = {p.name: json.loads(p.read_text()) for p in out.rglob("*.template.json")}
    http_api = next(t for name, t in templates.items() if "HttpApi" in name)
    issuers = {r["Properties"]["JwtConfiguration"]["Issuer"] for r in http_api["Resources"].values()
               if r["Type"] == "AWS::ApiGatewayV2::Authorizer" and r["Properties"]["AuthorizerType"] == "JWT"}
    assert issuers == {"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ex4mpLe01"}


def test_cdk_synth_of_an_invalid_policy_prints_the_error_not_a_traceback(tmp_path):
    if not CDK.exists():
        if os.environ.get("CI"):
            pytest.fail("node_modules/.bin/cdk is missing: `make setup` installs the pinned AWS CDK CLI")
        pytest.skip("the AWS CDK CLI is not installed; run `make setup`")
    bad = tmp_path / "bad.yaml"
    bad.write_text("issuers:\n  corp: {issuer: https://idp.example.com, audiences: [a], public: yes}\n"
                   "apis:\n  orders:\n    routes:\n      'GET /x': {issuers: [corp]}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true",
               CDK_DISABLE_NOTICES="true", AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run([str(CDK), "synth", "--no-notices", "-q", "-o", str(tmp_path / "cdk.out"),
                             "-c", f"authgate:policy={bad}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"authgate: {bad}:2: issuers.corp.public: unknown field 'public'" in result.stderr
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr, result.stderr


def test_authgate_synth_json_says_each_routes_authorizer_and_the_templates(tmp_path, authorizer_asset_dir, capsys,
                                                                           monkeypatch):
    from stacks.cli import main

    monkeypatch.chdir(REPO)
    out = tmp_path / "cdk.out"
    assert main(["synth", "--json", "--authorizer-asset", str(authorizer_asset_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("{"), printed[:2000]
    document = json.loads(printed)
    by_route = {entry["route"]: entry for entry in document["http_api"]}
    assert document["api"] == "orders"
    assert by_route["GET /health"]["authorizer"] == "public"
    assert by_route["GET /orders"] == {"route": "GET /orders", "authorizer": "native", "name": "jwt-corp",
                                       "scopes": ["orders-api/orders.read"], "because": by_route["GET /orders"]["because"]}
    lambda_routes = [e for e in document["http_api"] if e["authorizer"] == "lambda"]
    assert lambda_routes and all(e["name"] == "authgate-orders" and e["because"] for e in lambda_routes)
    assert document["templates"] and all(Path(t).is_file() for t in document["templates"])
