"""The Verifier: authenticates tokens against trusted issuers and authorizes them against requirements.

Order of work for a token not seen before: size/shape limits, header (cached per distinct header), claims JSON,
issuer lookup by `iss`, algorithm allow-list, key by kid, signature, then claims (token use/typ, audience, times,
required claims). The signature is checked before any claim so that no unauthenticated claim value ever decides
which error a caller sees beyond "who claims to have issued this".

Verified tokens are remembered (bounded, keyed by the token itself) until exp (or the max age) runs out; a hit
re-checks that bound against the clock and the issuers allowed for the call, and authorization is evaluated on
every call. A key removed from the issuer's JWKS therefore stops being trusted for new tokens at once, and for an
already-verified token when that token expires: the same window any gateway-side cache gives.
"""
from __future__ import annotations

import time
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .claims import (MAX_NUMERIC_DATE, IssuerRules, check_algorithm, check_audience, check_expiry, check_issued_at, check_not_before,
                     check_required_claims, check_subject, check_tenant_issuer, check_token_age, check_token_use,
                     match_tenant_template, optional_string)
from .compact import HeaderCache, decode_token, decode_token_fast
from .config import IssuerConfig
from .errors import TokenRejected
from .key_metrics import KeySetMetrics
from .key_source import KeySource, StaticKeySource
from .names import name_set
from .principal import Principal, build_principal
from .requirement import Requirement

if TYPE_CHECKING:  # explain() imports it when called: a decision never needs the explain machinery
    from .explain import Check

_FROM_CONFIG = "config"  # expected token use: whatever each IssuerConfig says
_INF = float("inf")
_MAX_DATE = MAX_NUMERIC_DATE


class Verifier:
    """Verifies tokens from a fixed set of trusted issuers.

    issuers              IssuerConfig for every issuer to trust (names must be unique)
    clock                wall-clock seconds (time.time); injectable for tests
    fetcher              used by remote key sources (jwks_uri and discovery); default: HTTPS with short timeouts
    verified_cache_size  how many verified tokens to remember (0 disables the cache)
    key_sources          optional {issuer name: KeySource} overriding how keys are found for that issuer
    key_metrics          where the remote key sources it builds, and the verified-token cache, count what they do
                         (fetch outcomes, stale keys served, rotations, cache hits); default: a KeySetMetrics of its own
    """

    def __init__(self, issuers: Sequence[IssuerConfig], *, clock: Callable[[], float] = time.time,
                 fetcher: Any = None, verified_cache_size: int = 1024,
                 key_sources: Mapping[str, KeySource] | None = None,
                 key_metrics: KeySetMetrics | None = None) -> None:
        if isinstance(issuers, IssuerConfig):
            issuers = [issuers]
        if not issuers:
            raise ValueError("a Verifier needs at least one IssuerConfig to trust")
        self._clock = clock
        self._fetcher = fetcher
        self.key_metrics = key_metrics if key_metrics is not None else KeySetMetrics()
        self._headers = HeaderCache()
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._cache_size = max(0, int(verified_cache_size))
        self._requirements: dict[tuple, Requirement] = {}
        self._scope_requirements: dict[tuple, tuple[frozenset, Requirement]] = {}
        shared_sources: dict[tuple, KeySource] = {}
        self._rules: dict[str, IssuerRules] = {}
        self._by_iss: dict[str, tuple[IssuerRules, ...]] = {}
        # The one issuer configuration of an iss that only one configuration accepts: the common case, which
        # authenticate() serves without building or measuring the candidates tuple.
        self._sole_by_iss: dict[str, IssuerRules] = {}
        self._templates: list[IssuerRules] = []
        for config in issuers:
            if not isinstance(config, IssuerConfig):
                raise ValueError(f"Verifier issuers must be IssuerConfig objects, got {type(config).__name__}")
            name = config.display_name
            if name in self._rules:
                raise ValueError(f"two issuers are named {name!r}; give each IssuerConfig a distinct name")
            override = (key_sources or {}).get(name)
            source = override if override is not None else self._key_source_for(config, shared_sources)
            rules = IssuerRules(config, source)
            self._rules[name] = rules
            if rules.tenant_template is not None:
                self._templates.append(rules)
            else:
                for iss in config.accepted_issuers:
                    self._by_iss[iss] = self._by_iss.get(iss, ()) + (rules,)
        self._sole_by_iss = {iss: candidates[0] for iss, candidates in self._by_iss.items() if len(candidates) == 1}

    def _key_source_for(self, config: IssuerConfig, shared: dict[tuple, KeySource]) -> KeySource:
        if config.jwks is not None:
            return StaticKeySource.from_jwks(config.jwks, source=f"in-memory JWKS of {config.display_name}")
        if config.jwks_file is not None:
            return StaticKeySource.from_file(config.jwks_file)
        # Remote sources are shared between configs naming the same location, so keys are fetched and cached once.
        if config.jwks_uri is not None:
            key = ("jwks", config.jwks_uri, config.allow_insecure_http)
            if key not in shared:
                from .jwks_cache import JwksCache
                shared[key] = JwksCache(config.jwks_uri, fetcher=self._fetcher,
                                        allow_insecure_http=config.allow_insecure_http, issuer=config.issuer,
                                        metrics=self.key_metrics)
            return shared[key]
        key = ("discovery", config.issuer, config.allow_insecure_http)
        if key not in shared:
            from .discovery import DiscoveredKeySource
            shared[key] = DiscoveredKeySource(config.issuer, fetcher=self._fetcher,
                                              allow_insecure_http=config.allow_insecure_http,
                                              metrics=self.key_metrics)
        return shared[key]

    # --- public API ------------------------------------------------------------------------------------------

    @property
    def issuers(self) -> tuple[IssuerConfig, ...]:
        return tuple(rules.config for rules in self._rules.values())

    def key_source(self, issuer_name: str) -> KeySource:
        return self._rules[issuer_name].key_source

    def hydrate(self) -> None:
        """Fetch every remote key set now (call at Lambda init). Tries all of them, then raises the first
        TokenRejected("jwks_unavailable") if any could not be had; verification will retry those later."""
        first_error: TokenRejected | None = None
        seen: set[int] = set()
        for rules in self._rules.values():
            if id(rules.key_source) in seen:
                continue
            seen.add(id(rules.key_source))
            try:
                rules.key_source.hydrate()
            except TokenRejected as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def authenticate(self, token: Any, *, issuers: Iterable[str] | None = None) -> Principal:
        """Check the token's signature and claims; return who it identifies, or raise TokenRejected.

        issuers   names of the issuers acceptable for this call (a route's `issuers`); None: any trusted issuer
        """
        if issuers is not None and type(issuers) is not frozenset:
            issuers = name_set(issuers, "issuers")
        if type(token) is str:
            hit = self._cache.get(token)
            if hit is not None:
                principal, valid_until = hit
                if self._clock() < valid_until:
                    # Another issuer entry with the same iss may still be allowed: then verify afresh.
                    if issuers is None or principal.issuer_name in issuers:
                        self.key_metrics.verified_cache_hits += 1
                        return principal
                else:
                    self._cache.pop(token, None)
            # Common case in one frame: a well-formed token with a known header from the one issuer of its iss.
            decoded = decode_token_fast(token, self._headers)
            if decoded is not None:
                iss = decoded[1].get("iss")
                rules = self._sole_by_iss.get(iss) if type(iss) is str else None
                if rules is not None and (issuers is None or rules.name in issuers):
                    return self._authenticate_with(rules, token, decoded, _FROM_CONFIG, True)
        return self._authenticate(token, issuers, _FROM_CONFIG)[0]

    def verify(self, token: Any, scopes: Iterable[str] = (), *, scopes_all: Iterable[str] = (),
               roles: Iterable[str] = (), roles_all: Iterable[str] = (), groups: Iterable[str] = (),
               groups_all: Iterable[str] = (), claims: Mapping[str, Sequence[Any]] | None = None,
               requirement: Requirement | None = None, issuers: Iterable[str] | None = None) -> Principal:
        """authenticate(), then require scopes/roles/groups (any-of; *_all: all-of), claim values, and
        `requirement`. Authorization failures raise TokenRejected with a 403 code."""
        principal = self.authenticate(token, issuers=issuers)
        if requirement is not None:
            requirement.check(principal)
        if scopes_all or roles or roles_all or groups or groups_all or claims:
            self._requirement(scopes, scopes_all, roles, roles_all, groups, groups_all, claims).check(principal)
        elif scopes:
            # Only scopes (the most common route rule): per scopes tuple, its Requirement (built once, which checks
            # the names) and the set of those scopes, tested here; the Requirement reports a principal that has none.
            by_scopes = self._scope_requirements.get(scopes) if type(scopes) is tuple else None
            if by_scopes is None:
                requirement = Requirement(scopes_any=scopes)
                by_scopes = (frozenset(requirement.scopes_any), requirement)
                if type(scopes) is tuple and len(self._scope_requirements) < 256:
                    self._scope_requirements[scopes] = by_scopes
            if by_scopes[0].isdisjoint(principal.scopes):
                by_scopes[1].check(principal)
        return principal

    def verify_id_token(self, token: Any, *, client_id: str | None = None, nonce: str | None = None,
                        access_token: str | None = None, issuers: Iterable[str] | None = None) -> Principal:
        """Verify an OIDC ID token (OpenID Connect Core 3.1.3.7): everything authenticate() checks, with the token
        required to be an ID token, plus azp, nonce (when given) and at_hash (when `access_token` is given and the
        token carries at_hash). client_id defaults to the issuer's only audience."""
        from .id_token import check_id_token_extras
        issuers = None if issuers is None else name_set(issuers, "issuers")
        principal, header, rules = self._authenticate(token, issuers, "id", use_cache=False)
        if client_id is None and len(rules.audience_list) == 1:
            client_id = rules.audience_list[0]
        check_id_token_extras(principal.claims, header["alg"], client_id=client_id, nonce=nonce,
                              access_token=access_token)
        return principal

    def check_signature(self, token: Any, *, issuers: Iterable[str] | None = None) -> dict:
        """Only the JWS layer: structure, header rules, issuer, algorithm allow-list, key and signature; no claim
        rules. Returns the header. (For signature test vectors and `authgate verify --signature-only`.)"""
        issuers = None if issuers is None else name_set(issuers, "issuers")
        header, claims, signing_input, signature = self._decode(token)
        failure: TokenRejected | None = None
        for rules in self._candidates(claims, issuers):
            try:
                self._check_signature(rules, header, signing_input, signature)
                return dict(header)  # a copy: the decoded header is shared through the header cache
            except TokenRejected as exc:
                failure = failure or exc
        raise failure  # type: ignore[misc]

    def explain(self, token: Any, requirement: Requirement | None = None, *,
                issuers: Iterable[str] | None = None, expected_use: str | None = None) -> list[Check]:
        """Run every check that can be run and report each one (pass, fail with the fix, or skipped because an
        earlier failure made it impossible). Never raises TokenRejected."""
        from .explain import explain_token
        issuers = None if issuers is None else name_set(issuers, "issuers")
        return explain_token(self, token, requirement, issuers=issuers, expected_use=expected_use)

    # --- internals ------------------------------------------------------------------------------------------

    def _requirement(self, *args: Any) -> Requirement:
        claims = args[-1]
        try:
            key = args[:-1] if claims is None else None
            cached = self._requirements.get(key) if key is not None else None
        except TypeError:  # lists instead of tuples: not hashable, build it each time
            key = cached = None
        if cached is not None:
            return cached
        scopes, scopes_all, roles, roles_all, groups, groups_all, _ = args
        requirement = Requirement(scopes_any=scopes, scopes_all=scopes_all, roles_any=roles, roles_all=roles_all,
                                  groups_any=groups, groups_all=groups_all, claims=claims)
        if key is not None and len(self._requirements) < 256:
            self._requirements[key] = requirement
        return requirement

    def _decode(self, token: Any) -> tuple[dict, dict, bytes, bytes]:
        if type(token) is str:
            decoded = decode_token_fast(token, self._headers)
            if decoded is not None:
                return decoded
        return decode_token(token, self._headers)

    def _candidates(self, claims: Mapping, issuers: Iterable[str] | None) -> tuple[IssuerRules, ...]:
        """The issuer configurations that may have issued a token with these claims (by exact `iss`)."""
        iss = claims.get("iss")
        if type(iss) is not str:
            if iss is None:
                raise TokenRejected("missing_claim", "the token has no iss claim, so its issuer is unknown",
                                    expected="iss", hint="every token must name its issuer")
            raise TokenRejected("malformed", "the token's iss claim must be a string", found=type(iss).__name__)
        candidates = self._by_iss.get(iss)
        if candidates is None:
            candidates = tuple(rules for rules in self._templates if match_tenant_template(rules, iss))
            for rules in candidates:
                check_tenant_issuer(rules, iss, claims)
            if not candidates:
                from .issuer_near_miss import issuer_near_miss
                trusted = [r.issuer for r in self._rules.values()]
                near = issuer_near_miss(iss[:200], trusted)
                raise TokenRejected("unknown_issuer", f"the token's issuer {iss[:200]!r} is not trusted here"
                                    + (f": {near}" if near else ""), expected=trusted[:10], found=iss[:200],
                                    hint=("iss is compared exactly: make the issuer setting and the token agree, as said" if near else
                                          "get a token from a trusted issuer, or add this issuer to the policy"))
        if issuers is not None:
            allowed = tuple(rules for rules in candidates if rules.name in issuers)
            if not allowed:
                raise self._issuer_not_allowed(candidates[0].name, iss, issuers)
            return allowed
        return candidates

    @staticmethod
    def _issuer_not_allowed(name: str, iss: str, issuers: Iterable[str]) -> TokenRejected:
        return TokenRejected("unknown_issuer", f"tokens from issuer {name} are not accepted on this route",
                             expected=sorted(issuers), found=name,
                             hint=f"get a token from one of: {', '.join(sorted(issuers))}")

    @staticmethod
    def _check_signature(rules: IssuerRules, header: Mapping, signing_input: bytes, signature: bytes) -> None:
        alg = header["alg"]
        check_algorithm(rules, alg)
        key = rules.key_source.get_key(header.get("kid"), alg)
        if not key.verify(alg, signing_input, signature):
            raise _bad_signature(alg, key, rules)

    def _authenticate(self, token: Any, issuers: Iterable[str] | None, expected_use: str | None,
                      use_cache: bool = True) -> tuple[Principal, dict, IssuerRules]:
        decoded = self._decode(token)
        header = decoded[0]
        candidates = self._candidates(decoded[1], issuers)
        if len(candidates) == 1:
            return (self._authenticate_with(candidates[0], token, decoded, expected_use, use_cache), header,
                    candidates[0])
        failure: TokenRejected | None = None
        for rules in candidates:
            try:
                return self._authenticate_with(rules, token, decoded, expected_use, use_cache), header, rules
            except TokenRejected as exc:
                failure = failure or exc
        raise failure  # type: ignore[misc]

    def _authenticate_with(self, rules: IssuerRules, token: Any, decoded: tuple[dict, dict, bytes, bytes],
                           expected_use: str | None, use_cache: bool) -> Principal:
        # Hot path. Each step first tries a narrow inline "clearly fine" test and otherwise calls the rule function
        # from claims.py, which is the authority: it either accepts the same way or raises the precise rejection.
        # The inline tests only ever accept a subset of what the rule functions accept.
        header, claims, signing_input, signature = decoded
        alg = header["alg"]
        if alg not in rules.algorithms:
            check_algorithm(rules, alg)
        key = rules.key_source.get_key(header.get("kid"), alg)
        if not key.verify(alg, signing_input, signature):
            raise _bad_signature(alg, key, rules)
        expected = rules.token_use if expected_use is _FROM_CONFIG else expected_use
        # RFC 9068 typ (the common case for access tokens) decides without the profile's classification.
        token_use = "access" if header.get("typ") == "at+jwt" else rules.profile.token_use(header, claims)
        if expected is not None and token_use != expected:
            check_token_use(rules, header, claims, expected)
        aud = claims.get(rules.profile.audience_claim_for_access if token_use == "access" else "aud")
        audience = rules.single_audiences.get(aud) if type(aud) is str else None
        if audience is None:
            audience = check_audience(rules, claims, token_use)
        now = self._clock()
        leeway = rules.leeway
        latest = now + leeway  # the latest nbf and iat accepted
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        iat = claims.get("iat")
        if not (type(exp) is int and 0 <= exp < _MAX_DATE and now < exp + leeway
                and ((type(nbf) is int and 0 <= nbf <= latest) or (nbf is None and "nbf" not in claims))
                and ((type(iat) is int and 0 <= iat <= latest) or (iat is None and "iat" not in claims))):
            exp = check_expiry(rules, claims, now)
            check_not_before(rules, claims, now)
            check_issued_at(rules, claims, now)
        age_limit = check_token_age(rules, claims, now) if rules.max_age is not None else None
        if rules.required_claims:
            check_required_claims(rules, claims)
        subject = claims.get("sub")
        if type(subject) is not str or not subject:
            subject = check_subject(claims)
        jti = claims.get("jti")
        if type(jti) is not str and (jti is not None or "jti" in claims):
            jti = optional_string(claims, "jti")
        client_id, scopes, roles, groups, tenant = rules.profile.identity(claims, token_use)
        principal = build_principal(subject, claims["iss"], rules.name, client_id, audience, scopes, roles, groups,
                                    tenant, token_use, jti, int(exp) if exp is not None else 0, claims)
        if use_cache and self._cache_size and type(token) is str:
            valid_until = exp + leeway if exp is not None else _INF
            if age_limit is not None and age_limit < valid_until:
                valid_until = age_limit
            cache = self._cache
            if len(cache) >= self._cache_size:
                self._evict_oldest(cache)
            cache[token] = (principal, valid_until)
        return principal

    def _evict_oldest(self, cache: dict) -> None:
        # The oldest eighth at once (dicts keep insertion order): evicting one entry per insert rescans the deleted
        # slots at the front of the dict every time, about 0.8 us per new token once the cache is full.
        try:
            for token in list(islice(cache, max(1, self._cache_size >> 3))):
                cache.pop(token, None)
        except RuntimeError:
            pass  # another thread changed the cache meanwhile; the bound is kept on its next insert


def _bad_signature(alg: str, key: Any, rules: IssuerRules) -> TokenRejected:
    return TokenRejected("bad_signature", f"the token's {alg} signature does not verify with key "
                         f"{(key.kid or '(no kid)')[:64]!r} of issuer {rules.name}",
                         hint="the token was altered, or was not signed by this issuer")


__all__ = ["Verifier"]
