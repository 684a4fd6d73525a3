"""Fixtures every test kind shares: the run's trusted signing key (tests/support/keys.py; most tests need one trusted
key, not their own). Route-table builders are in tests/support/route_tables.py, tokens in tests/support/tokens.py. A
test that needs a key of its own (rotation, a stranger's key, a fixed kid) still generates it."""
from __future__ import annotations

import pytest

from tests.support.keys import SIGNING_KEY
from tests.support.tokens import SigningKey


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    """The trusted RS256 key of the route tables tests build (tests.support.route_tables.table_document)."""
    return SIGNING_KEY


@pytest.fixture(scope="session")
def key(signing_key) -> SigningKey:
    """The same key, under the name most modules use."""
    return signing_key
