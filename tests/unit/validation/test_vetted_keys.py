"""The builder's record of the bundled RSA keys it tested: written beside the route table, trusted at a cold start
for exactly those moduli, and for nothing else."""
from __future__ import annotations

import json

import pytest

from lambdas.authorizers.runtime import AuthorizerRuntime
from lambdas.validation import jwk
from lambdas.validation.vetted_keys import (FORMAT, VETTED_KEYS_FILE, trust_vetted_keys_beside, vetted_keys_record,
                                            write_vetted_keys)
from tests.support.route_tables import table_document
from tests.support.tokens import SigningKey


@pytest.fixture
def prime_tests(monkeypatch):
    """A fresh trust set for the test, and the moduli the prime-modulus test ran on."""
    monkeypatch.setattr(jwk, "_build_tested_moduli", set())
    tested: list[int] = []
    real = jwk.modulus_is_probably_prime

    def counting(n: int) -> bool:
        tested.append(n)
        return real(n)

    monkeypatch.setattr(jwk, "modulus_is_probably_prime", counting)
    return tested


def modulus(key: SigningKey) -> int:
    return int.from_bytes(jwk.b64url_decode(key.jwk()["n"].encode()), "big")


def test_the_record_names_every_bundled_rsa_modulus_and_no_other_key(signing_key, prime_tests):
    ec_key = SigningKey.generate("ES256")
    document = table_document(signing_key)
    document["issuers"]["corp"]["jwks"] = {"keys": [signing_key.jwk(), ec_key.jwk()]}
    document["issuers"]["corp"]["algorithms"] = ["RS256", "ES256"]
    record = vetted_keys_record(document)
    assert record["format"] == FORMAT
    assert len(record["rsa_moduli_sha256"]) == 1
    assert prime_tests == [modulus(signing_key)], "building the record runs the prime-modulus test"


def test_a_cold_start_beside_a_record_skips_the_prime_test_for_the_recorded_moduli_only(tmp_path, signing_key,
                                                                                         prime_tests):
    other = SigningKey.generate("RS256", kid="other")
    document = table_document(signing_key)
    (tmp_path / "routes.json").write_text(json.dumps(document))
    write_vetted_keys(tmp_path, document)
    prime_tests.clear()
    document["issuers"]["corp"]["jwks"] = {"keys": [signing_key.jwk(), other.jwk()]}  # edited after the build
    (tmp_path / "routes.json").write_text(json.dumps(document))
    AuthorizerRuntime.from_env({"AUTHGATE_POLICY": str(tmp_path / "routes.json"), "AUTHGATE_API": "orders"})
    assert prime_tests == [modulus(other)]


@pytest.mark.parametrize("content", ["not json", json.dumps({"format": "something/v9", "rsa_moduli_sha256": []}),
                                     json.dumps({"format": FORMAT, "rsa_moduli_sha256": "abc"}), json.dumps([1])])
def test_an_unreadable_or_foreign_record_is_ignored_and_every_key_is_tested(tmp_path, signing_key, prime_tests,
                                                                            content):
    (tmp_path / "routes.json").write_text(json.dumps(table_document(signing_key)))
    (tmp_path / VETTED_KEYS_FILE).write_text(content)
    assert trust_vetted_keys_beside(str(tmp_path / "routes.json")) == 0
    AuthorizerRuntime.from_env({"AUTHGATE_POLICY": str(tmp_path / "routes.json"), "AUTHGATE_API": "orders"})
    assert prime_tests == [modulus(signing_key)]


def test_without_a_record_every_key_is_tested(tmp_path, signing_key, prime_tests):
    (tmp_path / "routes.json").write_text(json.dumps(table_document(signing_key)))
    assert trust_vetted_keys_beside(str(tmp_path / "routes.json")) == 0
    AuthorizerRuntime.from_env({"AUTHGATE_POLICY": str(tmp_path / "routes.json"), "AUTHGATE_API": "orders"})
    assert prime_tests == [modulus(signing_key)]


def test_a_key_that_fails_a_check_is_left_out_of_the_record(tmp_path, signing_key, prime_tests):
    from cryptography.hazmat.primitives.asymmetric import rsa
    short = rsa.generate_private_key(65537, 1024).public_key().public_numbers().n
    document = table_document(signing_key)
    document["issuers"]["corp"]["jwks"] = {"keys": [
        signing_key.jwk(), {"kty": "RSA", "kid": "short", "n": jwk.b64url_encode(short.to_bytes(128, "big")),
                            "e": "AQAB"}]}
    write_vetted_keys(tmp_path, document)
    record = json.loads((tmp_path / VETTED_KEYS_FILE).read_text())
    assert record["rsa_moduli_sha256"] == vetted_keys_record(table_document(signing_key))["rsa_moduli_sha256"]
