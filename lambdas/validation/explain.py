"""explain(): every check the Verifier makes, run one by one and reported with what was found and how to fix it.

Unlike verify(), which stops at the first failure, this keeps going wherever the token still allows it: an expired
token is also checked for its audience, scopes and signature, so one run shows everything that is wrong. It uses the
very same rule functions as the hot path (claims.py, compact.py, requirement.py), so the report cannot drift from
what verify() decides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .claims import (check_algorithm, check_audience, check_expiry, check_issued_at, check_not_before,
                     check_required_claims, check_subject, check_token_age, check_token_use, moment)
from .compact import check_header, decode_json_object, decode_segment, split_token
from .errors import TokenRejected
from .requirement import Requirement

if TYPE_CHECKING:
    from .principal import Principal
    from .verifier import Verifier


@dataclass(frozen=True)
class Check:
    """One check of explain().

    name     what was checked ("signature", "audience", "scopes", ...)
    passed   True, False, or None when it could not be run (`detail` says which earlier failure prevented it)
    detail   what was found, in one sentence; never the token or its signature
    fix      how to make a failing check pass (None when it passed)
    code     the TokenRejected code verify() would raise for this failure
    """

    name: str
    passed: bool | None
    detail: str
    fix: str | None = None
    code: str | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "fix": self.fix, "code": self.code}


def run_check(checks: list[Check], name: str, action: Callable[[], Any], success: Callable[[Any], str]) -> Any:
    """Run `action`, record a passing or failing Check, and return its result (None when it failed)."""
    try:
        result = action()
    except TokenRejected as exc:
        checks.append(failed(name, exc))
        return None
    checks.append(Check(name, True, success(result)))
    return result


def failed(name: str, exc: TokenRejected) -> Check:
    detail = exc.message
    if exc.found is not None and str(exc.found) not in detail:
        detail += f" (found: {exc.found})"
    if exc.expected is not None and str(exc.expected) not in detail:
        detail += f" (expected: {exc.expected})"
    return Check(name, False, detail, exc.hint or "see the detail", exc.code)


def skipped(name: str, because: str) -> Check:
    return Check(name, None, f"not checked: {because}")


def explain_token(verifier: "Verifier", token: Any, requirement: Requirement | None, *,
                  issuers: Iterable[str] | None, expected_use: str | None) -> list[Check]:
    return explain_report(verifier, token, requirement, issuers=issuers, expected_use=expected_use).checks


@dataclass(frozen=True)
class Explanation:
    """explain()'s checks, with who the claims say the caller is and whether the signature was verified.

    When the signature could not be verified (keys unreachable, say) the later checks still run, on claims nobody
    has vouched for: each passing one says so, and `principal` is what the token claims, not what it proves."""

    checks: list[Check]
    principal: "Principal | None"
    signature_verified: bool


def explain_report(verifier: "Verifier", token: Any, requirement: Requirement | None, *,
                   issuers: Iterable[str] | None, expected_use: str | None) -> Explanation:
    checks: list[Check] = []
    segments = run_check(checks, "token format", lambda: split_token(token),
                         lambda parts: f"compact JWS of {sum(map(len, parts)) + 2} characters")
    if segments is None:
        return Explanation(checks + [skipped("everything else", "the token could not be split into its parts")],
                           None, False)
    header_segment, payload_segment, signature_segment = segments

    def decode_header() -> dict:
        header = decode_json_object(decode_segment(header_segment, "header"), "header")
        check_header(header)
        return header

    header = run_check(checks, "header", decode_header,
                       lambda h: f"alg {h['alg']}, kid {str(h.get('kid'))[:64]!r}, typ {h.get('typ')!r}"
                                 + ("; jku/x5u/jwk/x5c are present and ignored (keys come only from the issuer's "
                                    "configuration)" if any(m in h for m in ("jku", "x5u", "jwk", "x5c")) else ""))
    claims = run_check(checks, "claims set",
                       lambda: decode_json_object(decode_segment(payload_segment, "claims set"), "claims set"),
                       lambda c: f"{len(c)} claims: {', '.join(sorted(c)[:20])}")
    signature = run_check(checks, "signature encoding", lambda: decode_segment(signature_segment, "signature"),
                          lambda s: f"{len(s)} bytes")
    if claims is None:
        return Explanation(checks + [skipped("issuer and claims", "the claims set could not be read")], None, False)

    candidates = run_check(checks, "issuer", lambda: verifier._candidates(claims, issuers),
                           lambda c: f"{claims['iss']} is trusted as {', '.join(r.name for r in c)}")
    if not candidates:
        checks.append(skipped("signature and claim rules", "the issuer is not trusted, so its rules are unknown"))
        checks.extend(_authorization_checks(requirement, None, claims))
        return Explanation(checks, None, False)
    rules = candidates[0]
    if header is not None:
        alg = header["alg"]
        if run_check(checks, "algorithm", lambda: check_algorithm(rules, alg),
                     lambda _: f"{alg} is allowed for {rules.name}") is not None or alg in rules.algorithms:
            key = run_check(checks, "signing key", lambda: rules.key_source.get_key(header.get("kid"), alg),
                            lambda k: f"{k.kty} key {str(k.kid)[:64]!r} from the issuer's key set")
            if key is not None and signature is not None:
                run_check(checks, "signature", lambda: _verify(key, alg, header_segment, payload_segment, signature,
                                                                 rules.name),
                          lambda _: f"valid {alg} signature")
            elif key is not None:
                checks.append(skipped("signature", "the signature is not valid base64url"))
            else:
                checks.append(skipped("signature", "no key to check it with"))
        else:
            checks.append(skipped("signature", "the algorithm is not allowed"))
    else:
        checks.append(skipped("algorithm and signature", "the header could not be read"))

    verified = any(c.name == "signature" and c.passed for c in checks)
    unverified_from = len(checks)
    use = expected_use if expected_use is not None else rules.token_use
    token_use = run_check(checks, "token use", lambda: check_token_use(rules, header or {}, claims, use),
                          lambda u: f"{u} token" + (f", as {rules.name} requires" if use else ""))
    classified = token_use or _guess_use(rules, header or {}, claims)
    run_check(checks, "audience", lambda: check_audience(rules, claims, classified),
              lambda found: f"{', '.join(found)} is accepted")
    now = verifier._clock()
    run_check(checks, "expiry", lambda: check_expiry(rules, claims, now),
              lambda exp: "no exp (allowed by this issuer)" if exp is None else f"expires at {moment(exp, now)}")
    run_check(checks, "not before", lambda: check_not_before(rules, claims, now),
              lambda _: "nbf is in the past" if "nbf" in claims else "no nbf")
    run_check(checks, "issued at", lambda: check_issued_at(rules, claims, now),
              lambda iat: f"issued at {moment(iat, now)}" if iat is not None else "no iat")
    if rules.max_age is not None:
        run_check(checks, "token age", lambda: check_token_age(rules, claims, now),
                  lambda _: f"within the {rules.max_age} s maximum age")
    if rules.required_claims:
        run_check(checks, "required claims", lambda: check_required_claims(rules, claims),
                  lambda _: f"present: {', '.join(rules.required_claims)}")
    run_check(checks, "subject", lambda: check_subject(claims), lambda sub: f"sub {sub[:80]!r}")
    identity = run_check(checks, "identity claims", lambda: rules.profile.identity(claims, classified),
                         lambda i: f"{rules.profile.name} profile: client {i[0]!r}, {len(i[1])} scopes, "
                                   f"{len(i[2])} roles, {len(i[3])} groups, tenant {i[4]!r}")
    principal = None
    if identity is not None:
        from .principal import build_principal
        sub = claims.get("sub") if type(claims.get("sub")) is str else ""
        aud = claims.get(rules.profile.audience_claim(classified))
        principal = build_principal(sub, claims["iss"], rules.name, identity[0],
                                    tuple(aud) if isinstance(aud, list) else (aud,), *identity[1:],
                                    classified, None, 0, claims)
    checks.extend(_authorization_checks(requirement, principal, claims))
    if not verified:
        checks[unverified_from:] = [_unverified(c) for c in checks[unverified_from:]]
    return Explanation(checks, principal, verified)


def _unverified(check: Check) -> Check:
    if not check.passed:
        return check
    return Check(check.name, True, check.detail + " (read from an unverified token: the signature was not "
                 "verified)", check.fix, check.code)


def _verify(key: Any, alg: str, header_segment: bytes, payload_segment: bytes, signature: bytes, name: str) -> bool:
    if not key.verify(alg, header_segment + b"." + payload_segment, signature):
        raise TokenRejected("bad_signature", f"the {alg} signature does not verify with the key of {name}",
                            hint="the token was altered, or was not signed by this issuer")
    return True


def _guess_use(rules: Any, header: dict, claims: dict) -> str:
    try:
        return rules.profile.token_use(header, claims)
    except TokenRejected:
        return "access"


def _authorization_checks(requirement: Requirement | None, principal: "Principal | None",
                          claims: dict) -> list[Check]:
    if requirement is None or requirement.is_empty:
        return []
    parts = []
    if requirement.token_use is not None:
        parts.append(("route token use", Requirement(token_use=requirement.token_use),
                      f"{requirement.token_use} token, as this route requires"))
    for kind, any_of, all_of in (("scopes", requirement.scopes_any, requirement.scopes_all),
                                 ("roles", requirement.roles_any, requirement.roles_all),
                                 ("groups", requirement.groups_any, requirement.groups_all)):
        if any_of or all_of:
            sub = Requirement(**{f"{kind}_any": any_of, f"{kind}_all": all_of})
            parts.append((kind, sub, f"has {', '.join(any_of) or ''}{' and ' if any_of and all_of else ''}"
                                     f"{', '.join(all_of)}"))
    for name, allowed in requirement.claims.items():
        parts.append((f"claim {name}", Requirement(claims={name: allowed}), f"{name} is allowed"))
    out = []
    for name, sub, success in parts:
        if principal is None:
            out.append(skipped(name, "the token's identity could not be established"))
            continue
        failures = sub.failures(principal)
        if not failures:
            out.append(Check(name, True, success))
            continue
        # Every unmet condition of this kind (any-of and all-of both), each naming what it needs.
        checks = [failed(name, failure) for failure in failures]
        out.append(Check(name, False, "; ".join(c.detail for c in checks), checks[0].fix, checks[0].code))
    return out


def explain_request_checks(route: Any, issuer: Any, token: Any) -> list[Check]:
    """What the route's proof and freshness, and the token's cnf, will demand of each request (RequestChecks).

    A token alone cannot show a DPoP proof, a client certificate or the denylist's state, so those are reported as
    not checked here (passed None), with what the request must carry; what the token itself decides (bound or not,
    as the route requires) is a pass or a fail."""
    from .possession import confirmation

    if route is None or route.public:
        return []
    try:
        claims = decode_json_object(decode_segment(split_token(token)[1], "claims set"), "claims set")
        jkt, x5t = confirmation(claims)
    except TokenRejected:
        return [skipped("proof of possession", "the token's claims could not be read")]
    checks: list[Check] = []
    if jkt is not None:
        checks.append(Check("DPoP binding", None, f"the token is bound to DPoP key {jkt[:16]}... (cnf.jkt): every "
                                                  "request must send Authorization: DPoP <token> and a fresh DPoP "
                                                  "proof signed by that key for its method and URL; sent as Bearer "
                                                  "it is refused on every route (not checked here: no request)"))
    elif route.proof == "dpop":
        checks.append(Check("DPoP binding", False, "this route accepts only DPoP-bound tokens and this token has no "
                                                   "cnf.jkt", "obtain a DPoP-bound token (RFC 9449) from the issuer",
                            "dpop_required"))
    if route.dpop_nonce == "required":
        from .dpop_nonce import LIFETIME_SECONDS

        checks.append(Check("DPoP nonce", None, "every DPoP proof on this route must carry the server's current "
                                                "nonce: a proof without it is refused with use_dpop_nonce and a "
                                                "DPoP-Nonce header to retry with (a nonce is accepted for at most "
                                                f"{LIFETIME_SECONDS} s; not checked here: no request)"))
    if x5t is not None:
        checks.append(Check("certificate binding", None, f"the token is bound to client certificate {x5t[:16]}... "
                                                         "(cnf x5t#S256): every request must come over mutual TLS "
                                                         "with that certificate (not checked here: no request)"))
    elif route.proof == "mtls":
        checks.append(Check("certificate binding", False, "this route accepts only certificate-bound tokens and "
                                                          "this token has no cnf x5t#S256",
                            "obtain the token over mutual TLS (RFC 8705) and call with that certificate",
                            "certificate_required"))
    if route.freshness == "denylist":
        checks.append(Check("freshness", None, "each request is checked against the shared denylist (jti, sid, sub); "
                                               f"a revocation takes effect within {issuer.revocation.cache_seconds} s "
                                               "(not checked here)"))
    elif route.freshness == "introspect":
        cached = issuer.introspection.cache_seconds if issuer.introspection is not None else 0
        checks.append(Check("freshness", None, "each request asks the issuer's introspection endpoint whether the "
                                               f"token is still active (answers reused up to {cached} s; not "
                                               "checked here)"))
    return checks
