"""Signature-only verification of a compact JWS: structure, header rules, algorithm allow-list, key and signature.

No claim is read: the payload may be any bytes. This is the JWS layer the Verifier stands on, exposed for
`authgate verify --signature-only` and for JOSE signature test vectors whose payloads are not JWT claims sets.
"""
from __future__ import annotations

from typing import Any, Iterable

from .compact import check_header, decode_json_object, decode_segment, split_token
from .errors import TokenRejected
from .key_source import KeySource
from .names import name_set


def verify_jws(token: Any, keys: KeySource, *, algorithms: Iterable[str]) -> tuple[dict, bytes]:
    """(header, payload bytes) of a compact JWS whose signature verifies with a key from `keys`; every other
    outcome raises TokenRejected (malformed, token_too_large, unsupported_alg, alg_not_allowed, unknown_kid,
    bad_signature, jwks_unavailable)."""
    allowed = name_set(algorithms, "algorithms")
    header_segment, payload_segment, signature_segment = split_token(token)
    header = decode_json_object(decode_segment(header_segment, "header"), "header")
    check_header(header)
    alg = header["alg"]
    if alg not in allowed:
        raise TokenRejected("alg_not_allowed", f"the token is signed with {alg}, which is not allowed here",
                            expected=sorted(allowed), found=alg)
    payload = decode_segment(payload_segment, "payload")
    signature = decode_segment(signature_segment, "signature")
    key = keys.get_key(header.get("kid"), alg)
    if not key.verify(alg, header_segment + b"." + payload_segment, signature):
        raise TokenRejected("bad_signature", f"the token's {alg} signature does not verify with key "
                            f"{(key.kid or '(no kid)')[:64]!r}", hint="the token was altered or signed by another key")
    return header, payload
