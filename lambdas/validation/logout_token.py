"""OpenID Connect Back-Channel Logout 1.0: validating a logout token (section 2.6) and recording what it logs out.

A logout token is a JWT the issuer POSTs to the relying party when a session ends. It is checked like an ID token
(signature by a trusted issuer's key, iss, aud = a client whose logout the issuer sends, a fresh iat) plus the rules
that keep it from being confused with any other token: the back-channel logout `events` member, a `sid` and/or
`sub`, no `nonce`, `typ` logout+jwt when present, and a `jti` never accepted before. Then the session (sid) or the
subject (sub) is recorded on the shared denylist as logged out from that moment.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Callable

from .config import IssuerConfig
from .denylist import Denylist, DenylistUnavailable
from .errors import TokenRejected
from .jws import verify_jws
from .records import Record, set_field
from .replay import ReplayStore, ReplayStoreUnavailable

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TYP = "logout+jwt"
# Section 2.6 step 6 leaves "recent" to the RP; two minutes covers delivery and clock skew without letting an
# intercepted logout token be kept and replayed later (its jti is remembered for that long).
MAX_LOGOUT_TOKEN_AGE_SECONDS = 120
MAX_LOGOUT_TOKEN_CHARS = 8192


def _invalid(message: str, *, hint: str | None = None, found: object = None) -> TokenRejected:
    return TokenRejected("invalid_logout_token", message, found=found,
                         hint=hint or "the issuer must send a logout token as OpenID Back-Channel Logout 1.0 2.4 "
                                      "describes")


class LogoutEvent(Record):
    """A verified logout: which issuer, and the session and/or subject it ends."""

    __slots__ = ("issuer_name", "issuer", "sid", "sub", "jti", "issued_at")

    def __init__(self, issuer_name: str, issuer: str, sid: str | None, sub: str | None, jti: str,
                 issued_at: float) -> None:
        set_field(self, "issuer_name", issuer_name)
        set_field(self, "issuer", issuer)
        set_field(self, "sid", sid)
        set_field(self, "sub", sub)
        set_field(self, "jti", jti)
        set_field(self, "issued_at", issued_at)


class LogoutTokenValidator:
    """Validates logout tokens from the issuers of a route table (those with revocation.logout_audiences)."""

    def __init__(self, verifier: Any, replay: ReplayStore, *, clock: Callable[[], float] = time.time,
                 max_age_seconds: int = MAX_LOGOUT_TOKEN_AGE_SECONDS) -> None:
        self.verifier = verifier
        self.replay = replay
        self._clock = clock
        self.max_age_seconds = max_age_seconds

    def _issuer(self, iss: Any) -> IssuerConfig:
        if type(iss) is not str:
            raise _invalid("the logout token has no iss string")
        for config in self.verifier.issuers:
            if iss in config.accepted_issuers:
                if not config.revocation.logout_audiences:
                    raise _invalid(f"issuer {config.display_name} has no revocation.logout_audiences, so no logout "
                                   f"token from it is accepted", hint="list the client ids it logs out in the "
                                                                      "policy (issuers.NAME.revocation)")
                return config
        raise _invalid("the logout token's issuer is not trusted here", found=iss[:200])

    def validate(self, token: Any) -> LogoutEvent:
        if not isinstance(token, str) or not token or len(token) > MAX_LOGOUT_TOKEN_CHARS:
            raise _invalid("the request carries no logout_token of a sensible size")
        from .compact import decode_json_object, decode_segment, split_token

        try:
            payload_segment = split_token(token)[1]
            unverified = decode_json_object(decode_segment(payload_segment, "claims set"), "claims set")
        except TokenRejected as exc:
            raise _invalid(f"the logout token is not a well-formed JWT: {exc.message}") from None
        config = self._issuer(unverified.get("iss"))
        try:
            header, _ = verify_jws(token, self.verifier.key_source(config.display_name),
                                   algorithms=config.algorithms)
        except TokenRejected as exc:
            if exc.code == "jwks_unavailable":
                raise
            raise _invalid(f"the logout token's signature does not verify: {exc.message}") from None
        claims = unverified
        typ = header.get("typ")
        if typ is not None and typ.lower() not in (LOGOUT_TYP, "application/" + LOGOUT_TYP):
            raise _invalid(f"the logout token's typ is {typ[:40]!r}, not {LOGOUT_TYP!r}", found=typ[:40])
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not set(a for a in audiences if isinstance(a, str)) & set(config.revocation.logout_audiences):
            raise _invalid("the logout token is addressed to another client (aud)",
                           found=[str(a)[:80] for a in audiences[:5]])
        now = self._clock()
        iat = claims.get("iat")
        if type(iat) not in (int, float):
            raise _invalid("the logout token has no iat")
        if iat > now + config.leeway_seconds or iat < now - self.max_age_seconds - config.leeway_seconds:
            raise _invalid(f"the logout token's iat is not within the last {self.max_age_seconds} s", found=iat)
        exp = claims.get("exp")
        if exp is not None and (type(exp) not in (int, float) or exp + config.leeway_seconds <= now):
            raise _invalid("the logout token has expired", found=exp)
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
            raise _invalid(f"the logout token's events has no {BACKCHANNEL_LOGOUT_EVENT} object member",
                           hint="only a back-channel logout token may end a session here")
        if "nonce" in claims:
            raise _invalid("the logout token carries a nonce, which section 2.4 prohibits (an ID token is not a "
                           "logout token)")
        sid, sub = claims.get("sid"), claims.get("sub")
        sid = sid if isinstance(sid, str) and sid else None
        sub = sub if isinstance(sub, str) and sub else None
        if sid is None and sub is None:
            raise _invalid("the logout token names neither a sid nor a sub")
        jti = claims.get("jti")
        if type(jti) is not str or not jti or len(jti) > 256:
            raise _invalid("the logout token has no jti")
        key = "logout:" + hashlib.sha256(f"{claims['iss']}\n{jti}".encode("utf-8")).hexdigest()
        try:
            first = self.replay.first_use(key, expires_at=now + 2 * (self.max_age_seconds + config.leeway_seconds))
        except ReplayStoreUnavailable as exc:
            raise TokenRejected("replay_store_unavailable", f"the logout token's jti cannot be recorded: {exc}",
                                hint="the issuer retries a failed delivery") from None
        if not first:
            raise _invalid("the logout token was already received (its jti was seen before)")
        return LogoutEvent(config.display_name, claims["iss"], sid, sub, jti, float(iat))

    def record(self, event: LogoutEvent, denylist: Denylist) -> None:
        """Put the session (sid) and/or subject (sub) on the denylist as logged out now. Raises
        TokenRejected("denylist_unavailable") when the store cannot be written (the issuer then retries)."""
        config = next(c for c in self.verifier.issuers if c.display_name == event.issuer_name)
        lifetime = config.revocation.max_token_lifetime_seconds
        try:
            if event.sid is not None:
                denylist.revoke(event.issuer, "sid", event.sid, lifetime_seconds=lifetime)
            if event.sub is not None and event.sid is None:
                # A sub alone ends every session of the subject (section 2.4); with a sid, only that session.
                denylist.revoke(event.issuer, "sub", event.sub, lifetime_seconds=lifetime)
        except DenylistUnavailable as exc:
            raise TokenRejected("denylist_unavailable", f"the logout cannot be recorded: {exc}") from None


def logout_token_from_form(body: bytes | str, content_type: str | None) -> str:
    """The logout_token parameter of the POST body (application/x-www-form-urlencoded, section 2.5)."""
    from urllib.parse import parse_qs

    if (content_type or "").split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        raise _invalid("the logout request must be application/x-www-form-urlencoded")
    text = body.decode("ascii", "replace") if isinstance(body, bytes) else body
    values = parse_qs(text, keep_blank_values=True, max_num_fields=10).get("logout_token", [])
    if len(values) != 1:
        raise _invalid("the logout request must carry exactly one logout_token parameter")
    return values[0]


__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "LogoutEvent", "LogoutTokenValidator", "logout_token_from_form"]
