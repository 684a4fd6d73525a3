"""The claim rules: issuer, algorithm, token use/typ, audience, exp/nbf/iat with leeway, token age, required claims.

Each rule is one function that raises TokenRejected, used both by the Verifier's hot path and by explain(), so a
rule exists exactly once. The issuer-derived settings arrive pre-digested in an IssuerRules (frozensets and numbers
built at init), which keeps each check to a few dictionary and set operations.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from .config import TENANT_PLACEHOLDER, IssuerConfig
from .errors import TokenRejected
from .key_source import KeySource
from .profiles import PROFILES, Profile, token_use_evidence

# Numeric dates (RFC 7519 2) far beyond any real token: bounds NaN/Infinity/absurd values without float surprises.
MAX_NUMERIC_DATE = 2 ** 53


class IssuerRules:
    """An IssuerConfig in the form the checks use, with its key source."""

    __slots__ = ("config", "name", "issuer", "audiences", "audience_list", "single_audiences", "algorithms", "profile",
                 "key_source", "leeway", "max_age", "require_exp", "token_use", "required_claims", "tenant_template")

    def __init__(self, config: IssuerConfig, key_source: KeySource) -> None:
        self.config = config
        self.name = config.display_name
        self.issuer = config.issuer
        self.audiences = frozenset(config.audiences)
        self.audience_list = list(config.audiences)
        # The audience tuple of a token whose aud is one accepted string: one shared tuple per audience, instead of
        # a new one kept by every cached Principal.
        self.single_audiences = {aud: (aud,) for aud in config.audiences}
        self.algorithms = frozenset(config.algorithms)
        self.profile: Profile = PROFILES[config.profile]
        self.key_source = key_source
        self.leeway = config.leeway_seconds
        self.max_age = config.max_token_age_seconds
        self.require_exp = config.require_exp
        self.token_use = config.token_use
        self.required_claims = config.required_claims
        self.tenant_template: tuple[str, str] | None = None
        if TENANT_PLACEHOLDER in config.issuer:
            prefix, suffix = config.issuer.split(TENANT_PLACEHOLDER)
            self.tenant_template = (prefix, suffix)


def _is_guid(value: str) -> bool:
    if len(value) != 36 or value.count("-") != 4:
        return False
    return all(c in "0123456789abcdefABCDEF-" for c in value) and [len(p) for p in value.split("-")] == [8, 4, 4, 4, 12]


def check_tenant_issuer(rules: IssuerRules, iss: str, claims: Mapping) -> None:
    """Entra multi-tenant: the `{tenantid}` slot of the configured issuer must hold exactly the token's `tid`."""
    prefix, suffix = rules.tenant_template  # type: ignore[misc]
    tenant = iss[len(prefix):len(iss) - len(suffix)] if suffix else iss[len(prefix):]
    tid = claims.get("tid")
    if type(tid) is not str:
        raise TokenRejected("missing_claim", "a multi-tenant Entra token must carry its tenant id in tid",
                            expected="tid", hint="Entra access and ID tokens always carry tid; check the profile")
    if tenant != tid or not _is_guid(tid):
        raise TokenRejected("unknown_issuer", "the token's issuer names a different tenant than its tid claim",
                            expected=rules.issuer.replace(TENANT_PLACEHOLDER, tid[:40]), found=iss[:200],
                            hint="a token from one tenant cannot claim another tenant's issuer; the token is forged "
                                 "or was issued for another tenant")


def match_tenant_template(rules: IssuerRules, iss: str) -> bool:
    prefix, suffix = rules.tenant_template  # type: ignore[misc]
    return len(iss) > len(prefix) + len(suffix) and iss.startswith(prefix) and iss.endswith(suffix)


def check_algorithm(rules: IssuerRules, alg: str) -> None:
    if alg not in rules.algorithms:
        raise TokenRejected("alg_not_allowed", f"the token is signed with {alg}, which issuer {rules.name} is not "
                            "allowed to use", expected=sorted(rules.algorithms), found=alg,
                            hint="add the algorithm to the issuer's algorithms only if the issuer really signs with it")


def check_token_use(rules: IssuerRules, header: Mapping, claims: Mapping, expected: str | None) -> str:
    """Classify the token (profiles.py has the rules per IdP) and require the use the caller expects."""
    use = rules.profile.token_use(header, claims)
    if expected is not None and use != expected:
        if expected == "access":
            hint = "an ID token proves a login to a client app; call the API with the access token instead"
        else:
            hint = "this check wants an ID token; an access token was presented"
        evidence = token_use_evidence(rules.profile.name, header, claims)
        raise TokenRejected("wrong_token_use", f"this is an {'ID' if use == 'id' else 'access'} token "
                            f"({rules.profile.name} profile: {evidence}); issuer {rules.name} accepts only {expected} "
                            f"tokens here", expected=expected, found=use, hint=hint)
    return use


def check_audience(rules: IssuerRules, claims: Mapping, token_use: str) -> tuple[str, ...]:
    """aud any-of (for Cognito access tokens, client_id). Returns the token's audiences."""
    claim = rules.profile.audience_claim(token_use)
    aud = claims.get(claim)
    if type(aud) is str:
        found: tuple[str, ...] = (aud,)
        ok = aud in rules.audiences
    elif type(aud) is list and aud and all(type(a) is str for a in aud):
        found = tuple(aud)
        ok = not rules.audiences.isdisjoint(found)
    elif aud is None:
        raise TokenRejected("missing_claim", f"the token has no {claim} claim, so its audience is unknown",
                            expected=rules.audience_list, found=None,
                            hint=f"request the token for one of {', '.join(rules.audience_list) or '(none)'}")
    else:
        raise TokenRejected("malformed", f"the token's {claim} claim must be a string or a non-empty array of "
                            "strings", found=type(aud).__name__)
    if not ok:
        if not rules.audiences:
            raise TokenRejected("invalid_audience", f"issuer {rules.name} has no audiences configured, so no token "
                                "is accepted", expected=[], found=list(found)[:10],
                                hint="configure the audience(s) this API accepts (its client id or resource URI)")
        shown = ", ".join(found[:5])
        raise TokenRejected("invalid_audience", f"token {claim} is {shown}; this API expects "
                            f"{' or '.join(rules.audience_list)}", expected=rules.audience_list,
                            found=list(found)[:10],
                            hint=f"request the token for resource {rules.audience_list[0]}")
    return found


def numeric_date(claims: Mapping, name: str) -> float | None:
    """The claim as seconds since the epoch, None when absent. JSON null is not absent: RFC 7519 defines these
    claims as numbers, so a null one is an issuer bug to report, not a claim to skip."""
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise TokenRejected("malformed", f"the token's {name} claim is null; it must be a NumericDate (seconds "
                                "since the epoch) or left out", found="null")
        return None
    if (type(value) is int or type(value) is float) and 0 <= value < MAX_NUMERIC_DATE:
        return value
    raise TokenRejected("malformed", f"the token's {name} claim must be a NumericDate (seconds since the epoch)",
                        found=type(value).__name__ if not isinstance(value, (int, float)) else "out of range")


def moment(epoch: float, now: float) -> str:
    """A NumericDate for people: ISO 8601 UTC and how far from now, e.g. `2026-12-03T14:05:00Z (3 min ago)`."""
    try:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):
        return f"{epoch} (seconds since the epoch, beyond any calendar date)"
    return f"{when} ({_distance(epoch - now)})"


def _distance(seconds: float) -> str:
    ahead, size = seconds > 0, abs(seconds)
    for unit, length, limit in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800), ("days", 86400, None)):
        if limit is None or size < limit:
            amount = f"{int(size // length)} {unit}"
            break
    return "now" if int(size) == 0 else f"in {amount}" if ahead else f"{amount} ago"


def check_expiry(rules: IssuerRules, claims: Mapping, now: float) -> float | None:
    exp = numeric_date(claims, "exp")
    if exp is None:
        if rules.require_exp:
            raise TokenRejected("missing_claim", "the token has no exp claim; tokens must expire", expected="exp",
                                hint="issue tokens with an expiry")
        return None
    if now >= exp + rules.leeway:
        raise TokenRejected("expired", f"the token expired at {moment(exp, now)} (leeway {rules.leeway} s)",
                            expected=f"exp after {moment(now - rules.leeway, now)}", found=moment(exp, now),
                            hint="get a new token (refresh it); if this is unexpected, check the clocks")
    return exp


def check_not_before(rules: IssuerRules, claims: Mapping, now: float) -> None:
    nbf = numeric_date(claims, "nbf")
    if nbf is not None and nbf > now + rules.leeway:
        raise TokenRejected("not_yet_valid", f"the token is not valid before {moment(nbf, now)} "
                            f"(leeway {rules.leeway} s)", expected=f"nbf at or before {moment(now + rules.leeway, now)}",
                            found=moment(nbf, now), hint="check the clock of the issuer and of this server")


def check_issued_at(rules: IssuerRules, claims: Mapping, now: float) -> float | None:
    iat = numeric_date(claims, "iat")
    if iat is not None and iat > now + rules.leeway:
        raise TokenRejected("issued_in_future", f"the token claims to be issued in the future, at {moment(iat, now)} "
                            f"(leeway {rules.leeway} s)", expected=f"iat at or before {moment(now + rules.leeway, now)}",
                            found=moment(iat, now), hint="check the clock of the issuer and of this server")
    return iat


def check_token_age(rules: IssuerRules, claims: Mapping, now: float) -> float | None:
    """With max_token_age_seconds set: iat is required and the token must be younger than that (plus leeway)."""
    if rules.max_age is None:
        return None
    iat = numeric_date(claims, "iat")
    if iat is None:
        raise TokenRejected("missing_claim", "the token has no iat claim, which the maximum token age needs",
                            expected="iat")
    if now - iat > rules.max_age + rules.leeway:
        raise TokenRejected("token_too_old", f"the token was issued at {moment(iat, now)}; issuer {rules.name} "
                            f"accepts tokens up to {rules.max_age} s old", expected=rules.max_age,
                            found=int(now - iat), hint="get a fresh token")
    return iat + rules.max_age + rules.leeway


def check_subject(claims: Mapping) -> str:
    sub = claims.get("sub")
    if type(sub) is str and sub:
        return sub
    if sub is None:
        raise TokenRejected("missing_claim", "the token has no sub claim", expected="sub",
                            hint="every token must name its subject")
    raise TokenRejected("malformed", "the token's sub claim must be a non-empty string", found=type(sub).__name__)


def check_required_claims(rules: IssuerRules, claims: Mapping) -> None:
    missing = [name for name in rules.required_claims if name not in claims]
    if missing:
        raise TokenRejected("missing_claim", f"the token lacks required claim(s) {', '.join(missing)}",
                            expected=list(rules.required_claims), found=sorted(claims)[:30],
                            hint=f"issuer {rules.name} must add {', '.join(missing)} to its tokens")


def optional_string(claims: Mapping, name: str) -> Any:
    value = claims.get(name)
    if type(value) is not str and (value is not None or name in claims):
        raise TokenRejected("malformed", f"the token's {name} claim must be a string when present",
                            found="null" if value is None else type(value).__name__)
    return value
