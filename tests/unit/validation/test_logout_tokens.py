"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 section 2.6): real signatures, every rule
broken once, and what a valid one records on the denylist."""
from __future__ import annotations

import time
import uuid

import pytest

from lambdas.validation import IssuerConfig, Verifier
from lambdas.validation.config import RevocationConfig
from lambdas.validation.denylist import Denylist, MemoryDenylistStore
from lambdas.validation.errors import TokenRejected
from lambdas.validation.logout_token import (BACKCHANNEL_LOGOUT_EVENT, LogoutTokenValidator,
                                             logout_token_from_form)
from lambdas.validation.replay import MemoryReplayStore
from tests.support.dpop import NOW, at_test_time
from tests.support.keys import SIGNING_KEY as KEY  # the run's trusted key
from tests.support.tokens import ISSUER, SigningKey, mint

CONFIG = IssuerConfig(ISSUER, ["orders-api"], jwks=KEY.jwks(), name="corp",
                      revocation=RevocationConfig(logout_audiences=("orders-web",)))
SILENT = IssuerConfig("https://silent.example.com", ["orders-api"], jwks=KEY.jwks(), name="silent")


def logout_token(key=KEY, *, typ="logout+jwt", **overrides) -> str:
    claims = {"iss": ISSUER, "aud": "orders-web", "iat": int(time.time()), "jti": uuid.uuid4().hex,
              "sid": "session-1", "sub": "alice", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return mint(key, claims, typ=typ)


@pytest.fixture
def validator():
    return LogoutTokenValidator(Verifier([CONFIG, SILENT]), MemoryReplayStore())


def test_valid_logout_ends_the_session_on_the_denylist(validator):
    event = validator.validate(logout_token())
    assert (event.issuer_name, event.sid, event.sub) == ("corp", "session-1", "alice")
    denylist = Denylist(MemoryDenylistStore())
    validator.record(event, denylist)
    session_token = {"iss": ISSUER, "sub": "alice", "sid": "session-1", "jti": "a", "iat": time.time() - 5}
    with pytest.raises(TokenRejected, match="session"):
        denylist.check(ISSUER, session_token, cache_seconds=0)
    # Only that session: alice's other session is untouched.
    denylist.check(ISSUER, dict(session_token, sid="session-2"), cache_seconds=0)


def test_sub_only_logout_ends_every_session_of_the_subject(validator):
    event = validator.validate(logout_token(sid=None))
    denylist = Denylist(MemoryDenylistStore())
    validator.record(event, denylist)
    with pytest.raises(TokenRejected, match="subject"):
        denylist.check(ISSUER, {"sub": "alice", "sid": "any", "iat": time.time() - 1}, cache_seconds=0)


def test_typ_may_be_absent_or_the_media_type(validator):
    validator.validate(logout_token(typ=None))
    validator.validate(logout_token(typ="application/logout+jwt"))


REFUSALS = {
    "typ of an access token": ({"typ": "at+jwt"}, r"typ is 'at\+jwt'"),
    "another client": ({"aud": "billing-web"}, "addressed to another client"),
    "no aud": ({"aud": None}, "addressed to another client"),
    "stale iat": ({"iat": NOW - 600}, "not within the last 120 s"),
    "future iat": ({"iat": NOW + 600}, "not within the last 120 s"),
    "no iat": ({"iat": None}, "no iat"),
    "expired": ({"exp": NOW - 300}, "expired"),
    "no events": ({"events": None}, "events has no"),
    "other event": ({"events": {"http://schemas.openid.net/event/other": {}}}, "events has no"),
    "event not an object": ({"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}}, "events has no"),
    "nonce (an ID token)": ({"nonce": "n"}, "carries a nonce"),
    "neither sid nor sub": ({"sid": None, "sub": None}, "neither a sid nor a sub"),
    "no jti": ({"jti": None}, "has no jti"),
    "untrusted issuer": ({"iss": "https://evil.example.com"}, "issuer is not trusted"),
    "issuer without logout audiences": ({"iss": "https://silent.example.com"}, "has no revocation.logout_audiences"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_each_rule_refuses(validator, name):
    overrides, message = REFUSALS[name]
    token = logout_token(**{"typ": "logout+jwt", **at_test_time(overrides)})
    with pytest.raises(TokenRejected, match=message) as info:
        validator.validate(token)
    assert info.value.code == "invalid_logout_token"


def test_signature_by_another_key_is_refused(validator):
    with pytest.raises(TokenRejected, match="signature does not verify") as info:
        validator.validate(logout_token(SigningKey.generate("RS256", kid=KEY.kid)))
    assert info.value.code == "invalid_logout_token"


def test_replayed_logout_token_is_refused(validator):
    token = logout_token()
    validator.validate(token)
    with pytest.raises(TokenRejected, match="already received"):
        validator.validate(token)


@pytest.mark.parametrize("body, content_type, message", [
    ("logout_token=abc", "application/json", "must be application/x-www-form-urlencoded"),
    ("token=abc", "application/x-www-form-urlencoded", "exactly one logout_token"),
    ("logout_token=a&logout_token=b", "application/x-www-form-urlencoded", "exactly one logout_token"),
])
def test_form_refusals(body, content_type, message):
    with pytest.raises(TokenRejected, match=message):
        logout_token_from_form(body.encode(), content_type)


def test_form_reading():
    assert logout_token_from_form(b"logout_token=a.b.c", "application/x-www-form-urlencoded; charset=UTF-8") == "a.b.c"
