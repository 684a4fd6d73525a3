"""Fixtures the CLI tests share: the run's RS256 signing key (tests/conftest.py) as a JWK set file."""
from __future__ import annotations

import json

import pytest


@pytest.fixture()
def jwks_file(tmp_path, key):
    path = tmp_path / "keys.jwks.json"
    path.write_text(json.dumps(key.jwks()))
    return str(path)
