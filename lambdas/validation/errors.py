"""Why a token was refused: one exception type with a stable machine-readable code for every way a token can fail."""
from __future__ import annotations

# Authentication failures (the caller is not who the token says, or the token is not usable): HTTP 401.
# Authorization failures (a good token that lacks what the route needs): HTTP 403.
# Key-source failures (the issuer's keys cannot be had right now): the caller must fail closed; 401 at a gateway.
# wrong_token_use stays a 401 even when a route (Requirement.token_use) rather than the issuer demands the kind:
# an ID token offered where an access token is required is not a bearer credential for the API at all (RFC 6750
# 3.1 invalid_token, RFC 9068 4), and no scope, role or group added to it would make it acceptable; a 403 would
# also tell the client "authenticated, ask for more permissions", which is the wrong fix. One code, one status,
# wherever the rule is enforced.
AUTHORIZATION_CODES = frozenset({"insufficient_scope", "insufficient_role", "insufficient_group", "claim_mismatch"})
KEY_SOURCE_CODES = frozenset({"jwks_unavailable"})
# Every code that means "cannot decide now", not "no": the issuer's keys, its introspection endpoint, the shared
# denylist or the DPoP replay store could not be reached, or the DPoP nonce key is missing. Entry points fail closed
# with 500/503, never cached.
UNAVAILABLE_CODES = KEY_SOURCE_CODES | frozenset({"introspection_unavailable", "denylist_unavailable",
                                                  "replay_store_unavailable", "dpop_nonce_unavailable"})
# Refusals of proof of possession (RFC 9449 DPoP, RFC 8705 certificate binding): 401 with WWW-Authenticate.
# Refusals for a missing or bad DPoP proof: answered with DPoP's challenge (RFC 9449 7.1), not Bearer's.
DPOP_CODES = frozenset({"invalid_dpop_proof", "use_dpop_nonce", "dpop_required", "dpop_bound_token"})
POSSESSION_CODES = DPOP_CODES | {"certificate_required", "certificate_mismatch"}

# Every code a TokenRejected can carry, with what it means. The set is stable: callers and dashboards key on it.
CODES = {
    "malformed": "not a well-formed compact JWS/JWT (segments, base64url, JSON, header or claim types)",
    "token_too_large": "the token or its header exceeds the size limit (checked before any decoding)",
    "unsupported_alg": "alg is none, HMAC or unknown: never accepted",
    "alg_not_allowed": "alg is not in the issuer's allow-list, or does not match the key's type/curve/alg",
    "unknown_kid": "no key with the token's kid in the issuer's key set",
    "bad_signature": "the signature does not verify",
    "unknown_issuer": "iss is not a trusted issuer, not allowed on this route, or names another tenant",
    "invalid_audience": "aud (Cognito access tokens: client_id) is not one this API accepts",
    "expired": "exp (plus leeway) has passed",
    "not_yet_valid": "nbf is in the future beyond the leeway",
    "issued_in_future": "iat is in the future beyond the leeway",
    "token_too_old": "iat is older than the issuer's maximum token age",
    "missing_claim": "a required claim (iss, sub, exp, aud, token_use, tid, ...) is absent",
    "wrong_token_use": "an ID token where an access token is required, or the reverse",
    "wrong_typ": "the typ header marks something other than an access or ID token",
    "invalid_nonce": "the ID token's nonce is not the one the login sent",
    "invalid_azp": "the ID token was issued to another client (azp)",
    "invalid_at_hash": "the access token is not the one the ID token was issued with",
    "jwks_unavailable": "the issuer's keys cannot be had right now: fail closed",
    "insufficient_scope": "authenticated, but lacks a scope the route requires",
    "insufficient_role": "authenticated, but lacks a role the route requires",
    "insufficient_group": "authenticated, but lacks a group the route requires",
    "claim_mismatch": "authenticated, but a claim the route checks has a value it does not allow",
    "inactive_token": "the issuer's introspection endpoint says the token is not active (revoked, expired, unknown)",
    "introspection_unavailable": "the issuer's introspection endpoint cannot be reached or answered badly: fail closed",
    "revoked": "the token, its session or its subject is on the denylist (revoked or logged out)",
    "denylist_unavailable": "the shared denylist cannot be read right now: fail closed",
    "invalid_dpop_proof": "the DPoP proof is missing, malformed, replayed, for another request or another key",
    "use_dpop_nonce": "the route wants a DPoP proof carrying the server's current nonce (DPoP-Nonce header)",
    "dpop_required": "the route requires a DPoP-bound token sent as Authorization: DPoP with a DPoP proof",
    "dpop_bound_token": "a DPoP-bound token (cnf.jkt) sent as a Bearer token; send it with its DPoP proof",
    "replay_store_unavailable": "the DPoP replay store cannot be written right now: fail closed",
    "dpop_nonce_unavailable": "the route requires DPoP nonces and this entry point has no nonce key: fail closed",
    "certificate_required": "the route (or the token's cnf) needs a mutual TLS client certificate, none was given",
    "certificate_mismatch": "the token is bound to another client certificate (cnf x5t#S256)",
    "invalid_logout_token": "a back-channel logout token failed a check of OpenID Back-Channel Logout 1.0 2.6",
    "route_not_found": "the request matches no route of the API (backend guards; the ASGI middleware answers 404)",
    "route_mismatch": "a REST REQUEST event's method ARN and routed resource name different routes: refused",
    "csrf_refused": "a cookie-authenticated state-changing request lacks the CSRF header or comes from another origin",
}


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
