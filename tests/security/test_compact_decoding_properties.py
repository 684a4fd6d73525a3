"""Property tests of compact JWS decoding: the careful decoder, the hot-path decoder and the Verifier on hostile input.

The rules a compact JWS must meet (lambdas/validation/README.md, "Rules") are written out again below, with the
standard library only, as `decode_by_the_rules`. The properties:

- the careful decoder (decode_token) accepts exactly what those rules accept and decodes it to the same values;
- the hot-path decoder (decode_token_fast) either declines (None) or returns exactly what decode_token returns;
- a Verifier gives the same outcome (the same principal, or the same rejection code) whether or not the token's
  header is already cached (cached: the hot path runs; not cached: the careful path), for str and bytes alike;
- no mutation of a real token verifies unless its signed part is untouched;
- whatever the input (any text, bytes, structure, or not a string at all), nothing but TokenRejected escapes
  verify/authenticate/check_signature/verify_id_token/verify_jws, and explain() raises nothing.

Inputs are arbitrary text and bytes and, mostly, real signed tokens mutated the way attackers and broken clients
mutate them: flipped and inserted characters, swapped or repeated segments, padding, whitespace, Unicode,
re-encoded JSON (duplicate members, escapes, odd spacing, other member types) and non-canonical base64url; and
headers and claims sets nesting arrays and objects from 1 to a few thousand levels deep, with and without `\\u`
escapes and lone surrogates, signed or not (issue 18: a recursive surrogate walk once raised RecursionError).
"""
from __future__ import annotations

import base64
import binascii
import json

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from lambdas.validation import IssuerConfig, StaticKeySource, TokenRejected, Verifier, verify_jws
from lambdas.validation.compact import HeaderCache, decode_token, decode_token_fast
from tests.security.property_budget import property_settings
from tests.support.tokens import (AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, json_nesting_depth, mint,
                                 standard_claims)

NOW = 1_700_000_000
KEYS = [SigningKey.generate(alg, kid=f"kid-{alg}") for alg in ("RS256", "ES256", "EdDSA")]
JWKS = {"keys": [key.jwk() for key in KEYS]}
ALGORITHMS = tuple(key.alg for key in KEYS)
ORIGINALS = [
    mint(KEYS[0], standard_claims(now=NOW, scope="orders:read")),
    mint(KEYS[1], standard_claims(now=NOW, audience=[AUDIENCE, "other"], roles=["admin"]), typ="JWT"),
    mint(KEYS[2], standard_claims(now=NOW, subject="ünïcødé", groups=["g1"]), typ=None),
    mint(KEYS[1], standard_claims(now=NOW, note="x" * 300), header={"kid": None}),  # kid-less: one ES256 key
]
# The third original's claims JSON has \u escapes (json.dumps escapes its non-ASCII subject); escapes always take
# the careful path, so only the others must be decoded by the hot path.
HOT_PATH_ORIGINALS = [ORIGINALS[0], ORIGINALS[1], ORIGINALS[3]]
SIGNED_PARTS = {token.rsplit(".", 1)[0] for token in ORIGINALS}

# --- the rules, stated independently of lambdas/validation ------------------------------------------------------

MAX_TOKEN_CHARS = 16 * 1024
MAX_HEADER_CHARS = 2048
MAX_KID_CHARS = 256
MAX_JSON_DEPTH = 32  # containers within containers, the top-level object being 1
SUPPORTED_ALGORITHMS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
                        "Ed25519"}
BASE64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class Refused(Exception):
    pass


def canonical_base64url(segment: str) -> bytes:
    """RFC 7515 2: base64url without padding; and exactly one accepted text per byte string."""
    if not set(segment) <= BASE64URL:
        raise Refused("alphabet")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise Refused("length") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
        raise Refused("not canonical")
    return raw


def strict_json_object(raw: bytes) -> dict:
    """UTF-8 JSON object: no duplicate member names, no NaN/Infinity, no lone surrogates, bounded nesting."""
    def no_duplicates(pairs):
        if len({name for name, _ in pairs}) != len(pairs):
            raise Refused("duplicate member")
        return dict(pairs)

    def no_constants(name):
        raise Refused(name)

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants)
        # a lone surrogate cannot be encoded; a number beyond a double (1e400) parsed to infinity, not JSON
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeError and JSONDecodeError are ValueErrors
        raise Refused("json") from None
    if not isinstance(value, dict):
        raise Refused("not an object")
    if json_nesting_depth(value) > MAX_JSON_DEPTH:
        raise Refused("nested too deeply")
    return value


def decode_by_the_rules(token) -> tuple[dict, dict, bytes, bytes] | None:
    """What decode_token must return for `token`, or None where it must raise TokenRejected."""
    try:
        if isinstance(token, (bytes, bytearray)):
            token = bytes(token).decode("ascii")
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        parts = token.split(".")
        if len(parts) != 3 or not parts[0] or not parts[2] or len(parts[0]) > MAX_HEADER_CHARS:
            return None
        header_raw, payload_raw, signature = (canonical_base64url(part) for part in parts)
        header = strict_json_object(header_raw)
        claims = strict_json_object(payload_raw)
    except (Refused, UnicodeDecodeError):
        return None
    alg = header.get("alg")
    if (not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS
            # present members hold their type (RFC 7515 4.1.4, 4.1.9): a JSON null is not an absent kid or typ
            or ("kid" in header and (not isinstance(header["kid"], str) or len(header["kid"]) > MAX_KID_CHARS))
            or ("typ" in header and not isinstance(header["typ"], str))
            or "crit" in header                      # no critical extension is implemented
            or header.get("b64", True) is not True):  # RFC 7797 unencoded payloads are not supported
        return None
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


# --- inputs ------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
HEADER_MEMBERS = ["alg", "kid", "typ", "crit", "b64", "jku", "x5u", "jwk", "x5c", "cty", "zip", "enc"]
# Header values at the edges of the header rules, besides JSON of any type.
header_values = st.one_of(st.none(), st.sampled_from(["", "kid-ES256", "at+jwt", "x" * 257, True, False, [], ["exp"],
                                                      "ES256", "none", "HS256"]), json_values)
headers = st.fixed_dictionaries({"alg": st.sampled_from([*ALGORITHMS, "PS512", "Ed25519", "none", "HS256"])
                                 | header_values},
                                optional={name: header_values for name in HEADER_MEMBERS if name != "alg"})
CLAIM_MEMBERS = ["iss", "sub", "aud", "exp", "nbf", "iat", "scope", "x:y", 'q"', "\\", "é"]
CHARACTERS = list("AZaz09-_.=+/ \t\n\r\x00\x7f\\\"'%") + ["\u00e9", "\u00a0", "\u2028", "\ufeff", "\uff21",
                                                         "\u0410", "\ud800", "\U0001f600"]
NUMBER_LITERALS = ["1e400", "-1E999", "1e-400", "123456789012345678901234567890", "-0", "0.0e0", "1" + "0" * 5000]
SEPARATORS = [(",", ":"), (", ", ": "), (",", " :"), ("\n,", ":\t"), (" , ", " : ")]


def reencode_json(draw, raw: bytes, members: list[str], values: st.SearchStrategy) -> bytes:
    """The segment's JSON with a member added, replaced or repeated, in some layout."""
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = {}
    if not isinstance(obj, dict):
        obj = {}
    name = draw(st.sampled_from(members))
    value = draw(values)
    separators = draw(st.sampled_from(SEPARATORS))
    literal = draw(st.sampled_from([None, None, None, *NUMBER_LITERALS]))  # JSON number text json.dumps never writes
    appended = literal is not None or (draw(st.booleans()) and name in obj)
    if not appended:
        obj[name] = value
    text = json.dumps(obj, separators=separators, ensure_ascii=draw(st.booleans()))
    if appended:
        member = f"{json.dumps(name)}{separators[1]}{literal or json.dumps(value)}"
        text = text[:-1] + (separators[0] if obj else "") + member + "}"
    return text.encode("utf-8", "surrogatepass")


def mutate(draw, token: str) -> str:
    kind = draw(st.sampled_from(["replace", "insert", "delete", "segments", "padding", "whitespace", "header json",
                                 "claims json", "flip decoded bit", "trailing bits", "standard alphabet"]))
    parts = token.split(".")
    if kind in ("replace", "insert", "delete"):
        at = draw(st.integers(0, len(token)))
        if kind == "delete":
            return token[:at] + token[at + draw(st.integers(1, 8)):]
        text = draw(st.sampled_from(CHARACTERS) | st.text(st.characters(codec=None, exclude_categories=()),
                                                          min_size=1, max_size=3))
        return token[:at] + text + token[at + (1 if kind == "replace" else 0):]
    if kind == "segments":
        return ".".join(draw(st.lists(st.sampled_from(parts), min_size=0, max_size=5)))
    if kind == "whitespace":
        space = draw(st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0", "\ufeff", "Bearer "]))
        return draw(st.sampled_from([space + token, token + space, space + token + space]))
    i = draw(st.integers(0, len(parts) - 1))
    if kind == "padding":
        parts[i] += "=" * draw(st.integers(1, 3))
    elif kind in ("header json", "claims json") and len(parts) > 1:
        i = 0 if kind == "header json" else 1
        members, values = (HEADER_MEMBERS, header_values) if i == 0 else (CLAIM_MEMBERS, json_values)
        parts[i] = b64url(reencode_json(draw, safe_b64decode(parts[i]), members, values))
    elif kind == "flip decoded bit":
        raw = bytearray(safe_b64decode(parts[i]))
        if raw:
            bit = draw(st.integers(0, len(raw) * 8 - 1))
            raw[bit // 8] ^= 1 << (bit % 8)
        parts[i] = b64url(bytes(raw))
    elif kind == "trailing bits" and len(parts[i]) % 4 in (2, 3) and parts[i][-1] in BASE64URL:
        # The same bytes with non-zero bits after the data: a second spelling that strict decoding refuses.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(parts[i][-1])
        spare = 0b1111 if len(parts[i]) % 4 == 2 else 0b11
        parts[i] = parts[i][:-1] + alphabet[last | draw(st.integers(1, spare))]
    elif kind == "standard alphabet":
        parts[i] = parts[i].replace("-", "+").replace("_", "/")
    return ".".join(parts)


def safe_b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return b""


@st.composite
def mutated_tokens(draw) -> str:
    token = draw(st.sampled_from(ORIGINALS))
    for _ in range(draw(st.integers(1, 3))):
        token = mutate(draw, token)
    return token


NESTING_LEAVES = ["1", '"\\u0041"', '"\\ud800"', '"caf\u00e9"', "[]", "{}", '{"b":1}', '{"b":1,"b":2}']


@st.composite
def deeply_nested_tokens(draw) -> str:
    """A token whose claims set (or header) holds arrays/objects nested `depth` deep, signed by a trusted key or
    carrying a garbage signature: deep nesting must be refused with TokenRejected on every path, never raise."""
    depth = draw(st.sampled_from([MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, 100, 300, 400, 990, 1000,
                                  1100, 3000]) | st.integers(1, 1500))
    shape = draw(st.sampled_from(["array", "object", "mixed"]))
    openers = {"array": ["["], "object": ['{"a":'], "mixed": ["[", '{"a":']}[shape]
    chosen = [draw(st.sampled_from(openers)) for _ in range(min(depth, 8))]
    opened = [chosen[i % len(chosen)] for i in range(depth)]
    nested = "".join(opened) + draw(st.sampled_from(NESTING_LEAVES)) + "".join(
        "]" if o == "[" else "}" for o in reversed(opened))
    key = draw(st.sampled_from(KEYS))
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    claims_text = json.dumps(standard_claims(now=NOW, scope="orders:read"), separators=(",", ":"))
    if draw(st.booleans()):
        claims_text = claims_text[:-1] + ',"x":' + nested + "}"
        header_text = json.dumps(header, separators=(",", ":"))
    else:
        header_text = json.dumps(header, separators=(",", ":"))[:-1] + ',"x":' + nested + "}"
    signing_input = f"{b64url(header_text.encode())}.{b64url(claims_text.encode())}"
    signature = key.sign(signing_input.encode()) if draw(st.booleans()) else b"\x00" * 64
    return f"{signing_input}.{b64url(signature)}"


b64url_texts = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=40)
token_texts = st.one_of(
    mutated_tokens(), mutated_tokens(), mutated_tokens(),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=60),
    st.lists(b64url_texts, max_size=5).map(".".join),
    st.builds(lambda h, c, s: f"{b64url_json(h)}.{c}.{s}", headers,
              st.dictionaries(st.sampled_from(CLAIM_MEMBERS), json_values, max_size=3).map(b64url_json)
              | st.binary(max_size=40).map(b64url), st.binary(min_size=1, max_size=40).map(b64url) | b64url_texts),
)
any_inputs = st.one_of(token_texts, deeply_nested_tokens(), token_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                       st.binary(max_size=80), st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=3),
                       st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
                       st.binary(max_size=40).map(bytearray), st.binary(max_size=40).map(memoryview))


def fresh_verifier() -> Verifier:
    """A Verifier that has not yet seen any header: its first decode of a token takes the careful path."""
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=JWKS, algorithms=ALGORITHMS, token_use=None)],
                    clock=lambda: NOW, verified_cache_size=0)


def warm_verifier() -> Verifier:
    """A Verifier that has verified every original token, so their headers are cached and the hot path runs."""
    verifier = fresh_verifier()
    for token in ORIGINALS:
        verifier.verify(token)
    return verifier


WARM = warm_verifier()


def careful_decode(token) -> tuple | None:
    """decode_token's result, or None when it refuses the token."""
    try:
        return decode_token(token)
    except TokenRejected:
        return None


def outcome(verifier: Verifier, token) -> tuple:
    try:
        principal = verifier.verify(token)
    except TokenRejected as exc:
        return ("rejected", exc.code)
    return ("accepted", dict(principal.claims), principal.scopes, principal.roles, principal.groups)


# --- properties --------------------------------------------------------------------------------------------------

@property_settings(400)
@given(any_inputs)
def test_careful_decoder_accepts_exactly_what_the_rules_allow(token):
    expected = decode_by_the_rules(token)
    decoded = careful_decode(token)
    event(f"careful decoder: {'refused' if decoded is None else 'accepted'}")
    assert (decoded is None) == (expected is None), f"decode_token {'refused' if decoded is None else 'accepted'}"
    assert decoded == expected


@property_settings(300)
@given(headers, st.sampled_from(ORIGINALS), st.sampled_from(SEPARATORS))
def test_header_rules_of_the_careful_decoder_are_the_stated_rules(header, original, separators):
    token = b64url(json.dumps(header, separators=separators).encode()) + "." + original.split(".", 1)[1]
    expected = decode_by_the_rules(token)
    decoded = careful_decode(token)
    event(f"header: {'refused' if decoded is None else 'accepted'}")
    assert decoded == expected


@property_settings(400)
@given(token_texts | deeply_nested_tokens())
def test_hot_path_decoder_declines_or_returns_what_the_careful_decoder_returns(token):
    headers = HeaderCache()
    for original in ORIGINALS:
        headers.decode(original.split(".")[0].encode())
    try:
        headers.decode(token.split(".")[0].encode("ascii"))  # the mutated header too, where it is acceptable
    except (TokenRejected, UnicodeEncodeError):
        pass
    fast = decode_token_fast(token, headers)
    careful = careful_decode(token)
    if fast is not None:
        assert careful is not None, "the hot path accepted what the careful decoder refuses"
        assert fast == careful
    if token in HOT_PATH_ORIGINALS:
        assert fast is not None, "a well-formed token with a cached header must take the hot path"


def test_hot_path_depth_bound_with_only_top_level_member_names():
    # The hot path counts only '[' when every member name is the top object's; at the bound, arrays (and an empty
    # object or array as the innermost level) nest exactly as deep as the careful decoder allows, and one more is refused.
    headers = HeaderCache()
    headers.decode(ORIGINALS[0].split(".")[0].encode())
    header_segment = ORIGINALS[0].split(".")[0]
    claims_text = json.dumps(standard_claims(now=NOW, scope="orders:read"), separators=(",", ":"))
    for arrays, leaf in ((MAX_JSON_DEPTH - 1, "1"), (MAX_JSON_DEPTH - 2, "[]"), (MAX_JSON_DEPTH - 2, "{}"),
                         (MAX_JSON_DEPTH - 1, "[]"), (MAX_JSON_DEPTH - 1, "{}"), (MAX_JSON_DEPTH, "1")):
        nested = "[" * arrays + leaf + "]" * arrays
        depth = 1 + arrays + (leaf in ("[]", "{}"))
        text = claims_text[:-1] + ',"x":' + nested + "}"
        signing_input = f"{header_segment}.{b64url(text.encode())}"
        token = f"{signing_input}.{b64url(KEYS[0].sign(signing_input.encode()))}"
        fast = decode_token_fast(token, headers)
        if depth > MAX_JSON_DEPTH:
            assert fast is None and careful_decode(token) is None, (arrays, leaf)
        else:
            assert fast is not None and fast == careful_decode(token), (arrays, leaf)


@property_settings(300)
@given(token_texts)
def test_verifier_outcome_does_not_depend_on_the_header_cache_or_str_vs_bytes(token):
    cold = outcome(fresh_verifier(), token)
    event(f"verifier: {cold[0]} {cold[1] if cold[0] == 'rejected' else ''}")
    assert outcome(WARM, token) == cold
    if token.isascii():
        assert outcome(fresh_verifier(), token.encode("ascii")) == cold
    if cold[0] == "accepted":
        assert token.rsplit(".", 1)[0] in SIGNED_PARTS, "a token whose signed part was changed verified"


@property_settings(150)
@given(deeply_nested_tokens())
def test_deep_nesting_gets_one_outcome_on_every_path(token):
    cold = outcome(fresh_verifier(), token)
    event(f"nested: {cold[0]} {cold[1] if cold[0] == 'rejected' else ''}")
    assert outcome(WARM, token) == cold
    assert outcome(fresh_verifier(), token.encode("ascii")) == cold
    if cold[0] == "accepted":
        assert decode_by_the_rules(token) is not None


@property_settings(250)
@given(any_inputs)
def test_nothing_but_token_rejected_escapes(token):
    for check in (lambda: WARM.verify(token, scopes=("orders:read",)), lambda: WARM.authenticate(token),
                  lambda: WARM.check_signature(token), lambda: WARM.verify_id_token(token, nonce="n"),
                  lambda: verify_jws(token, StaticKeySource.from_jwks(JWKS), algorithms=ALGORITHMS)):
        try:
            check()
        except TokenRejected as exc:
            assert exc.code and exc.message
    checks = WARM.explain(token)
    assert checks and all(check.passed in (True, False, None) for check in checks)


def test_originals_are_accepted_and_the_rules_model_decodes_them():
    for token in ORIGINALS:
        assert outcome(fresh_verifier(), token)[0] == "accepted"
        assert decode_by_the_rules(token) == decode_token(token)


@pytest.mark.parametrize("token", [
    ORIGINALS[0] + "=",
    ORIGINALS[0].replace(".", "..", 1),
    " " + ORIGINALS[0],
    b64url(b'{"alg":"RS256","alg":"RS256"}') + "." + ORIGINALS[0].split(".", 1)[1],
    b64url(b'{"alg":"RS256","crit":["exp"]}') + "." + ORIGINALS[0].split(".", 1)[1],
    b64url(b'{"alg":"none"}') + "." + ORIGINALS[0].split(".", 1)[1],
    ORIGINALS[0].split(".")[0] + "." + b64url(b'{"sub":"u","n":1e400}') + ".c2ln",
], ids=["padding", "four segments", "whitespace", "duplicate member", "critical extension", "unsigned",
        "number beyond a double"])
def test_the_rules_model_refuses_what_the_readme_forbids(token):
    assert decode_by_the_rules(token) is None
    with pytest.raises(TokenRejected):
        decode_token(token)
