"""Fixtures the CLI tests share: one RS256 signing key per module and its public JWK set as a file."""
from __future__ import annotations

import json

import pytest

from tests.support.tokens import SigningKey


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("RS256")


@pytest.fixture()
def jwks_file(tmp_path, key):
    path = tmp_path / "keys.jwks.json"
    path.write_text(json.dumps(key.jwks()))
    return str(path)
