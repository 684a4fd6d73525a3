"""Why a token was refused: one exception type with a stable machine-readable code for every way a token can fail."""
from __future__ import annotations

# Authentication failures (the caller is not who the token says, or the token is not usable): HTTP 401.
# Authorization failures (a good token that lacks what the route needs): HTTP 403.
# Key-source failures (the issuer's keys cannot be had right now): the caller must fail closed; 401 at a gateway.
AUTHORIZATION_CODES = frozenset({"insufficient_scope", "insufficient_role", "insufficient_group", "claim_mismatch"})
KEY_SOURCE_CODES = frozenset({"jwks_unavailable"})


class TokenRejected(Exception):
    """A token failed a check.

    code      stable reason, e.g. "expired", "bad_signature", "unknown_issuer", "insufficient_scope"
    message   one sentence a person can read; never contains the token or its signature
    expected  what the check wanted (a value that is safe to log), or None
    found     what the token carried (a value that is safe to log), or None
    hint      how the caller fixes it, e.g. "request the token for resource orders-api"
    """

    def __init__(self, code: str, message: str, *, expected: object = None, found: object = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.expected = expected
        self.found = found
        self.hint = hint

    @property
    def status(self) -> int:
        """The HTTP status a gateway should answer with: 403 for a valid token lacking permissions, else 401."""
        return 403 if self.code in AUTHORIZATION_CODES else 401

    @property
    def is_authorization_failure(self) -> bool:
        return self.code in AUTHORIZATION_CODES

    def as_dict(self) -> dict:
        """A JSON-safe view for logs and the CLI's --json output."""
        out: dict = {"code": self.code, "message": self.message}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.found is not None:
            out["found"] = self.found
        if self.hint:
            out["hint"] = self.hint
        return out

    def __repr__(self) -> str:
        return f"TokenRejected(code={self.code!r}, message={self.message!r})"
