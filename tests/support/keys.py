"""The run's trusted RS256 signing key, generated once per test run (an RSA-2048 key takes tens of milliseconds).

Tests take it as the `signing_key` (or `key`) fixture of tests/conftest.py; a module whose tables or issuer configs
are module constants imports SIGNING_KEY. A test that needs a key of its own (rotation, a stranger's key, a fixed
kid, another algorithm) still generates one."""
from __future__ import annotations

from tests.support.tokens import SigningKey

SIGNING_KEY = SigningKey.generate("RS256")
