"""Signing keys and token minting for tests: real keys, real signatures, any header or claim a test needs.

Tokens are built by hand (not with PyJWT) so tests can produce malformed and hostile tokens as easily as good ones.
"""
from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://idp.example.test"
AUDIENCE = "orders-api"

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_CURVES = {"ES256": (ec.SECP256R1, "P-256", 32), "ES384": (ec.SECP384R1, "P-384", 48),
              "ES512": (ec.SECP521R1, "P-521", 66)}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def _int_b64(n: int, length: int | None = None) -> str:
    length = length or max(1, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(length, "big"))


@dataclass
class SigningKey:
    """A private key with its algorithm and kid; `jwk()` is the public JWK an issuer would publish."""

    alg: str
    private_key: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @classmethod
    def generate(cls, alg: str = "RS256", kid: str | None = None, rsa_bits: int = 2048) -> "SigningKey":
        if alg.startswith(("RS", "PS")):
            key: Any = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        elif alg in _EC_CURVES:
            key = ec.generate_private_key(_EC_CURVES[alg][0]())
        elif alg == "EdDSA":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(f"no key type for alg {alg}")
        return cls(alg=alg, private_key=key, kid=kid or uuid.uuid4().hex[:16])

    def jwk(self, *, include_alg: bool = True, use: str | None = "sig") -> dict:
        pub = self.private_key.public_key()
        if self.alg.startswith(("RS", "PS")):
            numbers = pub.public_numbers()
            out = {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        elif self.alg in _EC_CURVES:
            _, crv, size = _EC_CURVES[self.alg]
            numbers = pub.public_numbers()
            out = {"kty": "EC", "crv": crv, "x": _int_b64(numbers.x, size), "y": _int_b64(numbers.y, size)}
        else:
            from cryptography.hazmat.primitives import serialization
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            out = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        out["kid"] = self.kid
        if include_alg:
            out["alg"] = self.alg
        if use:
            out["use"] = use
        return out

    def jwks(self) -> dict:
        return {"keys": [self.jwk()]}

    def sign(self, signing_input: bytes, alg: str | None = None) -> bytes:
        alg = alg or self.alg
        key = self.private_key
        if alg.startswith("RS"):
            return key.sign(signing_input, padding.PKCS1v15(), _HASHES[alg[2:]]())
        if alg.startswith("PS"):
            h = _HASHES[alg[2:]]()
            return key.sign(signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        if alg in _EC_CURVES:
            size = _EC_CURVES[alg][2]
            der = key.sign(signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
            r, s = decode_dss_signature(der)
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # JWS uses raw r||s, not DER
        if alg == "EdDSA":
            return key.sign(signing_input)
        raise ValueError(f"cannot sign with {alg}")


def standard_claims(*, issuer: str = ISSUER, audience: Any = AUDIENCE, subject: str = "user-123",
                    lifetime: int = 300, now: float | None = None, **extra: Any) -> dict:
    now = int(now if now is not None else time.time())
    claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime,
              "jti": uuid.uuid4().hex}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def mint(key: SigningKey, claims: dict | None = None, *, header: dict | None = None, alg: str | None = None,
         typ: str | None = "at+jwt", **claim_overrides: Any) -> str:
    """A compact JWS signed by `key`. `header` entries override the defaults (None removes one)."""
    alg = alg or key.alg
    hdr: dict = {"alg": alg, "kid": key.kid}
    if typ:
        hdr["typ"] = typ
    for k, v in (header or {}).items():
        if v is None:
            hdr.pop(k, None)
        else:
            hdr[k] = v
    body = standard_claims(**claim_overrides) if claims is None else dict(claims)
    signing_input = f"{b64url_json(hdr)}.{b64url_json(body)}".encode("ascii")
    return f"{signing_input.decode()}.{b64url(key.sign(signing_input, alg))}"


def json_nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in a decoded JSON value (a top-level object is 1), without recursion."""
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, (dict, list))]
    return depth
