"""policies/authgate.schema.json: generated from the model, kept current, and accepting the example policies."""
from __future__ import annotations

import json

import jsonschema
import yaml

from stacks.policy.schema import schema_text
from tests.unit.policy.policy_testing import REPO

SCHEMA_PATH = REPO / "policies/authgate.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_published_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "policies/authgate.schema.json is stale: regenerate it with "
        "`.venv/bin/python -m stacks.policy.schema > policies/authgate.schema.json`")


def test_example_policies_validate_against_the_schema():
    for name in ("example.yaml", "local.yaml"):
        data = yaml.safe_load((REPO / "policies" / name).read_text(encoding="utf-8"))
        assert [e.message for e in validator().iter_errors(data)] == [], name


def test_schema_catches_what_editors_should_flag():
    bad = {
        "issuers": {"corp": {"issuer": "https://idp.example.com", "audiences": ["a"], "profile": "azur"}},
        "apis": {"orders": {"routes": {"get /orders": {"issuers": ["corp"], "scope": ["x"]}}}},
    }
    messages = " | ".join(e.message for e in validator().iter_errors(bad))
    assert "'azur' is not one of" in messages
    assert "'get /orders' does not match" in messages
    assert "Additional properties are not allowed ('scope' was unexpected)" in messages
