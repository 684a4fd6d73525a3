"""The identity headers a platform writes in front of a backend (ALB x-amzn-oidc-data, API Gateway's
X-Apigateway-Api-Userinfo, EasyAuth's X-MS-CLIENT-PRINCIPAL), read with the validation module's strict decoders.

These headers are only as trustworthy as the path they came by, and anyone who can reach the backend directly can
write them; so they are parsed exactly as strictly as a token (UTF-8 JSON objects without duplicate members,
NaN/Infinity, lone surrogates or deep nesting), and nothing but TokenRejected leaves the parsing for any input.
"""
from __future__ import annotations

import re

from lambdas.validation.compact import decode_json_object
from lambdas.validation.errors import TokenRejected

# Unlike RFC 7515, these platforms pad their base64url with '=': the padding is allowed, only at the end.
_PADDED_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def unpadded_b64url(text: str, what: str) -> bytes:
    """`text` without its '=' padding, as ASCII for the strict base64url decoder. Padding, when present, must be
    exactly what base64 writes; any other character (non-ASCII included) is refused."""
    if not _PADDED_B64URL.fullmatch(text):
        raise TokenRejected("malformed", f"{what} is not base64url", hint="only A-Z a-z 0-9 - _ and final '=' padding")
    stripped = text.rstrip("=")
    if len(stripped) != len(text) and len(text) % 4:
        raise TokenRejected("malformed", f"{what} is not base64url: its '=' padding has the wrong length")
    return stripped.encode("ascii")


def identity_json(raw: bytes, what: str) -> dict:
    """The strict JSON object an identity header carries, or TokenRejected("malformed") naming the header."""
    return decode_json_object(raw, what, subject=what)
