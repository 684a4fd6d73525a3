"""Sealed cookies: JSON sealed with AES-256-GCM under a named key, bound to the cookie's name and an expiry, split
across several cookies when it outgrows one.

    keys = CookieKeys.from_json('{"current": "k2", "keys": {"k1": "<base64url 32 bytes>", "k2": "..."}}')
    value = seal(keys, "__Host-authgate-session", {"sub": "alice"}, expires_at=now + 3600)
    payload = unseal(keys, "__Host-authgate-session", value, now=now)      # or raises SealError

Format: `v1.<key id>.<base64url(nonce || ciphertext || tag)>`. The key id names the key that sealed the value, so keys
rotate: new values use `current`, old values still open while their key is listed. The associated data is the
version and the cookie name, so a value sealed for one cookie (the short-lived login state) cannot be replayed as
another (the session). The expiry is inside the sealed payload, because a cookie's Max-Age is only a request to the
browser and a copied cookie carries none.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
# A browser keeps at least 4096 bytes per cookie, name and attributes included; leave room for both.
MAX_CHUNK_CHARS = 3800
MAX_CHUNKS = 8
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class SealError(ValueError):
    """A sealed value could not be opened; `reason` says why without echoing the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class CookieKeys:
    """The keys that seal cookies: {key id: 32 raw bytes}, and the id of the one new values are sealed with."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("cookie keys: at least one key is needed")
        for kid, key in self.keys.items():
            if not isinstance(kid, str) or not _KEY_ID.fullmatch(kid):
                raise ValueError(f"cookie keys: key id {str(kid)[:40]!r} must be 1-32 characters of A-Z a-z 0-9 _ -")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"cookie keys: key {kid!r} must be exactly {KEY_BYTES} bytes (AES-256); generate "
                                 "one with `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`")
        if self.current not in self.keys:
            raise ValueError(f"cookie keys: current key {self.current!r} is not among the keys "
                             f"({', '.join(sorted(self.keys))})")

    @classmethod
    def from_json(cls, text: str) -> "CookieKeys":
        """Parse the secret's JSON: {"current": ID, "keys": {ID: base64url of 32 bytes, ...}}, or the flat
        {"current": ID, ID: ..., ...} that Secrets Manager's GenerateSecretString writes (43 random characters of
        [A-Za-z0-9] decode as base64url to 32 bytes)."""
        try:
            doc = json.loads(text)
        except (TypeError, ValueError):
            raise ValueError('cookie keys: the secret is not JSON; expected {"current": "k1", "keys": {"k1": '
                             '"<base64url of 32 random bytes>"}}') from None
        if isinstance(doc, dict) and "keys" not in doc:
            doc = {"current": doc.get("current"), "keys": {k: v for k, v in doc.items() if k != "current"}}
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict) or not isinstance(doc.get("current"),
                                                                                                str):
            raise ValueError('cookie keys: expected an object {"current": "k1", "keys": {"k1": "..."}}')
        keys: dict[str, bytes] = {}
        for kid, encoded in doc["keys"].items():
            try:
                keys[kid] = _b64decode(encoded) if isinstance(encoded, str) else b""
            except (binascii.Error, ValueError):
                raise ValueError(f"cookie keys: key {kid[:40]!r} is not base64url") from None
        return cls(keys, doc["current"])

    @classmethod
    def generate(cls, kid: str = "k1") -> "CookieKeys":
        """A fresh single key (tests, the sandbox, and bootstrapping a secret)."""
        return cls({kid: os.urandom(KEY_BYTES)}, kid)

    def to_json(self) -> str:
        return json.dumps({"current": self.current, "keys": {k: _b64encode(v) for k, v in self.keys.items()}})


def _aad(name: str) -> bytes:
    return f"{VERSION}|{name}".encode("utf-8")


def seal(keys: CookieKeys, name: str, payload: Mapping[str, Any], *, expires_at: float) -> str:
    """Seal `payload` (JSON-serialisable) for cookie `name`, valid until `expires_at` (epoch seconds)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plaintext = json.dumps({"exp": int(expires_at), "data": dict(payload)}, separators=(",", ":")).encode()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keys.keys[keys.current]).encrypt(nonce, plaintext, _aad(name))
    return f"{VERSION}.{keys.current}.{_b64encode(nonce + sealed)}"


def unseal(keys: CookieKeys, name: str, value: str, *, now: float) -> dict[str, Any]:
    """Open a value sealed for cookie `name`. Raises SealError when it is malformed, sealed with an unknown key,
    altered, sealed for another cookie, or expired."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(value, str) or len(value) > MAX_CHUNK_CHARS * MAX_CHUNKS:
        raise SealError("the cookie is not a sealed value")
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise SealError("the cookie is not a sealed value of this version")
    key = keys.keys.get(parts[1])
    if key is None:
        raise SealError("the cookie was sealed with a key that is no longer configured (rotated out)")
    try:
        raw = _b64decode(parts[2])
    except (binascii.Error, ValueError):
        raise SealError("the cookie is not base64url") from None
    if len(raw) < NONCE_BYTES + 16:
        raise SealError("the cookie is too short to be sealed")
    try:
        plaintext = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(name))
    except InvalidTag:
        raise SealError("the cookie was altered, or sealed for another cookie") from None
    doc = json.loads(plaintext)
    if type(doc.get("exp")) is not int or doc["exp"] <= now:
        raise SealError("the cookie's sealed lifetime is over")
    return doc["data"]


def split_value(value: str) -> list[str]:
    """A sealed value cut into cookie-sized chunks. Raises ValueError when even MAX_CHUNKS are not enough."""
    chunks = [value[i:i + MAX_CHUNK_CHARS] for i in range(0, len(value), MAX_CHUNK_CHARS)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"the sealed session is {len(value)} characters, more than {MAX_CHUNKS} cookies hold; "
                         "request fewer scopes or claims")
    return chunks


def chunk_name(name: str, index: int) -> str:
    """The cookie holding chunk `index` of `name`: the name itself, then name.1, name.2, ..."""
    return name if index == 0 else f"{name}.{index}"


def join_chunks(cookies: Mapping[str, str], name: str) -> str | None:
    """Reassemble the value split across `name`, `name.1`, ...; None when the first chunk is absent."""
    if name not in cookies:
        return None
    parts = []
    for index in range(MAX_CHUNKS):
        part = cookies.get(chunk_name(name, index))
        if part is None:
            break
        parts.append(part)
    return "".join(parts)
