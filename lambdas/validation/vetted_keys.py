"""The deployment's record of the bundled RSA keys its builder already tested for a prime modulus.

A prime RSA modulus makes a key forgeable (anyone computes its private exponent), so every RSA key is tested when a
key set is parsed (jwk.modulus_is_probably_prime). The test is one full-size modular exponentiation, about 5 ms of
CPU for a 2048-bit key, paid on every cold start for keys bundled in the route table, although those keys never
change between builds. So the code that puts a route table into a Lambda asset (the asset builder, and the CDK synth
that adds a policy's table to a prebuilt asset) runs every check of this same module on each bundled RSA key and
writes beside the table the SHA-256 of each modulus that passed them all.

At a cold start the authorizer reads that record (`trust_vetted_keys_beside`); the prime-modulus test is then
skipped for exactly those moduli. Every other check of every key still runs (size, exponent, ROCA, the public key
itself), and any other modulus, such as one fetched from a jwks_uri or one edited into the table after the build,
is tested as always. Whoever could write the record could as well replace the route table's keys, so trusting it
grants nothing more than trusting the table does.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from .jwk import b64url_decode, modulus_is_probably_prime, parse_jwk, trust_tested_moduli

VETTED_KEYS_FILE = "authgate_vetted_keys.json"
FORMAT = "authgate.vetted-keys/v1"


def vetted_keys_record(route_table: Mapping[str, Any]) -> dict[str, Any]:
    """The record of the table's bundled RSA keys that pass every key check, the prime-modulus test run here for
    each: what `write_vetted_keys` writes. A key that fails is left out, so the cold start tests (and refuses) it
    again; the table itself must load (RouteTableError otherwise)."""
    from .route_table import RouteTable  # the table codec loads only when a builder asks

    table = RouteTable.load(route_table)
    moduli = set()
    for issuer in table.issuers.values():
        for key in (issuer.jwks or {}).get("keys", ()):
            if not isinstance(key, Mapping) or key.get("kty") != "RSA":
                continue
            try:
                parse_jwk(key)
                n_bytes = b64url_decode(key["n"].encode("ascii"))
            except ValueError:
                continue
            # Run here whatever an earlier trust said: a record vouches only for tests that really ran.
            if not modulus_is_probably_prime(int.from_bytes(n_bytes, "big")):
                moduli.add(_sha256_hex(n_bytes))
    return {"format": FORMAT, "rsa_moduli_sha256": sorted(moduli)}


def write_vetted_keys(directory: str | os.PathLike, route_table: Mapping[str, Any]) -> None:
    """Vet the table's bundled keys and write the record into `directory`, beside the route table."""
    record = vetted_keys_record(route_table)
    with open(os.path.join(directory, VETTED_KEYS_FILE), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")


def trust_vetted_keys_beside(route_table_path: str) -> int:
    """Trust the record beside the route table at `route_table_path`, when there is one; the number of moduli it
    names. A record that cannot be read or is not one is ignored (every key is then tested as without it)."""
    path = os.path.join(os.path.dirname(os.path.abspath(route_table_path)), VETTED_KEYS_FILE)
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read())
    except (OSError, ValueError):
        return 0
    digests = record.get("rsa_moduli_sha256") if isinstance(record, dict) and record.get("format") == FORMAT else None
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        return 0
    trust_tested_moduli(digests)
    return len(digests)


def _sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
