"""The Docker-free authorizer asset: right-platform wheels, trimmed, route table inside, runnable as Lambda runs it."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.aws.authorizer_asset import ROUTE_TABLE_FILE, build_authorizer_asset, zipped_size

ELF_MACHINE = {"x86_64": 0x3E, "arm64": 0xB7}


def _machine(shared_object: Path) -> int:
    header = shared_object.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from tests.support.tokens import SigningKey
    key = SigningKey.generate("RS256")
    document = {"format": "authgate.routes/v1",
                "issuers": {"corp": {"issuer": "https://idp.example.test", "audiences": ["orders-api"],
                                     "jwks": key.jwks()}},
                "apis": {"orders": {"routes": [{"route_key": "GET /orders", "method": "GET", "path": "/orders",
                                                "issuers": ["corp"], "scopes": ["orders:read"]}]}}}
    return key, document


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_asset_holds_platform_wheels_and_the_route_table(tmp_path, table, architecture):
    out = build_authorizer_asset(tmp_path / "asset", architecture=architecture, route_table=table[1])
    assert json.loads((out / ROUTE_TABLE_FILE).read_text()) == table[1]
    assert (out / "lambdas" / "authorizers" / "rest.py").is_file()
    assert (out / "lambdas" / "validation" / "verifier.py").is_file()
    [rust] = list((out / "cryptography" / "hazmat" / "bindings").glob("_rust*.so"))
    assert _machine(rust) == ELF_MACHINE[architecture]
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("RECORD"))
    assert zipped_size(out) < 8 * 1024 * 1024


@pytest.mark.skipif(platform.machine() != "x86_64" or sys.version_info[:2] < (3, 11),
                    reason="runs the x86_64 abi3 wheel on this interpreter")
def test_asset_runs_the_rest_handler_from_its_own_files(tmp_path, table):
    from tests.support.tokens import mint
    key, document = table
    out = build_authorizer_asset(tmp_path / "asset", architecture="x86_64", route_table=document)
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {mint(key, scope='orders:read')}",
             "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/orders"}
    script = ("import json, sys, lambdas.authorizers.rest as r, cryptography; "
              "assert cryptography.__file__.startswith(sys.argv[1]), cryptography.__file__; "
              "print(json.dumps(r.handler(json.loads(sys.argv[2]))))")
    env = {"PATH": os.environ.get("PATH", ""), "AUTHGATE_POLICY": str(out / ROUTE_TABLE_FILE),
           "AUTHGATE_API": "orders", "PYTHONPATH": str(out)}
    result = subprocess.run([sys.executable, "-I", "-c", script.replace("import json", "import sys; sys.path.insert("
                             "0, sys.argv[1]); import json"), str(out), json.dumps(event)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_cdk_local_bundling_builds_the_asset_without_docker(tmp_path, table, monkeypatch):
    monkeypatch.setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from stacks.aws.authorizer_asset import authorizer_code
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "AssetTest")
    lambda_.Function(stack, "Authorizer", runtime=lambda_.Runtime.PYTHON_3_12, architecture=lambda_.Architecture.ARM_64,
                     handler="lambdas.authorizers.rest.handler",
                     code=authorizer_code(table[1], architecture="arm64"))
    assembly = app.synth()
    staged = [p for p in Path(assembly.directory).glob("asset.*") if p.is_dir()]
    assert len(staged) == 1
    assert json.loads((staged[0] / ROUTE_TABLE_FILE).read_text()) == table[1]
    [rust] = list((staged[0] / "cryptography" / "hazmat" / "bindings").glob("_rust*.so"))
    assert _machine(rust) == ELF_MACHINE["arm64"]
