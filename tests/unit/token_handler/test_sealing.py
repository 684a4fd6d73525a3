"""Sealed cookies: AES-256-GCM under named keys, bound to the cookie name and an expiry, split past one cookie."""
from __future__ import annotations

import json

import pytest

from lambdas.token_handler.sealing import (MAX_CHUNK_CHARS, MAX_CHUNKS, CookieKeys, SealError, chunk_name,
                                           join_chunks, seal, split_value, unseal)

NAME = "__Host-authgate-session"


@pytest.fixture
def keys() -> CookieKeys:
    return CookieKeys.generate("k1")


def test_round_trip_and_the_value_hides_the_payload(keys):
    value = seal(keys, NAME, {"at": "secret-access-token"}, expires_at=2000)
    assert "secret-access-token" not in value and value.startswith("v1.k1.")
    assert unseal(keys, NAME, value, now=1999) == {"at": "secret-access-token"}


def test_expired_altered_swapped_and_unknown_key_values_do_not_open(keys):
    value = seal(keys, NAME, {"sub": "alice"}, expires_at=2000)
    with pytest.raises(SealError, match="lifetime is over"):
        unseal(keys, NAME, value, now=2000)
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    with pytest.raises(SealError, match="altered"):
        unseal(keys, NAME, flipped, now=0)
    with pytest.raises(SealError, match="altered, or sealed for another cookie"):
        unseal(keys, "__Host-authgate-login", value, now=0)
    with pytest.raises(SealError, match="no longer configured"):
        unseal(CookieKeys.generate("k2"), NAME, value, now=0)
    for junk in ("", "v1.k1", "v2.k1.AAAA", "v1.k1.!!!!", "v1.k1.AAAA"):
        with pytest.raises(SealError):
            unseal(keys, NAME, junk, now=0)


def test_keys_rotate_old_values_still_open_new_ones_use_current(keys):
    old = seal(keys, NAME, {"n": 1}, expires_at=2000)
    rotated = CookieKeys({**keys.keys, "k2": CookieKeys.generate("k2").keys["k2"]}, "k2")
    assert unseal(rotated, NAME, old, now=0) == {"n": 1}
    assert seal(rotated, NAME, {"n": 2}, expires_at=2000).startswith("v1.k2.")
    assert CookieKeys.from_json(rotated.to_json()) == rotated


@pytest.mark.parametrize("document, message", [
    ("not json", "not JSON"),
    ('{"current": "k1", "keys": {}}', "at least one key"),
    ('{"current": "k9", "keys": {"k1": "' + "A" * 43 + '"}}', "current key 'k9'"),
    ('{"current": "k1", "keys": {"k1": "AAAA"}}', "exactly 32 bytes"),
    ('{"current": "k 1", "keys": {"k 1": "' + "A" * 43 + '"}}', "key id"),
])
def test_bad_key_documents_say_what_is_wrong(document, message):
    with pytest.raises(ValueError, match=message):
        CookieKeys.from_json(document)


def test_large_sessions_split_across_cookies_and_join_back(keys):
    payload = {"at": "x" * (MAX_CHUNK_CHARS * 2)}
    value = seal(keys, NAME, payload, expires_at=2000)
    chunks = split_value(value)
    assert len(chunks) == 3 and all(len(c) <= MAX_CHUNK_CHARS for c in chunks)
    cookies = {chunk_name(NAME, i): c for i, c in enumerate(chunks)}
    assert unseal(keys, NAME, join_chunks(cookies, NAME), now=0) == payload
    del cookies[chunk_name(NAME, 1)]
    with pytest.raises(SealError):
        unseal(keys, NAME, join_chunks(cookies, NAME), now=0)
    with pytest.raises(ValueError, match="more than"):
        split_value("x" * (MAX_CHUNK_CHARS * MAX_CHUNKS + 1))
    assert join_chunks({}, NAME) is None
    assert json.loads(json.dumps(chunks))  # plain strings, cookie-safe base64url


def test_the_flat_form_secrets_manager_generates_is_read():
    generated = '{"current": "k1", "k1": "' + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7kL9m"[:43] + '"}'
    keys = CookieKeys.from_json(generated)
    assert keys.current == "k1" and len(keys.keys["k1"]) == 32
