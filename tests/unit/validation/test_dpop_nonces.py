"""Server-provided DPoP nonces (RFC 9449 section 8): stateless HMAC-SHA256 over a time step, the same at every
instance holding the key, accepted for the current and the previous step only, from one key only."""
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from lambdas.validation.dpop_nonce import LIFETIME_SECONDS, STEP_SECONDS, DpopNonceRequired, DpopNonces
from lambdas.validation.possession import dpop_nonce_header, request_checks_from_env
from lambdas.validation.errors import TokenRejected

KEY = bytes(range(32))
T0 = 1_700_000_040.0   # the start of a step (a multiple of 60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def nonces(clock: Clock, key: bytes = KEY) -> DpopNonces:
    return DpopNonces(key, clock=clock)


def test_a_nonce_is_hmac_sha256_of_the_step_under_the_key():
    step = int(T0 // STEP_SECONDS)
    mac = hmac.new(KEY, b"authgate DPoP nonce v1\n" + str(step).encode(), hashlib.sha256).digest()
    assert nonces(Clock(T0)).current() == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert T0 % STEP_SECONDS == 0 and LIFETIME_SECONDS == 2 * STEP_SECONDS == 120


def test_two_instances_with_the_same_key_accept_each_others_nonces_without_shared_state():
    clock = Clock(T0 + 10)
    first, second = nonces(clock), nonces(clock)
    assert second.accepts(first.current()) and first.accepts(second.current())


@pytest.mark.parametrize("age, accepted", [(0, True), (STEP_SECONDS - 1, True), (STEP_SECONDS, True),
                                           (2 * STEP_SECONDS - 1, True), (2 * STEP_SECONDS, False),
                                           (10 * STEP_SECONDS, False), (-STEP_SECONDS, False)])
def test_a_nonce_issued_at_the_start_of_a_step_lives_until_the_end_of_the_next(age, accepted):
    clock = Clock(T0)
    issued = nonces(clock).current()
    clock.now = T0 + age
    assert nonces(clock).accepts(issued) is accepted


def test_a_nonce_issued_at_the_end_of_a_step_lives_a_little_over_one_step():
    clock = Clock(T0 + STEP_SECONDS - 0.5)
    issued = nonces(clock).current()
    clock.now += STEP_SECONDS
    assert nonces(clock).accepts(issued)
    clock.now += 1
    assert not nonces(clock).accepts(issued)


@pytest.mark.parametrize("nonce", [None, "", 1, ["x"], {"n": 1}, "A" * 43, "é" * 43])
def test_anything_but_the_current_or_previous_nonce_is_refused(nonce):
    assert not nonces(Clock(T0)).accepts(nonce)


def test_a_nonce_of_another_key_is_refused():
    clock = Clock(T0)
    assert not nonces(clock).accepts(nonces(clock, b"\x01" * 32).current())


def test_check_raises_use_dpop_nonce_with_a_fresh_nonce_for_the_header():
    clock = Clock(T0)
    with pytest.raises(DpopNonceRequired) as info:
        nonces(clock).check("forged")
    rejection = info.value
    assert isinstance(rejection, TokenRejected) and rejection.code == "use_dpop_nonce" and rejection.status == 401
    assert dpop_nonce_header(rejection) == ("DPoP-Nonce", nonces(clock).current())
    assert "120 s" in rejection.message and "forged" not in rejection.message
    assert dpop_nonce_header(TokenRejected("invalid_dpop_proof", "x")) is None and dpop_nonce_header(None) is None
    nonces(clock).check(rejection.dpop_nonce)


@pytest.mark.parametrize("text, message", [("c2hvcnQ", "at least 32"), ("not base64url!", "not base64url"),
                                           ("A" * 43 + "=", "not base64url")])
def test_a_weak_or_garbled_key_is_refused_with_how_to_make_one(text, message):
    with pytest.raises(ValueError, match=message) as info:
        DpopNonces.from_secret(text)
    assert "token_urlsafe(32)" in str(info.value)


def test_the_key_is_read_from_the_environment_like_every_runtime_secret():
    text = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()
    checks = request_checks_from_env({"AUTHGATE_DPOP_NONCE_KEY": f" {text}\n"}, needs_shared_store=False,
                                     needs_dpop_nonces=True, clock=Clock(T0))
    assert checks.nonces.current() == nonces(Clock(T0)).current()
    assert request_checks_from_env({}, needs_shared_store=False).nonces is None


def test_an_api_with_nonce_routes_refuses_to_start_without_a_key():
    with pytest.raises(ValueError, match="AUTHGATE_DPOP_NONCE_KEY nor AUTHGATE_DPOP_NONCE_KEY_ARN"):
        request_checks_from_env({}, needs_shared_store=False, needs_dpop_nonces=True)
