"""Shared helpers for the policy tests: write a policy to a temp dir and load it; compare against golden files."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from stacks.policy import AuthPolicy, PolicyError, load_policy

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE_GOLDEN_ENV = "AUTHGATE_UPDATE_GOLDEN"
REPO = Path(__file__).resolve().parents[3]

ISSUER_BLOCK = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
"""


def write_policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, **kwargs) -> AuthPolicy:
    return load_policy(write_policy(tmp_path, text), **kwargs)


def policy_error(tmp_path: Path, text: str, **kwargs) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_text(tmp_path, text, **kwargs)
    return info.value


def assert_golden(name: str, actual: str) -> None:
    """Compare with golden/<name>; AUTHGATE_UPDATE_GOLDEN=1 rewrites it (review the diff before committing)."""
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_GOLDEN_ENV) == "1":
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with {UPDATE_GOLDEN_ENV}=1 and review it")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (f"{name} differs from its golden file; if the change is intended, rerun with "
                                f"{UPDATE_GOLDEN_ENV}=1 and commit the reviewed diff")
