"""Property tests of the claim rules: a correctly signed token is accepted exactly when its claims satisfy the rules.

The rules for an access-token issuer of the generic and the cognito profile (lambdas/validation/README.md "Rules",
profiles.py's docstring) are written out again below as `expected_identity`, in plain Python, independently of
claims.py and profiles.py. Tokens are signed with the issuer's real key, so every decision is made by the claim
rules; the clock is fixed, and time claims are drawn around it and exactly on the leeway edges.

- exp/nbf/iat/aud/iss/sub/scope/scp/roles/groups/token_use/client_id/nonce, each absent, a plausible value or a
  JSON value of any type: Verifier.verify accepts exactly when `expected_identity` says so, and then with the same
  scopes, roles and groups.
- Over all eight profiles (Entra's tenant template, a maximum token age and required claims included) with any
  JSON in any claim, including the nested ones profiles read (realm_access, resource_access, kubernetes.io,
  firebase), and route requirements on claims: nothing but TokenRejected escapes verify, verify_id_token or
  check_signature, and explain() raises nothing.
"""
from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.security.property_budget import property_settings
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

NOW = 1_700_000_000
LEEWAY = 60
KEY = SigningKey.generate("ES256", kid="claims-key")  # ES256: signing and verifying cost ~0.1 ms, not RSA's ~1 ms
COGNITO_ISSUERS = ("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE",
                   "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE")
COGNITO_CLIENT = "app-client-1"
SCOPES = ("orders:read", "orders:write", "admin")
NAMES = ("admin", "reader", "g1", "g2")


def single_issuer_verifier(**config) -> Verifier:
    return Verifier([IssuerConfig(jwks=KEY.jwks(), algorithms=("ES256",), leeway_seconds=LEEWAY, **config)],
                    clock=lambda: NOW, verified_cache_size=0)


VERIFIERS = {"generic": single_issuer_verifier(issuer=ISSUER, audiences=[AUDIENCE]),
             "cognito": single_issuer_verifier(issuer=COGNITO_ISSUERS[0], audiences=[COGNITO_CLIENT],
                                               profile="cognito")}

# --- the rules, stated independently ---------------------------------------------------------------------------


class Refused(Exception):
    pass


def numeric_date(value) -> bool:
    """RFC 7519 2 NumericDate: a JSON number (true/false are not numbers), in a sane range."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 2 ** 53


def names(claims: dict, name: str) -> tuple:
    """A claim holding names: absent/null, a string of names separated by spaces (SP only, RFC 6749 3.3), or an array
    of strings."""
    value = claims.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split(" ") if v)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise Refused(name)


def token_kind(typ, claims: dict, profile: str) -> str:
    """RFC 9068 typ at+jwt is an access token; typ must otherwise be JWT or absent (media types are
    case-insensitive, "application/" optional), and then the profile decides."""
    if typ is not None:
        media = typ.lower().removeprefix("application/")
        if media == "at+jwt":
            return "access"
        if media != "jwt":
            raise Refused("typ")
    if profile == "cognito":
        if claims.get("token_use") not in ("access", "id"):
            raise Refused("token_use")
        return claims["token_use"]
    return "id" if any(marker in claims for marker in ("nonce", "at_hash", "c_hash")) else "access"


def expected_identity(profile: str, typ, claims: dict, required: dict) -> tuple | None:
    """(scopes, roles, groups) of the accepted token, or None when the token must be refused."""
    try:
        if token_kind(typ, claims, profile) != "access":
            raise Refused("an ID token where the issuer accepts access tokens")
        if profile == "cognito":
            if claims.get("iss") not in COGNITO_ISSUERS:
                raise Refused("iss")
            if claims.get("client_id") != COGNITO_CLIENT:  # the audience of a Cognito access token, one string
                raise Refused("client_id")
            identity = (names(claims, "scope"), names(claims, "roles"), names(claims, "cognito:groups"))
        else:
            if claims.get("iss") != ISSUER:
                raise Refused("iss")
            aud = claims.get("aud")
            if not (aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud
                                        and all(isinstance(a, str) for a in aud))):
                raise Refused("aud")
            # The client is the first of client_id, azp, cid, appid that is present; it must be a string.
            client = next((claims[n] for n in ("client_id", "azp", "cid", "appid") if claims.get(n) is not None), "")
            if not isinstance(client, str):
                raise Refused("client id")
            identity = (names(claims, "scope") + names(claims, "scp"), names(claims, "roles"),
                        names(claims, "groups"))
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not (numeric_date(exp) and NOW < exp + LEEWAY):
            raise Refused("exp")
        # nbf, iat and jti may be left out; present (even as null), they must have their type.
        if "nbf" in claims and not (numeric_date(nbf) and nbf <= NOW + LEEWAY):
            raise Refused("nbf")
        if "iat" in claims and not (numeric_date(iat) and iat <= NOW + LEEWAY):
            raise Refused("iat")
        if not (isinstance(claims.get("sub"), str) and claims["sub"]):
            raise Refused("sub")
        if "jti" in claims and not isinstance(claims["jti"], str):
            raise Refused("jti")
    except Refused:
        return None
    for have, wanted in zip(identity, (required["scopes"], required["roles"], required["groups"]), strict=True):
        if wanted and not set(wanted) & set(have):
            return None
    return identity


# --- inputs ------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(SCOPES + NAMES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
times = st.one_of(
    st.integers(NOW - 400, NOW + 400),
    st.sampled_from([NOW - LEEWAY - 1, NOW - LEEWAY, NOW - LEEWAY + 1, NOW + LEEWAY - 1, NOW + LEEWAY,
                     NOW + LEEWAY + 1, 0, -1, 2 ** 53 - 1, 2 ** 53]),
    st.floats(NOW - 120, NOW + 120),
)
name_lists = st.lists(st.sampled_from(NAMES + SCOPES), max_size=3)
names_claim = name_lists | name_lists.map(" ".join)
scope_claim = st.lists(st.sampled_from(SCOPES), max_size=3).map(" ".join) | st.lists(st.sampled_from(SCOPES))
# Claims every accepted token has, with values the rules accept, per profile.
REQUIRED = {
    "generic": {"iss": st.just(ISSUER), "sub": st.just("user-1"), "exp": st.integers(NOW - LEEWAY + 1, NOW + 3600),
                "aud": st.sampled_from([AUDIENCE, [AUDIENCE], ["x", AUDIENCE]])},
    "cognito": {"iss": st.sampled_from(COGNITO_ISSUERS), "sub": st.just("user-1"),
                "exp": st.integers(NOW - LEEWAY + 1, NOW + 3600), "client_id": st.just(COGNITO_CLIENT),
                "token_use": st.just("access")},
}
# Claims a token may carry, with values the rules accept.
OPTIONAL = {"nbf": st.integers(0, NOW + LEEWAY), "iat": st.integers(0, NOW + LEEWAY), "jti": st.just("id-1"),
            "scope": scope_claim, "scp": names_claim, "roles": names_claim, "groups": names_claim,
            "cognito:groups": names_claim}
# Values near the edge of what the rules accept, for any claim (besides absence and JSON of any type).
NEAR_MISSES = {
    "iss": st.sampled_from([ISSUER, ISSUER + "/", ISSUER.upper(), *COGNITO_ISSUERS, COGNITO_ISSUERS[0] + " "]),
    "sub": st.sampled_from(["", " ", "user-1"]),
    "aud": st.sampled_from([AUDIENCE, [AUDIENCE], ["x"], "x", [], [AUDIENCE, 1], AUDIENCE.upper()]),
    "client_id": st.sampled_from([COGNITO_CLIENT, "other", [COGNITO_CLIENT], ""]),
    "token_use": st.sampled_from(["access", "id", "refresh", "Access"]),
    "exp": times, "nbf": times, "iat": times, "jti": st.just(""),
    "scope": scope_claim, "scp": names_claim, "roles": names_claim, "groups": names_claim,
    "cognito:groups": names_claim, "nonce": st.just("n-1"), "at_hash": st.just("h"),
}


@st.composite
def claims_cases(draw) -> tuple[str, str | None, dict, dict]:
    """A valid claims set for the profile with up to three claims broken: removed, replaced by any JSON value, or
    set to a value near the edge of the rules."""
    profile = draw(st.sampled_from(sorted(REQUIRED)))
    typ = draw(st.sampled_from([None, "at+jwt", "at+jwt", "JWT", "application/at+jwt", "AT+JWT", "jwt",
                                "logout+jwt", "application/jwt"]))
    claims = {name: draw(value) for name, value in REQUIRED[profile].items()}
    for name, value in OPTIONAL.items():
        if draw(st.booleans()):
            claims[name] = draw(value)
    for name in draw(st.lists(st.sampled_from(sorted(NEAR_MISSES)), max_size=3, unique=True)):
        how = draw(st.sampled_from(["remove", "any JSON", "near miss", "near miss"]))
        if how == "remove":
            claims.pop(name, None)
        else:
            claims[name] = draw(json_values if how == "any JSON" else NEAR_MISSES[name])
    required = {kind: draw(st.lists(st.sampled_from(vocabulary), max_size=2))
                for kind, vocabulary in (("scopes", SCOPES), ("roles", NAMES), ("groups", NAMES))}
    return profile, typ, claims, required


def verify(profile: str, typ: str | None, claims: dict, required: dict):
    return VERIFIERS[profile].verify(mint(KEY, claims, typ=typ), scopes=tuple(required["scopes"]),
                                     roles=tuple(required["roles"]), groups=tuple(required["groups"]))


# --- properties --------------------------------------------------------------------------------------------------

@property_settings(400)
@given(claims_cases())
def test_accepted_exactly_when_the_claims_satisfy_the_rules(case):
    profile, typ, claims, required = case
    expected = expected_identity(profile, typ, claims, required)
    try:
        principal = verify(profile, typ, claims, required)
    except TokenRejected as exc:
        event(f"{profile}: rejected {exc.code}")
        assert expected is None, f"refused ({exc.code}: {exc.message}) a token the rules accept"
        return
    event(f"{profile}: accepted")
    assert expected is not None, "accepted a token the rules refuse"
    assert (principal.scopes, principal.roles, principal.groups) == expected


ENTRA_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PROFILE_ISSUERS = {"generic": ISSUER, "cognito": COGNITO_ISSUERS[0], "entra": ENTRA_TEMPLATE,
                   "google": "https://securetoken.google.com/project-1", "okta": "https://corp.okta.example/oauth2/x",
                   "auth0": "https://tenant.auth0.example/", "keycloak": "https://kc.example/realms/r",
                   "kubernetes": "https://kubernetes.default.svc"}
ALL_PROFILES = Verifier(
    [IssuerConfig(issuer, [COGNITO_CLIENT if profile == "cognito" else AUDIENCE], jwks=KEY.jwks(),
                  algorithms=("ES256",), profile=profile, name=profile, token_use=None,
                  max_token_age_seconds=3600 if profile == "okta" else None,
                  required_claims=("jti",) if profile == "auth0" else ())
     for profile, issuer in PROFILE_ISSUERS.items()],
    clock=lambda: NOW, verified_cache_size=0)
ISSUER_CLAIMS = st.sampled_from([*(i for i in PROFILE_ISSUERS.values() if "{" not in i),
                                 ENTRA_TEMPLATE.replace("{tenantid}", TENANT),
                                 ENTRA_TEMPLATE.replace("{tenantid}", "not-a-guid"), COGNITO_ISSUERS[1]])
PROFILE_CLAIMS = ["azp", "cid", "appid", "azpacr", "appidacr", "tid", "typ", "permissions", "org_id", "realm_access",
                  "resource_access", "kubernetes.io", "firebase", "at_hash", "c_hash", "email", "amr"]
ROUTE_CLAIM_CHECKS = ["tid", "/kubernetes.io/namespace", "/realm_access/roles/0", "email", "amr", "/firebase/x~1y"]
NESTED = st.dictionaries(st.sampled_from(["roles", "namespace", "tenant", "orders-api", "x"]),
                         json_values | st.dictionaries(st.sampled_from(["roles", "x"]), json_values, max_size=2),
                         max_size=3)


@st.composite
def any_profile_cases(draw) -> tuple[str | None, dict, dict]:
    """A valid claims set for one of the eight issuers, then up to five claims (standard or read by some profile)
    set to any JSON value, a nested object of the shape profiles read, or a value near the edge of the rules."""
    profile = draw(st.sampled_from(sorted(PROFILE_ISSUERS)))
    claims = {"iss": PROFILE_ISSUERS[profile].replace("{tenantid}", TENANT), "sub": "user-1", "exp": NOW + 300,
              "iat": NOW, "jti": "id-1", "tid": TENANT, "token_use": "access",
              "client_id" if profile == "cognito" else "aud": COGNITO_CLIENT if profile == "cognito" else AUDIENCE}
    for name in draw(st.lists(st.sampled_from(PROFILE_CLAIMS + sorted(NEAR_MISSES)), max_size=5, unique=True)):
        near = ISSUER_CLAIMS if name == "iss" else NEAR_MISSES.get(name, st.just(TENANT))
        claims[name] = draw(st.one_of(near, json_values, NESTED))
    typ = draw(st.sampled_from([None, None, "at+jwt", "JWT", "id_token+jwt"]))
    route = {"scopes": draw(st.lists(st.sampled_from(SCOPES), max_size=1)),
             "claims": draw(st.dictionaries(st.sampled_from(ROUTE_CLAIM_CHECKS), st.lists(
                 st.sampled_from([TENANT, "default", "admin", 1, True, "1", "true"]), min_size=1, max_size=2),
                 max_size=2))}
    return typ, claims, route


@property_settings(250)
@given(any_profile_cases())
def test_any_json_in_any_claim_of_any_profile_is_refused_only_with_token_rejected(case):
    typ, claims, route = case
    token = mint(KEY, claims, typ=typ)
    try:
        principal = ALL_PROFILES.verify(token, scopes=tuple(route["scopes"]), claims=route["claims"] or None)
        event(f"accepted by {principal.issuer_name}")
    except TokenRejected as exc:
        event(f"rejected {exc.code}")
        assert exc.code and exc.message
    for check in (lambda: ALL_PROFILES.verify_id_token(token, nonce="n-1"),
                  lambda: ALL_PROFILES.check_signature(token)):
        try:
            check()
        except TokenRejected as exc:
            assert exc.code and exc.message
    assert ALL_PROFILES.explain(token)


# --- the rules model pinned to the README on hand-picked edges ----------------------------------------------------

GOOD = {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": NOW + 300, "iat": NOW, "nbf": NOW,
        "scope": "orders:read admin"}
GOOD_COGNITO = {"iss": COGNITO_ISSUERS[0], "sub": "user-1", "client_id": COGNITO_CLIENT, "token_use": "access",
                "exp": NOW + 300, "cognito:groups": ["g1"]}
NO_REQUIREMENT = {"scopes": [], "roles": [], "groups": []}


@pytest.mark.parametrize("profile, typ, claims, accepted", [
    ("generic", "at+jwt", GOOD, True),
    ("generic", "at+jwt", {**GOOD, "exp": NOW - LEEWAY + 1}, True),
    ("generic", "at+jwt", {**GOOD, "exp": NOW - LEEWAY}, False),
    ("generic", "at+jwt", {**GOOD, "exp": NOW - LEEWAY + 0.5}, True),
    ("generic", "at+jwt", {**GOOD, "exp": True}, False),
    ("generic", "at+jwt", {**GOOD, "exp": str(NOW + 300)}, False),
    ("generic", "at+jwt", {k: v for k, v in GOOD.items() if k != "exp"}, False),
    ("generic", "at+jwt", {**GOOD, "nbf": NOW + LEEWAY}, True),
    ("generic", "at+jwt", {**GOOD, "nbf": NOW + LEEWAY + 1}, False),
    ("generic", "at+jwt", {**GOOD, "nbf": None}, False),   # null is not "left out"
    ("generic", "at+jwt", {k: v for k, v in GOOD.items() if k != "nbf"}, True),
    ("generic", "at+jwt", {**GOOD, "jti": None}, False),
    ("generic", "at+jwt", {**GOOD, "iat": NOW + LEEWAY + 1}, False),
    ("generic", "at+jwt", {**GOOD, "aud": [AUDIENCE, "x"]}, True),
    ("generic", "at+jwt", {**GOOD, "aud": [AUDIENCE, 1]}, False),
    ("generic", "at+jwt", {**GOOD, "aud": []}, False),
    ("generic", "at+jwt", {**GOOD, "iss": ISSUER + "/"}, False),
    ("generic", "at+jwt", {**GOOD, "sub": ""}, False),
    ("generic", "at+jwt", {**GOOD, "scope": ["orders:read", 1]}, False),
    ("generic", "at+jwt", {**GOOD, "token_use": {"any": ["json"]}}, True),
    ("generic", "at+jwt", {**GOOD, "client_id": [COGNITO_CLIENT]}, False),
    ("generic", "at+jwt", {**GOOD, "client_id": None, "azp": COGNITO_CLIENT}, True),
    ("generic", "JWT", {**GOOD, "nonce": "n"}, False),
    ("generic", "at+jwt", {**GOOD, "nonce": "n"}, True),
    ("generic", "logout+jwt", GOOD, False),
    ("generic", "application/AT+JWT", GOOD, True),
    ("cognito", None, GOOD_COGNITO, True),
    ("cognito", None, {**GOOD_COGNITO, "token_use": "id"}, False),
    ("cognito", None, {k: v for k, v in GOOD_COGNITO.items() if k != "token_use"}, False),
    ("cognito", "at+jwt", {k: v for k, v in GOOD_COGNITO.items() if k != "token_use"}, True),
    ("cognito", None, {**GOOD_COGNITO, "iss": COGNITO_ISSUERS[1]}, True),
    ("cognito", None, {**GOOD_COGNITO, "client_id": [COGNITO_CLIENT]}, False),
    ("cognito", None, {**GOOD_COGNITO, "aud": 7, "scp": {"ignored": True}, "groups": 1}, True),
])
def test_rules_model_and_verifier_agree_on_the_edges(profile, typ, claims, accepted):
    assert (expected_identity(profile, typ, claims, NO_REQUIREMENT) is not None) == accepted
    try:
        verify(profile, typ, claims, NO_REQUIREMENT)
        verdict = True
    except TokenRejected:
        verdict = False
    assert verdict == accepted


def test_requirements_are_any_of_per_kind_and_all_kinds_must_hold():
    claims = {**GOOD, "roles": ["reader"], "groups": "g1 g2"}
    wanted = {"scopes": ["orders:write", "admin"], "roles": ["reader"], "groups": ["g2"]}
    assert expected_identity("generic", "at+jwt", claims, wanted) == (("orders:read", "admin"), ("reader",),
                                                                        ("g1", "g2"))
    assert verify("generic", "at+jwt", claims, wanted).groups == ("g1", "g2")
    for kind, value in (("scopes", ["orders:write"]), ("roles", ["admin"]), ("groups", ["g3"])):
        assert expected_identity("generic", "at+jwt", claims, {**wanted, kind: value}) is None
        with pytest.raises(TokenRejected) as refused:
            verify("generic", "at+jwt", claims, {**wanted, kind: value})
        assert refused.value.status == 403
