"""Differential tests: lambdas.validation against npm aws-jwt-verify (the reference verifier) on one token corpus.

Every token in the corpus goes through both verifiers: ours (`Verifier.verify`) and aws-jwt-verify 5.2.1
(`JwtRsaVerifier` / `CognitoJwtVerifier`, keys loaded with `cacheJwks`, one Node process for the whole module). Each
case pins both verdicts (our TokenRejected code, aws-jwt-verify's error class), so neither side can drift silently.
Where the two verdicts differ (one accepts, the other refuses) the case must say why, and the reason is a
deliberate rule of ours or a documented limit of aws-jwt-verify; an unexplained disagreement is a failing test.

Both sides read the real clock (aws-jwt-verify has no clock injection), so every time claim sits far from the
acceptance edges. aws-jwt-verify's `graceSeconds` defaults to 0 where our leeway defaults to 60 s: the corpus sets
`graceSeconds: 60` to compare the rules, and one setup keeps aws-jwt-verify's default to show that difference.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.reference_corpus import (ACCEPT, ALGS, ATTACKER, CLIENT_ID, COGNITO_KEY, ENC_KEY, GRACE, KEYS,
                                            POOL_ISSUER, PSS_KEYS, SETUPS, WEAK_KEY, claims, cognito, cognito_access,
                                            cognito_id, ecdsa_der_signature, header_for, hmac_with_public_key,
                                            invalid_utf8, json_text, lone_surrogate, non_canonical_signature,
                                            our_verdict, padded_segments, raw_payload, segment, signed)
from tests.support.reference_node import ReferenceVerifier, reference_available
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, mint


@dataclass(frozen=True)
class Case:
    name: str
    setup: str
    token: str
    ours: str                  # ACCEPT or our TokenRejected code
    reference: str             # ACCEPT or aws-jwt-verify's error class name
    why_different: str = ""    # required when exactly one side accepts
    why_claims_differ: str = ""  # when both accept but read different claims

    def __post_init__(self) -> None:
        differ = (self.ours == ACCEPT) != (self.reference == ACCEPT)
        if differ and not self.why_different:
            raise AssertionError(f"case {self.name}: the verdicts differ, so the case must say why")
        if not differ and self.why_different:
            raise AssertionError(f"case {self.name}: the verdicts agree, so why_different must be empty")


def flip_middle(text: str) -> str:
    i = len(text) // 2
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]


def duplicate_aud(key: SigningKey, now: int) -> str:
    """Two `aud` members: parsers that keep the last one see AUDIENCE, parsers that keep the first see evil."""
    body = json_text(claims(now))
    body = body.replace('"aud":"orders-api"', '"aud":"evil-api","aud":"orders-api"')
    assert body.count('"aud"') == 2
    return signed(key, segment(header_for(key)), b64url(body.encode()))


def corpus() -> list[Case]:
    now = int(time.time())
    rs = KEYS["RS256"]
    cases = [Case(f"valid_{alg}", "generic", mint(KEYS[alg], claims(now)), ACCEPT, ACCEPT) for alg in ALGS]
    cases += [
        Case("aud_array_containing_ours", "generic", mint(rs, claims(now, aud=["other", AUDIENCE])), ACCEPT, ACCEPT),
        Case("typ_JWT", "generic", mint(rs, claims(now), typ="JWT"), ACCEPT, ACCEPT),
        Case("no_typ", "generic", mint(rs, claims(now), typ=None), ACCEPT, ACCEPT),
        Case("expired_within_leeway", "generic", mint(rs, claims(now, exp=now - 20)), ACCEPT, ACCEPT),
        Case("nbf_within_leeway", "generic", mint(rs, claims(now, nbf=now + 20)), ACCEPT, ACCEPT),
        Case("scope_present", "generic_scope", mint(rs, claims(now)), ACCEPT, ACCEPT),
        Case("jku_header_ignored", "generic",
             mint(rs, claims(now), header={"jku": "https://attacker.example/jwks.json"}), ACCEPT, ACCEPT),
        # both refuse
        Case("expired", "generic", mint(rs, claims(now, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
             "expired", "JwtExpiredError"),
        Case("nbf_in_future", "generic", mint(rs, claims(now, nbf=now + 3600)), "not_yet_valid", "JwtNotBeforeError"),
        Case("wrong_iss", "generic", mint(rs, claims(now, iss="https://evil.example")), "unknown_issuer",
             "JwtInvalidIssuerError"),
        Case("iss_trailing_slash", "generic", mint(rs, claims(now, iss=ISSUER + "/")), "unknown_issuer",
             "JwtInvalidIssuerError"),
        Case("wrong_aud", "generic", mint(rs, claims(now, aud="billing-api")), "invalid_audience",
             "JwtInvalidAudienceError"),
        Case("aud_array_without_ours", "generic", mint(rs, claims(now, aud=["a", "b"])), "invalid_audience",
             "JwtInvalidAudienceError"),
        Case("no_aud", "generic", mint(rs, claims(now, aud=None)), "missing_claim", "JwtInvalidAudienceError"),
        Case("tampered_payload", "generic",
             ".".join([mint(rs, claims(now)).split(".")[0], segment(claims(now, sub="admin")),
                       mint(rs, claims(now)).split(".")[2]]), "bad_signature", "JwtInvalidSignatureError"),
        Case("tampered_signature", "generic", ".".join(
            (lambda p: [p[0], p[1], flip_middle(p[2])])(mint(rs, claims(now)).split("."))), "bad_signature",
            "JwtInvalidSignatureError"),
        Case("signed_by_attacker_with_real_kid", "generic", mint(ATTACKER, claims(now)), "bad_signature",
             "JwtInvalidSignatureError"),
        Case("embedded_jwk_header", "generic",
             mint(ATTACKER, claims(now), header={"jwk": ATTACKER.jwk()}), "bad_signature", "JwtInvalidSignatureError"),
        Case("alg_none_empty_signature", "generic",
             f"{segment({'alg': 'none', 'typ': 'at+jwt'})}.{segment(claims(now))}.", "malformed", "JwtParseError"),
        Case("alg_none_with_kid", "generic",
             f"{segment({'alg': 'none', 'kid': rs.kid})}.{segment(claims(now))}.AAAA", "unsupported_alg",
             "JwtInvalidSignatureAlgorithmError"),
        Case("hs256_with_public_key", "generic", hmac_with_public_key(rs, claims(now)), "unsupported_alg",
             "JwtInvalidSignatureAlgorithmError"),
        Case("es256_header_on_rsa_key", "generic",
             mint(KEYS["ES256"], claims(now), header={"kid": rs.kid}), "alg_not_allowed",
             "JwtInvalidSignatureAlgorithmError"),
        Case("rs384_header_on_rs256_key", "generic",
             mint(KEYS["RS384"], claims(now), header={"kid": rs.kid}), "alg_not_allowed",
             "JwtInvalidSignatureAlgorithmError"),
        # aws-jwt-verify lets Node's own "Malformed signature" Error through here rather than a JwtBaseError.
        Case("es256_der_signature", "generic", ecdsa_der_signature(KEYS["ES256"], claims(now)), "bad_signature",
             "Error"),
        Case("unknown_kid", "generic", mint(rs, claims(now), header={"kid": "no-such-kid"}), "unknown_kid",
             "KidNotFoundInJwksError"),
        Case("key_published_for_encryption", "generic", mint(ENC_KEY, claims(now)), "unknown_kid",
             "JwkInvalidUseError"),
        Case("scope_missing", "generic_scope", mint(rs, claims(now, scope="orders:write")), "insufficient_scope",
             "JwtInvalidScopeError"),
        Case("scope_array_element_with_a_space", "generic_scope",
             mint(rs, claims(now, scope=["orders:write orders:read"])), "insufficient_scope", "JwtParseError"),
        Case("exp_is_a_string", "generic", mint(rs, claims(now, exp=str(now + 600))), "malformed", "JwtParseError"),
        Case("payload_is_an_array", "generic", raw_payload(rs, b'["not","an","object"]'), "malformed",
             "JwtParseError"),
        Case("two_segments", "generic", ".".join(mint(rs, claims(now)).split(".")[:2]), "malformed",
             "JwtParseError"),
        Case("trailing_newline", "generic", mint(rs, claims(now)) + "\n", "malformed", "JwtParseError"),
        Case("header_is_an_array", "generic", signed(rs, b64url(b'["RS256"]'), segment(claims(now))), "malformed",
             "JwtParseError"),
        Case("kid_is_a_number", "generic", mint(rs, claims(now), header={"kid": 5}), "malformed", "JwtParseError"),
        Case("exp_is_boolean", "generic", mint(rs, claims(now, exp=True)), "malformed", "JwtParseError"),
        Case("exp_negative", "generic", mint(rs, claims(now, exp=-1)), "malformed", "JwtExpiredError"),
        Case("iss_is_a_number", "generic", mint(rs, claims(now, iss=5)), "malformed", "JwtParseError"),
        Case("sub_is_a_number", "generic", mint(rs, claims(now, sub=7)), "malformed", "JwtParseError"),
        Case("jti_is_a_number", "generic", mint(rs, claims(now, jti=7)), "malformed", "JwtParseError"),
        Case("aud_empty_array", "generic", mint(rs, claims(now, aud=[])), "malformed", "JwtInvalidAudienceError"),
        Case("aud_array_with_a_number", "generic", mint(rs, claims(now, aud=[AUDIENCE, 5])), "malformed",
             "JwtParseError"),
        Case("exp_fractional", "generic", mint(rs, claims(now, exp=now + 600.5)), ACCEPT, ACCEPT),
        Case("typ_media_type_form", "generic", mint(rs, claims(now), typ="application/at+jwt"), ACCEPT, ACCEPT),
        Case("proto_member", "generic",
             raw_payload(rs, json_text(claims(now)).encode()[:-1]
                         + b',"__proto__":{"admin":true}}'), ACCEPT, ACCEPT,
             why_claims_differ="aws-jwt-verify deletes __proto__ members (prototype pollution guard); Python dicts "
                               "have no prototype, so we keep it as an ordinary claim nobody reads"),
        # one side accepts: each a deliberate rule of ours or a documented limit of aws-jwt-verify
        Case("no_exp", "generic", mint(rs, claims(now, exp=None)), "missing_claim", ACCEPT,
             "we require exp by default (issue 2, RFC 8725 3.10 spirit: a token must expire); aws-jwt-verify checks "
             "exp only when present"),
        Case("iat_in_future", "generic", mint(rs, claims(now, iat=now + 3600, nbf=None)), "issued_in_future", ACCEPT,
             "we bound iat by the leeway (a token minted by a clock an hour ahead); aws-jwt-verify does not read iat"),
        Case("no_sub", "generic", mint(rs, claims(now, sub=None)), "missing_claim", ACCEPT,
             "every Principal names its subject, so we require sub; aws-jwt-verify does not"),
        Case("typ_logout_jwt", "generic", mint(rs, claims(now), typ="logout+jwt"), "wrong_typ", ACCEPT,
             "explicit typing (RFC 8725 3.11): a logout/SET token is no bearer token; aws-jwt-verify ignores typ"),
        Case("id_token_markers_on_generic_access", "generic", mint(rs, claims(now, nonce="n-1"), typ=None),
             "wrong_token_use", ACCEPT,
             "a nonce marks an OIDC ID token (OIDC Core 2) and ID tokens never pass as access tokens; "
             "aws-jwt-verify's generic verifier has no notion of token use"),
        Case("crit_header", "generic", mint(rs, claims(now), header={"crit": ["urn:example:ext"],
                                                                       "urn:example:ext": 1}),
             "malformed", ACCEPT,
             "RFC 7515 4.1.11: a recipient MUST reject a JWS whose crit lists an extension it does not understand; "
             "aws-jwt-verify ignores crit"),
        Case("duplicate_member_names", "generic", duplicate_aud(rs, now), "malformed", ACCEPT,
             "RFC 7515 5.2 / RFC 8259: duplicate member names are ambiguous (first-wins and last-wins parsers "
             "disagree on the audience); we refuse them, JSON.parse keeps the last"),
        Case("padded_base64url", "generic", padded_segments(rs, claims(now)), "malformed", ACCEPT,
             "RFC 7515 2: base64url without padding; aws-jwt-verify's regex allows '='"),
        Case("non_canonical_signature_encoding", "generic", non_canonical_signature(mint(rs, claims(now))),
             "malformed", ACCEPT,
             "strict base64url: two spellings of one signature would make tokens malleable (replay caches and "
             "verified-token caches key on the string); Node's base64 decoder drops the unused bits"),
        Case("invalid_utf8_payload", "generic", raw_payload(rs, invalid_utf8(claims(now))), "malformed", ACCEPT,
             "RFC 7519 7.2: the payload must be UTF-8; Node decodes invalid bytes to U+FFFD"),
        Case("lone_surrogate_in_payload", "generic", raw_payload(rs, lone_surrogate(claims(now))), "malformed",
             ACCEPT, "RFC 8259 8.2: an unpaired surrogate is no Unicode string; JSON.parse accepts it"),
        Case("exp_beyond_2_pow_53", "generic", mint(rs, claims(now, exp=10 ** 20)), "malformed", ACCEPT,
             "NumericDates are bounded below 2**53 (beyond it floats lose whole seconds); aws-jwt-verify takes any "
             "finite number, so a token with exp 1e20 never expires there"),
        Case("scope_as_array", "generic_scope", mint(rs, claims(now, scope=["orders:read"])), ACCEPT,
             "JwtParseError",
             "RFC 9068 2.2.3 defines scope as a space-separated string, which aws-jwt-verify insists on; we also "
             "read an array of strings, as some authorization servers emit it (each element one scope, never split, "
             "so an array cannot smuggle extra scopes)"),
        Case("token_larger_than_16KiB", "generic", mint(rs, claims(now, blob="x" * 17000)), "token_too_large",
             ACCEPT, "we bound the token size before decoding (DoS); aws-jwt-verify has no size limit"),
        Case("no_kid_single_candidate_key", "generic", mint(rs, claims(now), header={"kid": None}), ACCEPT,
             "JwtWithoutValidKidError",
             "without kid we use the one key that can verify the alg, when exactly one can (README rule); "
             "aws-jwt-verify requires kid whenever it holds a JWKS"),
        Case("rsa_1024_bit_key", "generic", mint(WEAK_KEY, claims(now)), "unknown_kid", ACCEPT,
             "RFC 7518 3.3: RSA keys must be at least 2048 bits, so we skip the 1024-bit key when loading the JWKS; "
             "aws-jwt-verify uses any RSA key"),
        Case("ps256", "generic_pss", mint(PSS_KEYS["PS256"], claims(now)), ACCEPT, "JwtInvalidSignatureAlgorithmError",
             "aws-jwt-verify 5.2.1 supports no RSA-PSS (its supportedSignatureAlgorithms lists RS*, ES*, EdDSA)"),
        Case("expired_20s_default_leeway", "generic_default_grace", mint(rs, claims(now, exp=now - 20)), ACCEPT,
             "JwtExpiredError", "defaults: our leeway is 60 s (issue 2), aws-jwt-verify's graceSeconds is 0"),
        # Cognito user pool tokens
        Case("cognito_access_token", "cognito_access", cognito(cognito_access(now)), ACCEPT, ACCEPT),
        Case("cognito_id_token", "cognito_id", cognito(cognito_id(now)), ACCEPT, ACCEPT),
        Case("cognito_global_issuer_format", "cognito_access",
             cognito(cognito_access(now, iss=POOL_ISSUER.replace("https://cognito-idp.", "https://issuer-cognito-idp."))),
             ACCEPT, ACCEPT),
        Case("cognito_in_group", "cognito_admins", cognito(cognito_access(now)), ACCEPT, ACCEPT),
        Case("cognito_id_token_as_access", "cognito_access", cognito(cognito_id(now)), "wrong_token_use",
             "CognitoJwtInvalidTokenUseError"),
        Case("cognito_access_token_as_id", "cognito_id", cognito(cognito_access(now)), "wrong_token_use",
             "CognitoJwtInvalidTokenUseError"),
        Case("cognito_access_wrong_client", "cognito_access", cognito(cognito_access(now, client_id="other-client")),
             "invalid_audience", "CognitoJwtInvalidClientIdError"),
        Case("cognito_access_aud_instead_of_client_id", "cognito_access",
             cognito(cognito_access(now, client_id=None, aud=CLIENT_ID)), "missing_claim",
             "CognitoJwtInvalidClientIdError"),
        Case("cognito_id_wrong_aud", "cognito_id", cognito(cognito_id(now, aud="other-client")), "invalid_audience",
             "CognitoJwtInvalidClientIdError"),
        Case("cognito_no_token_use", "cognito_access", cognito(cognito_access(now, token_use=None)), "missing_claim",
             "CognitoJwtInvalidTokenUseError"),
        Case("cognito_token_use_refresh", "cognito_access", cognito(cognito_access(now, token_use="refresh")),
             "wrong_token_use", "CognitoJwtInvalidTokenUseError"),
        Case("cognito_other_pool", "cognito_access",
             cognito(cognito_access(now, iss=POOL_ISSUER.replace("AbCdEf123", "Zz9Other"))), "unknown_issuer",
             "ParameterValidationError"),
        Case("cognito_expired", "cognito_access",
             cognito(cognito_access(now, iat=now - 7200, auth_time=now - 7200, exp=now - 3600)), "expired",
             "JwtExpiredError"),
        Case("cognito_not_in_group", "cognito_admins", cognito(cognito_access(now, **{"cognito:groups": ["users"]})),
             "insufficient_group", "CognitoJwtInvalidGroupError"),
        Case("cognito_no_groups", "cognito_admins", cognito(cognito_access(now, **{"cognito:groups": None})),
             "insufficient_group", "CognitoJwtInvalidGroupError"),
        Case("cognito_signed_by_other_key", "cognito_access",
             mint(SigningKey.generate("RS256", kid=COGNITO_KEY.kid), cognito_access(now), typ=None),
             "bad_signature", "JwtInvalidSignatureError"),
    ]
    return cases


# Collected once for the test ids and the coverage test; the tokens the verdict test uses are minted again when the
# module's first test runs (fresh_corpus), because several cases sit within seconds of the leeway edge and pytest
# may collect this module a minute or more before it runs it.
CORPUS = corpus()


@pytest.fixture(scope="module")
def reference():
    reference_available()
    with ReferenceVerifier() as verifier:
        yield verifier


@pytest.fixture(scope="module")
def fresh_corpus() -> dict[str, Case]:
    return {case.name: case for case in corpus()}


@pytest.mark.parametrize("name", [c.name for c in CORPUS])
def test_verdicts_match_the_reference(name: str, fresh_corpus: dict[str, Case], reference: ReferenceVerifier):
    case = fresh_corpus[name]
    ours, principal = our_verdict(case.setup, case.token)
    theirs = reference.verify(SETUPS[case.setup].reference, case.token)
    their_verdict = ACCEPT if theirs["valid"] else theirs["error"]
    assert (ours, their_verdict) == (case.ours, case.reference), (
        f"{case.name}: expected ours={case.ours} reference={case.reference}, got ours={ours} "
        f"reference={their_verdict} ({theirs.get('message', '')})")
    if ours == ACCEPT and their_verdict == ACCEPT:
        same = dict(principal.claims) == theirs["payload"]
        assert same != bool(case.why_claims_differ), (
            f"{case.name}: both accept, so both must read the same claims unless the case says why not")


def test_corpus_covers_agreement_and_documented_differences():
    agree_accept = [c for c in CORPUS if c.ours == ACCEPT and c.reference == ACCEPT]
    agree_reject = [c for c in CORPUS if c.ours != ACCEPT and c.reference != ACCEPT]
    differ = [c for c in CORPUS if c.why_different]
    assert len({c.name for c in CORPUS}) == len(CORPUS), "case names must be unique"
    assert len(agree_accept) >= 10 and len(agree_reject) >= 20 and differ
    # Every difference where the reference accepts and we refuse is a rule of ours; where we accept and the
    # reference refuses, a limit of the reference or a documented default. Neither may be an authorization check.
    assert not [c.name for c in differ if c.ours in ("insufficient_scope", "insufficient_group", "invalid_audience",
                                                     "unknown_issuer", "bad_signature", "expired")]


# --- random agreement where the rules coincide ----------------------------------------------------------------------

# Offsets from now, at least 10 s from every edge (+-GRACE and 0): both sides read the real clock.
_offsets = st.one_of(st.integers(-5000, -GRACE - 10), st.integers(-GRACE + 10, -10), st.integers(10, GRACE - 10),
                     st.integers(GRACE + 10, 5000))


@st.composite
def random_tokens(draw):
    alg = draw(st.sampled_from(ALGS))
    now = int(time.time())
    body = {"iss": draw(st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example"])), "sub": "user-1",
            "aud": draw(st.sampled_from([AUDIENCE, "other-api", [AUDIENCE, "x"], ["x", "y"]])),
            "exp": now + draw(_offsets), "iat": now - 10}
    if draw(st.booleans()):
        body["nbf"] = now + draw(_offsets)
    token = mint(KEYS[alg], body)
    head, payload, sig = token.split(".")
    tamper = draw(st.sampled_from(["none", "none", "signature", "payload", "kid", "alg"]))
    if tamper == "signature":
        i = draw(st.integers(0, len(sig) - 2))  # not the last character: its unused bits are a separate case
        sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    elif tamper == "payload":
        payload = segment(dict(body, sub="user-2"))
    elif tamper == "kid":
        head = segment({"alg": alg, "kid": KEYS[draw(st.sampled_from([a for a in ALGS if a != alg]))].kid,
                        "typ": "at+jwt"})
    elif tamper == "alg":
        head = segment({"alg": draw(st.sampled_from([a for a in ALGS if a != alg])), "kid": KEYS[alg].kid,
                        "typ": "at+jwt"})
    return f"{head}.{payload}.{sig}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(token=random_tokens())
def test_random_tokens_same_verdict(token: str, reference: ReferenceVerifier):
    ours, _ = our_verdict("generic", token)
    theirs = reference.verify(SETUPS["generic"].reference, token)
    assert (ours == ACCEPT) == theirs["valid"], f"ours={ours} reference={theirs.get('error', ACCEPT)}"
