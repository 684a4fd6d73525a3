"""Property tests: PyJWT as an oracle on random valid/invalid tokens, and the hot-path decoder against the careful one.

PyJWT (the reference in DESIGN.md) and authgate must agree on accept/reject for every token in a space where
their rules coincide (signature, alg, iss, aud any-of, exp/nbf/iat with the same leeway). Times stay clear of the
leeway edges by a few seconds because PyJWT reads the real clock; the edges themselves are pinned in
test_attack_corpus.py with an injected clock.
"""
from __future__ import annotations

import json
import time

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from lambdas.validation.compact import HeaderCache, decode_json_object, decode_token, decode_token_fast
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, mint

LEEWAY = 60
KEYS = {alg: SigningKey.generate(alg, kid=f"kid-{alg}") for alg in ("RS256", "ES256", "EdDSA")}
VERIFIER = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks={"keys": [k.jwk() for k in KEYS.values()]},
                                  algorithms=tuple(KEYS), leeway_seconds=LEEWAY)], verified_cache_size=0)

# Offsets in seconds from now, at least 5 s away from any accept/reject boundary (+-LEEWAY and 0).
offsets = st.one_of(st.integers(-5000, -LEEWAY - 5), st.integers(-LEEWAY + 5, -5), st.integers(5, LEEWAY - 5),
                    st.integers(LEEWAY + 5, 5000))


@st.composite
def token_cases(draw):
    alg = draw(st.sampled_from(sorted(KEYS)))
    now = int(time.time())
    claims = {"iss": draw(st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example"])),
              "sub": "user-1",
              "aud": draw(st.sampled_from([AUDIENCE, "other-api", [AUDIENCE, "x"], ["x", "y"]]))}
    for name in ("exp", "nbf", "iat"):
        if draw(st.booleans()) or name == "exp":
            claims[name] = now + draw(offsets)
    token = mint(KEYS[alg], claims)
    tamper = draw(st.sampled_from(["none", "none", "signature", "payload", "alg"]))
    head, body, sig = token.split(".")
    if tamper == "signature":
        i = draw(st.integers(0, len(sig) - 2))
        sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    elif tamper == "payload":
        body = b64url_json(dict(claims, sub="user-2"))
    elif tamper == "alg":
        other = draw(st.sampled_from([a for a in KEYS if a != alg]))
        head = b64url_json({"alg": other, "kid": f"kid-{alg}", "typ": "at+jwt"})
    return alg, f"{head}.{body}.{sig}"


def pyjwt_accepts(alg: str, token: str) -> bool:
    try:
        jwt.decode(token, KEYS[alg].private_key.public_key(), algorithms=[alg], audience=AUDIENCE, issuer=ISSUER,
                   leeway=LEEWAY, options={"require": ["exp"]})
        return True
    except jwt.PyJWTError:
        return False


def authgate_accepts(token: str) -> bool:
    try:
        VERIFIER.verify(token)
        return True
    except TokenRejected:
        return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_cases())
def test_authgate_agrees_with_pyjwt(case):
    alg, token = case
    assert authgate_accepts(token) == pyjwt_accepts(alg, token)


# --- hot path vs careful path -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)


@st.composite
def claim_texts(draw):
    """Claims-set JSON text, sometimes with duplicate names, odd spacing, escapes or non-objects."""
    obj = draw(st.dictionaries(st.sampled_from(["iss", "sub", "aud", "a", "b", "x:y", 'q"', "\\"]), json_values,
                               max_size=6))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " :"), ("\n,", ":\t")]))
    text = json.dumps(obj, separators=separators, ensure_ascii=draw(st.booleans()))
    if obj and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(obj)))
        text = text[:-1] + f'{separators[0]}{json.dumps(name)}{separators[1]}1' + "}"
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(["[1]", '"s"', "1", "", "{", '{"a":NaN}', '{"a":1}x', ' {"a":1} ']))
    return text


@settings(max_examples=400, deadline=None)
@given(claim_texts())
def test_fast_json_path_never_accepts_what_the_careful_path_refuses(text):
    header = {"alg": "RS256", "kid": "k"}
    headers = HeaderCache()
    token = f"{b64url_json(header)}.{b64url(text.encode('utf-8', 'surrogatepass'))}.{b64url(b'sig')}"
    try:
        careful = decode_json_object(text.encode("utf-8", "surrogatepass"), "claims set")
    except TokenRejected:
        careful = None
    headers.decode(token.split(".")[0].encode())
    fast = decode_token_fast(token, headers)
    if fast is not None:
        assert careful is not None, f"fast path accepted {text!r}"
        assert fast[1] == careful
    if careful is not None and fast is None:
        assert decode_token(token, headers)[1] == careful


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2000), st.sampled_from(list(". =+/_-\\\n\x00\u00e9A")), st.booleans())
def test_fast_token_path_matches_careful_path_under_mutation(position, char, insert):
    token = mint(KEYS["RS256"], {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "exp": 2_000_000_000})
    position %= len(token)
    mutated = token[:position] + char + token[position + (0 if insert else 1):]
    headers = HeaderCache()
    headers.decode(token.split(".")[0].encode())
    fast = decode_token_fast(mutated, headers)
    try:
        careful = decode_token(mutated)
    except TokenRejected:
        careful = None
    if fast is not None:
        assert careful is not None and fast == careful


def test_oracle_space_contains_both_verdicts():
    valid = mint(KEYS["ES256"], {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "exp": int(time.time()) + 300})
    assert authgate_accepts(valid) and pyjwt_accepts("ES256", valid)
    expired = mint(KEYS["ES256"], {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "exp": int(time.time()) - 300})
    assert not authgate_accepts(expired) and not pyjwt_accepts("ES256", expired)


pytestmark = pytest.mark.timeout(120)
