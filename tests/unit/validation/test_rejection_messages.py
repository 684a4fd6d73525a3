"""Rejections that point at the right fix: near-miss issuers say what differs, times read as dates, and a token of
the wrong kind says which claim decided."""
from __future__ import annotations

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.support.tokens import AUDIENCE, mint, standard_claims

NOW = 1_800_000_000          # 2027-01-15T08:00:00Z
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def rejection(key, issuer, token_claims, *, profile="generic", header=None, **config) -> TokenRejected:
    verifier = Verifier([IssuerConfig(issuer, [AUDIENCE], jwks=key.jwks(), profile=profile, **config)],
                        clock=lambda: NOW)
    with pytest.raises(TokenRejected) as info:
        verifier.verify(mint(key, token_claims, header=header))
    return info.value


@pytest.mark.parametrize("trusted, iss, says", [
    ("https://idp.example.com", "https://idp.example.com/", "the token's iss has a trailing slash that the trusted "
     "issuer 'https://idp.example.com' lacks"),
    ("https://idp.example.com/", "https://idp.example.com", "the token's iss lacks a trailing slash"),
    (f"https://login.microsoftonline.com/{TENANT}/v2.0", f"https://sts.windows.net/{TENANT}/",
     "this is an Entra ID v1.0 token"),
    (f"https://sts.windows.net/{TENANT}/", f"https://login.microsoftonline.com/{TENANT}/v2.0",
     "this is an Entra ID v2.0 token"),
    ("https://IdP.example.com", "https://idp.example.com", "only in letter case"),
    ("https://idp.example.com", "http://idp.example.com", "uses http:// where the trusted issuer"),
])
def test_a_near_miss_issuer_says_exactly_what_differs(key, trusted, iss, says):
    profile = "entra" if "microsoft" in trusted or "windows" in trusted else "generic"
    extra = {"tid": TENANT, "azpacr": "0"} if profile == "entra" else {}
    exc = rejection(key, trusted, standard_claims(now=NOW, iss=iss, **extra), profile=profile)
    assert exc.code == "unknown_issuer" and says in exc.message
    assert "add this issuer" not in (exc.hint or "")


def test_an_unrelated_issuer_keeps_the_plain_message(key):
    exc = rejection(key, "https://idp.example.com", standard_claims(now=NOW, iss="https://other.example.org"))
    assert exc.message == "the token's issuer 'https://other.example.org' is not trusted here"
    assert "add this issuer" in exc.hint


@pytest.mark.parametrize("claim, offset, code, text", [
    ("exp", -3600, "expired", "the token expired at 2027-01-15T07:00:00Z (60 min ago)"),
    ("nbf", 7200, "not_yet_valid", "not valid before 2027-01-15T10:00:00Z (in 2 h)"),
    ("iat", 600, "issued_in_future", "at 2027-01-15T08:10:00Z (in 10 min)"),
])
def test_times_read_as_iso_dates_with_their_distance_from_now(key, claim, offset, code, text):
    claims = standard_claims(now=NOW)
    claims[claim] = NOW + offset
    if claim == "exp":
        claims["iat"] = claims["nbf"] = NOW - 7200
    exc = rejection(key, claims["iss"], claims)
    assert exc.code == code and text in exc.message
    assert "2027-01-15T" in str(exc.expected) and "2027-01-15T" in str(exc.found)
    assert str(NOW) not in exc.message


@pytest.mark.parametrize("profile, token_claims, says", [
    ("entra", {"tid": TENANT, "aud": AUDIENCE}, "entra profile: it has neither azpacr (v2.0) nor appidacr (v1.0)"),
    ("entra", {"tid": TENANT, "nonce": "n"}, "entra profile: it has a nonce claim"),
    ("okta", {"nonce": "n"}, "okta profile: it has a nonce claim"),
    ("generic", {"at_hash": "x"}, "generic profile: it has at_hash, which only ID tokens carry"),
])
def test_a_token_of_the_wrong_kind_says_which_claim_decided(key, profile, token_claims, says):
    issuer = f"https://login.microsoftonline.com/{TENANT}/v2.0" if profile == "entra" else "https://idp.example.com"
    exc = rejection(key, issuer, standard_claims(now=NOW, iss=issuer, **token_claims), profile=profile,
                    header={"typ": "JWT"})
    assert exc.code == "wrong_token_use" and says in exc.message


@pytest.mark.parametrize("iss", ["http://[", "https://[::1", "://", "https://idp.example.com:99999/", "\x00", "a" * 300,
                                 "https://sts.windows.net/" + "x" * 36 + "/"])
def test_hostile_issuers_are_refused_as_unknown_never_raised_on(key, iss):
    exc = rejection(key, "https://idp.example.com", standard_claims(now=NOW, iss=iss))
    assert exc.code == "unknown_issuer"
