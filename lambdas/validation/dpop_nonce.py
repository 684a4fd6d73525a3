"""Server-provided DPoP nonces (RFC 9449 sections 8 and 9) that every instance of an entry point can check without
shared state.

A nonce is HMAC-SHA256(key, context || time step), base64url: any instance holding the key computes the same value
for the same step, so the nonce one Lambda execution environment or forward-auth replica handed out is accepted by
all the others, with nothing stored. A proof must carry the nonce of the current step or of the one before, so a
nonce is accepted for at least STEP_SECONDS and at most 2 * STEP_SECONDS (`LIFETIME_SECONDS`) after it was issued;
what it bounds is how long before its use a proof can have been made, whatever its iat says (RFC 9449 section 11.1:
pre-generated proofs). The key is a secret by name (AUTHGATE_DPOP_NONCE_KEY, or AUTHGATE_DPOP_NONCE_KEY_ARN for
Secrets Manager), read like every other runtime secret (secrets.py).

    nonces = DpopNonces.from_secret(secret_text)
    nonces.current()          # the value for the DPoP-Nonce header
    nonces.accepts(nonce)     # constant-time: the current or the previous step's nonce
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Callable

from .errors import TokenRejected
from .jwk import b64url_decode, b64url_encode

STEP_SECONDS = 60
LIFETIME_SECONDS = 2 * STEP_SECONDS
MIN_KEY_BYTES = 32
# Bound into every MAC, so the key cannot be confused with a key for something else that MACs small integers.
_CONTEXT = b"authgate DPoP nonce v1\n"
_KEY_HINT = ("set AUTHGATE_DPOP_NONCE_KEY to base64url of 32 random bytes (e.g. python -c \"import secrets; "
             "print(secrets.token_urlsafe(32))\"), or AUTHGATE_DPOP_NONCE_KEY_ARN to a Secrets Manager secret holding it")


class DpopNonceRequired(TokenRejected):
    """use_dpop_nonce: the proof lacks the server's current nonce; `dpop_nonce` is the one to retry with (the
    DPoP-Nonce header of the 401, RFC 9449 section 9)."""

    def __init__(self, message: str, *, dpop_nonce: str) -> None:
        super().__init__("use_dpop_nonce", message,
                         hint="retry with a new proof whose nonce claim is the DPoP-Nonce response header")
        self.dpop_nonce = dpop_nonce


class DpopNonces:
    """Issues and checks the nonces of one key. `clock` returns seconds since the epoch."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a DPoP nonce key needs at least {MIN_KEY_BYTES} random bytes; {_KEY_HINT}")
        self._key = key
        self._clock = clock

    @classmethod
    def from_secret(cls, text: str, *, clock: Callable[[], float] = time.time) -> "DpopNonces":
        """The key from its secret text: unpadded base64url of at least 32 bytes (surrounding whitespace ignored)."""
        try:
            key = b64url_decode(text.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError(f"the DPoP nonce key is not base64url ({exc}); {_KEY_HINT}") from None
        return cls(key, clock=clock)

    def _step(self) -> int:
        return int(self._clock() // STEP_SECONDS)

    def _nonce(self, step: int) -> str:
        return b64url_encode(hmac.new(self._key, _CONTEXT + str(step).encode("ascii"), hashlib.sha256).digest())

    def current(self) -> str:
        """The nonce to hand out now (the DPoP-Nonce header value)."""
        return self._nonce(self._step())

    def accepts(self, nonce: object) -> bool:
        """Whether `nonce` (a proof's nonce claim, any JSON value) is this step's or the previous step's nonce.
        Both are compared, in constant time, whatever the first comparison gave."""
        if type(nonce) is not str or not nonce.isascii():
            return False
        step = self._step()
        given = nonce.encode("ascii")
        current = hmac.compare_digest(given, self._nonce(step).encode("ascii"))
        previous = hmac.compare_digest(given, self._nonce(step - 1).encode("ascii"))
        return current | previous

    def check(self, nonce: object) -> None:
        """Raise DpopNonceRequired (with a fresh nonce) unless the proof's nonce claim is accepted."""
        if self.accepts(nonce):
            return
        problem = "carries no nonce" if nonce is None else "carries a nonce that is not the server's current one"
        raise DpopNonceRequired(f"the route requires a server-provided DPoP nonce, and the proof {problem} (a "
                                f"nonce is accepted for at most {LIFETIME_SECONDS} s)", dpop_nonce=self.current())


__all__ = ["DpopNonceRequired", "DpopNonces", "LIFETIME_SECONDS", "STEP_SECONDS"]
