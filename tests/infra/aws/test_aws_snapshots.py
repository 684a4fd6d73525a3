"""Snapshot tests: any change to a synthesized AWS template shows up as a diff against tests/infra/aws/snapshots.

After an intended change, refresh them and review the diff before committing:
    AUTHGATE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/infra/aws/test_aws_snapshots.py
"""
from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("AUTHGATE_UPDATE_SNAPSHOTS") == "1"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
STACK_IDS = ["Issuer", "HttpApi", "RestApi", "WebSocketApi", "Alb", "EksFrontDoor", "WorkloadIdentity",
             "GithubOidc"]


AUTHORIZER_RUNTIME = "<the Python building the authorizer asset>"


def normalise(template: dict) -> str:
    """Asset hashes change with every edit of the Lambda code; the template's meaning does not. The authorizers'
    runtime is the interpreter that builds their asset (stacks/aws/authorizer_asset.py;
    tests/infra/aws/test_aws_authorizer_asset.py checks it), so it differs between machines and is not part of the
    snapshot."""
    template = dict(template)
    template["Resources"] = {k: v for k, v in template["Resources"].items() if v["Type"] != "AWS::CDK::Metadata"}
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and str(properties.get("Handler")).startswith(
                "lambdas.authorizers."):
            template["Resources"][name] = {**resource, "Properties": {**properties, "Runtime": AUTHORIZER_RUNTIME}}
    template.pop("Conditions", None) if set(template.get("Conditions", {})) == {"CDKMetadataAvailable"} else None
    text = json.dumps(template, indent=1, sort_keys=True)
    return ASSET_HASH.sub("<asset-hash>", text) + "\n"


@pytest.mark.parametrize("stack_id", STACK_IDS)
def test_template_matches_snapshot(templates, stack_id):
    current = normalise(templates[stack_id])
    path = SNAPSHOTS / f"{stack_id}.json"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(current)
        return
    assert path.exists(), f"no snapshot for {stack_id}; create it with AUTHGATE_UPDATE_SNAPSHOTS=1"
    expected = path.read_text()
    if current != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), current.splitlines(True),
                                            f"snapshots/{stack_id}.json", "synthesized", n=2))
        pytest.fail(f"{stack_id} template changed; if intended, refresh with AUTHGATE_UPDATE_SNAPSHOTS=1 and "
                    f"review:\n{diff[:6000]}")


def test_authorizer_runtime_is_the_asset_builders(templates):
    from stacks.aws.authorizer_asset import lambda_runtime_name
    runtimes = {resource["Properties"]["Runtime"] for template in templates.values()
                for resource in template["Resources"].values()
                if resource["Type"] == "AWS::Lambda::Function"
                and resource["Properties"]["Handler"].startswith("lambdas.authorizers.")}
    assert runtimes == {lambda_runtime_name()}


def test_normalise_hides_asset_hashes_only():
    template = {"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {
        "Code": {"S3Key": "0" * 63 + "a.zip"}, "Handler": "h"}}}}
    text = normalise(template)
    assert "<asset-hash>.zip" in text and '"Handler": "h"' in text
