"""The hot-path decoder's lenient base64 is exactly as strict as strict base64url: every character outside the
base64url alphabet, inserted anywhere in a valid token's claims set or signature, is refused, never skipped.

decode_token_fast decodes with binascii's lenient mode (cheaper) and relies on an exact length check to notice a
skipped character. These cases are the attack that check exists for: a valid signature with junk characters mixed in
must not verify as the clean signature would.
"""
from __future__ import annotations

import string

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from lambdas.validation.compact import HeaderCache, decode_token, decode_token_fast
from tests.support.tokens import AUDIENCE, ISSUER, mint

ALPHABET = set(string.ascii_letters + string.digits + "-_")
# Every ASCII character that is not base64url, except "." (which changes the segment count; covered elsewhere).
FOREIGN = [chr(c) for c in range(128) if chr(c) not in ALPHABET and chr(c) != "."]


@pytest.fixture(scope="module")
def token(key) -> str:
    return mint(key, scope="orders:read", lifetime=3600)


@pytest.fixture(scope="module")
def verifier(key, token) -> Verifier:
    verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks())], verified_cache_size=0)
    verifier.authenticate(token)  # the header is now cached, so the fast decoder is the one that runs
    return verifier


def positions(token: str, segment: int) -> list[int]:
    start = sum(len(part) + 1 for part in token.split(".")[:segment])
    length = len(token.split(".")[segment])
    return [start, start + 1, start + length // 2, start + length - 1, start + length]


@pytest.mark.parametrize("segment", [1, 2], ids=["claims", "signature"])
@pytest.mark.parametrize("char", FOREIGN, ids=[f"0x{ord(c):02x}" for c in FOREIGN])
def test_foreign_character_anywhere_is_refused_not_skipped(verifier, token, segment, char):
    headers = HeaderCache()
    headers.decode(token.split(".")[0].encode())
    for position in positions(token, segment):
        for mutated in (token[:position] + char + token[position:],                      # inserted
                        token[:position] + char + char + char + char + token[position:]):  # a whole quad's worth
            assert decode_token_fast(mutated, headers) is None
            with pytest.raises(TokenRejected) as raised:
                verifier.authenticate(mutated)
            assert raised.value.code == "malformed"


@pytest.mark.parametrize("segment", [1, 2], ids=["claims", "signature"])
def test_padding_and_standard_alphabet_are_refused(verifier, token, segment):
    headers = HeaderCache()
    headers.decode(token.split(".")[0].encode())
    header, payload, signature = token.split(".")
    parts = [header, payload, signature]
    for suffix in ("=", "==", "==="):
        mutated_parts = list(parts)
        mutated_parts[segment] += suffix
        assert decode_token_fast(".".join(mutated_parts), headers) is None
    # The same bytes in the standard alphabet (+ and / for - and _) are not base64url.
    for url_char, std_char in (("-", "+"), ("_", "/")):
        if url_char in parts[segment]:
            mutated_parts = list(parts)
            mutated_parts[segment] = parts[segment].replace(url_char, std_char, 1)
            assert decode_token_fast(".".join(mutated_parts), headers) is None


def test_clean_token_decodes_identically_on_both_paths(token):
    headers = HeaderCache()
    headers.decode(token.split(".")[0].encode())
    assert decode_token_fast(token, headers) == decode_token(token)
