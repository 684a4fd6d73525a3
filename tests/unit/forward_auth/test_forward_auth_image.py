"""The forward-auth image's Dockerfile: the same pins as pyproject.toml, non-root, its entry point real, checkov clean."""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "lambdas" / "forward_auth" / "Dockerfile"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def project_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["serve"]:
        name, _, version = spec.partition("==")
        pins[name.lower()] = version
    return pins


def test_the_image_installs_exactly_the_pinned_versions():
    text = DOCKERFILE.read_text()
    installed = dict(re.findall(r"\b(cryptography|uvicorn|boto3)==([0-9][0-9.]*)", text))
    pins = project_pins()
    assert installed == {name: pins[name] for name in ("cryptography", "uvicorn", "boto3")}


def test_the_image_runs_as_a_non_root_user_and_its_factory_exists():
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    module, _, attribute = re.search(r'"(lambdas\.forward_auth\.app):(\w+)"', text).group(0).strip('"').partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_checkov_passes_the_dockerfile():
    if not CHECKOV.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHECKOV} is missing; `make setup` installs it")
        pytest.skip(f"{CHECKOV} is not installed")
    result = subprocess.run([str(CHECKOV), "-f", str(DOCKERFILE), "--framework", "dockerfile", "--skip-download",
                             "--compact", "-o", "json"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    report = json.loads(result.stdout)
    assert report["results"]["failed_checks"] == []
    assert report["summary"]["passed"] > 20
