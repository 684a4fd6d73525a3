"""DPoP proofs and bound tokens for tests: real keys and signatures, any claim or header a test needs to get wrong."""
from __future__ import annotations

import time
import uuid
from typing import Any

from lambdas.validation.dpop import access_token_hash, jwk_thumbprint
from tests.support.tokens import SigningKey, b64url, b64url_json

# RFC 9449 section 7.1, Figure 13: a proof for GET https://resource.example.org/protectedresource made at
# 1562262618 for the access token of Figure 12, signed by the key whose thumbprint Figure 9 gives.
RFC9449_ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
RFC9449_ATH = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
RFC9449_JWK = {"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
               "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"}
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
RFC9449_RESOURCE_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0Rs"
    "cEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2"
    "In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90"
    "ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFF"
    "byJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA")
RFC9449_RESOURCE_URI = "https://resource.example.org/protectedresource"
RFC9449_PROOF_IAT = 1562262618
# RFC 7638 section 3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
    "n": ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n"
          "3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zg"
          "dAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
          "Cur-kEgU8awapJzKnqDKgw")}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def public_jwk(key: SigningKey) -> dict:
    """The client's public key as a DPoP header carries it (no kid, alg or use needed)."""
    return {k: v for k, v in key.jwk(include_alg=False, use=None).items() if k != "kid"}


def thumbprint(key: SigningKey) -> str:
    return jwk_thumbprint(public_jwk(key))


def make_proof(key: SigningKey, method: str, uri: str, access_token: str | None, *, now: float | None = None,
               header: dict | None = None, claims: dict | None = None, alg: str | None = None) -> str:
    """A DPoP proof signed by `key`. `header`/`claims` entries override the defaults (None removes one)."""
    hdr: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg or key.alg, "jwk": public_jwk(key)}
    body: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "htu": uri,
                            "iat": int(time.time() if now is None else now)}
    if access_token is not None:
        body["ath"] = access_token_hash(access_token)
    for target, overrides in ((hdr, header), (body, claims)):
        for name, value in (overrides or {}).items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
    signing_input = f"{b64url_json(hdr)}.{b64url_json(body)}".encode("ascii")
    # Signed with the key's own algorithm whatever the header claims, so a test can lie about alg.
    return f"{signing_input.decode()}.{b64url(key.sign(signing_input, alg or key.alg))}"


class _FromNow:
    """A time relative to when the test runs, not to when its module was collected (a long suite collects minutes
    before it runs): `NOW + 600` in a parameter table, resolved by `at_test_time`."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def __add__(self, seconds: int) -> "_FromNow":
        return _FromNow(self.offset + seconds)

    def __sub__(self, seconds: int) -> "_FromNow":
        return _FromNow(self.offset - seconds)


NOW = _FromNow()


def at_test_time(value: Any) -> Any:
    """`value` with every NOW-relative time inside it (dicts, lists) turned into epoch seconds now."""
    if isinstance(value, _FromNow):
        return int(time.time()) + value.offset
    if isinstance(value, dict):
        return {k: at_test_time(v) for k, v in value.items()}
    if isinstance(value, list):
        return [at_test_time(v) for v in value]
    return value


def dpop_request(send, key: SigningKey, method: str, uri: str, access_token: str, *,
                 nonce: str | None = None) -> tuple[int, dict, str | None]:
    """One request as an RFC 9449 client makes it: a fresh proof (carrying `nonce`, the last DPoP-Nonce the server
    gave, when there is one); when the answer is 401 with `error="use_dpop_nonce"` and a DPoP-Nonce header, a new
    proof with that nonce, sent once more (section 9). `send(proof)` performs the request and returns (status,
    headers with lower-case names). Returns (status, headers, the nonce to send next time)."""
    claims = {"nonce": nonce} if nonce else None
    status, headers = send(make_proof(key, method, uri, access_token, claims=claims))
    fresh = headers.get("dpop-nonce")
    if status == 401 and fresh and 'error="use_dpop_nonce"' in headers.get("www-authenticate", ""):
        status, headers = send(make_proof(key, method, uri, access_token, claims={"nonce": fresh}))
    return status, headers, headers.get("dpop-nonce") or fresh or nonce
