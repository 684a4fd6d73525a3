"""Coverage-guided fuzz target (atheris/libFuzzer) for token verification: anything but TokenRejected is a crash.

Two modes, chosen with --mode (tests/fuzz/README.md has the commands):

- raw: the input bytes are the token. They go to Verifier.verify (as bytes and as text), check_signature,
  explain, verify_jws and both decoders. Beyond "only TokenRejected": the hot-path decoder must decline or agree
  with the careful one, and an accepted token must carry exactly the header and claims of one of the seed tokens
  (anything else would be a forged signature). Seeds: tests/fuzz/corpus/raw/ (`--write-seeds DIR` mints them).
- signed: a FuzzedDataProvider turns the input into a header and claims (a valid set for one of eight IdP
  profiles with claims removed or set to any JSON value), which are then signed with the issuer's real key, so
  the fuzzer gets past the signature to the claim rules, the profiles and route requirements; one claim in eight
  inputs is nested up to MAX_NESTING levels deep (issue 18: deep nesting once raised RecursionError). The empty
  input is a valid token. An accepted token's principal must hold exactly the claims that were signed.

The keys are derived from fixed numbers so committed seed tokens keep verifying; they are fuzzing keys that
nothing trusts. The clock is fixed, so seeds never expire.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["lambdas"]):
    from lambdas.validation import IssuerConfig, StaticKeySource, TokenRejected, Verifier, verify_jws
    from lambdas.validation.compact import HeaderCache, decode_token, decode_token_fast

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

NOW = 1_700_000_000
SEED_DIR = Path(__file__).resolve().parent / "corpus" / "raw"
KEYS = {
    "ES256": SigningKey("ES256", ec.derive_private_key(0xF0220_5EED_0001, ec.SECP256R1()), kid="fuzz-es256"),
    "EdDSA": SigningKey("EdDSA", ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))), kid="fuzz-ed25519"),
}
JWKS = {"keys": [key.jwk() for key in KEYS.values()]}
ALGORITHMS = tuple(KEYS)

# --- raw mode -----------------------------------------------------------------------------------------------------

SEED_CLAIMS = [
    {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": NOW + 3600, "iat": NOW, "nbf": NOW, "jti": "seed-1",
     "scope": "orders:read orders:write"},
    {"iss": ISSUER, "sub": "user-2", "aud": [AUDIENCE, "other-api"], "exp": NOW + 60, "roles": ["admin"],
     "groups": ["g1"], "scp": ["orders:read"]},
    {"iss": ISSUER, "sub": "ü-3", "aud": AUDIENCE, "exp": NOW + 1.5, "nonce": "n-1", "email": "a@example.test"},
]
SEED_HEADERS = [{"typ": "at+jwt"}, {"typ": "JWT"}, {"typ": None}, {"typ": "at+jwt", "kid": None}]


def seed_tokens() -> list[str]:
    """Every seed claims set signed with every key, with each header variant (kid-less: the one key of its alg)."""
    return [mint(key, claims, header={k: v for k, v in header.items() if k != "typ"}, typ=header["typ"])
            for key in KEYS.values() for claims in SEED_CLAIMS for header in SEED_HEADERS]


def _raw_verifier() -> Verifier:
    return Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=JWKS, algorithms=ALGORITHMS, token_use=None)],
                    clock=lambda: NOW, verified_cache_size=0)


RAW_VERIFIER = _raw_verifier()
RAW_KEYS = StaticKeySource.from_jwks(JWKS)
SEEN_HEADERS = HeaderCache()
SIGNED_CONTENT: list[tuple[dict, dict]] = []  # (header, claims) of the seeds: the only content that may verify


def prime_raw_mode() -> None:
    """Decode and verify the seeds once, so their headers are cached and the hot path runs for their mutants."""
    if SIGNED_CONTENT:
        return
    for token in seed_tokens():
        header, claims, _, _ = decode_token(token, SEEN_HEADERS)
        SIGNED_CONTENT.append((header, claims))
        RAW_VERIFIER.verify(token)


def _verified(verifier: Verifier, token):
    try:
        return verifier.verify(token)
    except TokenRejected:
        return None


def check_raw_token(data: bytes):
    """One raw-mode input; returns the Principal when the token was accepted, else None."""
    text = data.decode("utf-8", "surrogateescape")
    principal = _verified(RAW_VERIFIER, text)
    if (_verified(RAW_VERIFIER, data) is None) != (principal is None):
        raise AssertionError("the token as bytes and as text were judged differently")
    for check in (lambda: RAW_VERIFIER.check_signature(text), lambda: RAW_VERIFIER.verify_id_token(data),
                  lambda: verify_jws(text, RAW_KEYS, algorithms=ALGORITHMS)):
        try:
            check()
        except TokenRejected:
            pass
    RAW_VERIFIER.explain(text)
    fast = decode_token_fast(text, SEEN_HEADERS)
    try:
        careful = decode_token(text)
    except TokenRejected:
        careful = None
    if fast is not None and fast != careful:
        raise AssertionError("the hot-path decoder returned what the careful decoder does not")
    if principal is not None and (careful is None or (careful[0], dict(principal.claims)) not in SIGNED_CONTENT):
        raise AssertionError("a token that is not one of the signed seeds verified")
    return principal


# --- signed mode --------------------------------------------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PROFILE_ISSUERS = {"generic": ISSUER, "cognito": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_FUZZ",
                   "entra": "https://login.microsoftonline.com/{tenantid}/v2.0",
                   "google": "https://securetoken.google.com/project-1", "okta": "https://corp.okta.example/oauth2/x",
                   "auth0": "https://tenant.auth0.example/", "keycloak": "https://kc.example/realms/r",
                   "kubernetes": "https://kubernetes.default.svc"}
PROFILES = sorted(PROFILE_ISSUERS)
SIGNED_VERIFIER = Verifier(
    [IssuerConfig(issuer, [AUDIENCE], jwks=JWKS, algorithms=ALGORITHMS, profile=profile, name=profile,
                  token_use=None, max_token_age_seconds=3600 if profile == "okta" else None,
                  required_claims=("jti",) if profile == "auth0" else ())
     for profile, issuer in PROFILE_ISSUERS.items()],
    clock=lambda: NOW, verified_cache_size=0)
CLAIM_NAMES = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "scp", "roles", "groups", "token_use",
               "client_id", "azp", "cid", "appid", "azpacr", "appidacr", "tid", "typ", "nonce", "at_hash", "c_hash",
               "permissions", "org_id", "realm_access", "resource_access", "kubernetes.io", "firebase",
               "cognito:groups", "email"]
WORDS = ["orders:read", "orders:write", "admin", "access", "id", "Bearer", "ID", "roles", "namespace", "tenant",
         "system:serviceaccount:default:app", AUDIENCE, ISSUER, TENANT, "", "JWT"]
TYPS = [None, "at+jwt", "JWT", "application/at+jwt", "AT+JWT", "logout+jwt"]
HEADER_EXTRAS = ["crit", "b64", "jku", "x5c", "cty", "kid"]
# Deep enough to cross the decoder's nesting bound many times over and to reach the depth at which a recursive walk
# ran out of stack; shallow enough for json.dumps (which mints the token) to encode.
MAX_NESTING = 600
ROUTE_CLAIMS = ["tid", "/kubernetes.io/namespace", "/realm_access/roles/0", "email", "token_use"]


def json_value(fdp: atheris.FuzzedDataProvider, depth: int = 0):
    """Any JSON value (bounded depth), biased toward the words and times the rules care about."""
    kind = fdp.ConsumeIntInRange(0, 8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(8)
    if kind == 3:
        return NOW + fdp.ConsumeIntInRange(-400, 400)
    if kind == 4:
        return fdp.ConsumeRegularFloat()
    if kind == 5:
        return fdp.PickValueInList(WORDS) if fdp.ConsumeBool() else fdp.ConsumeUnicode(12)
    if kind == 6:
        return [json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 7:
        return {fdp.PickValueInList(WORDS + CLAIM_NAMES): json_value(fdp, depth + 1)
                for _ in range(fdp.ConsumeIntInRange(0, 3))}
    return " ".join(fdp.PickValueInList(WORDS) for _ in range(fdp.ConsumeIntInRange(0, 3)))


def deeply_nested(fdp: atheris.FuzzedDataProvider):
    """A JSON value inside 1 to MAX_NESTING arrays and objects, built without recursion."""
    value = json_value(fdp, depth=3)
    for _ in range(fdp.ConsumeIntInRange(1, MAX_NESTING)):
        value = [value] if fdp.ConsumeBool() else {fdp.PickValueInList(WORDS): value}
    return value


def signed_case(data: bytes) -> tuple[SigningKey, dict, dict, dict]:
    """(key, header extras, claims, route requirement) built from the input; empty input: a valid token."""
    fdp = atheris.FuzzedDataProvider(data)
    profile = PROFILES[fdp.ConsumeIntInRange(0, len(PROFILES) - 1)]
    claims = {"iss": PROFILE_ISSUERS[profile].replace("{tenantid}", TENANT), "sub": "user-1", "aud": AUDIENCE,
              "exp": NOW + 300, "iat": NOW, "jti": "j-1", "tid": TENANT}
    if profile == "cognito":
        claims.update(client_id=AUDIENCE, token_use="access")
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(CLAIM_NAMES)
        if fdp.ConsumeIntInRange(0, 3) == 0:
            claims.pop(name, None)
        else:
            claims[name] = json_value(fdp)
    if fdp.ConsumeIntInRange(0, 7) == 7:  # not on empty input, which must stay a valid token
        claims[fdp.PickValueInList(CLAIM_NAMES)] = deeply_nested(fdp)
    header = {"typ": fdp.PickValueInList(TYPS)}
    for _ in range(fdp.ConsumeIntInRange(0, 1)):
        header[fdp.PickValueInList(HEADER_EXTRAS)] = json_value(fdp, depth=2)
    route = {"scopes": [fdp.PickValueInList(WORDS[:3])] if fdp.ConsumeBool() else [],
             "claims": {fdp.PickValueInList(ROUTE_CLAIMS): [json_value(fdp, depth=3) or "x"]}
             if fdp.ConsumeBool() else None}
    key = KEYS[ALGORITHMS[fdp.ConsumeIntInRange(0, len(ALGORITHMS) - 1)]]
    return key, header, claims, route


def check_signed_claims(data: bytes):
    """One signed-mode input; returns the Principal when the token was accepted, else None."""
    key, header, claims, route = signed_case(data)
    token = mint(key, claims, header=header, typ=header.pop("typ"))
    principal = None
    try:
        principal = SIGNED_VERIFIER.verify(token, scopes=tuple(route["scopes"]), claims=route["claims"])
    except TokenRejected:
        pass
    for check in (lambda: SIGNED_VERIFIER.verify_id_token(token, nonce="n-1"),
                  lambda: SIGNED_VERIFIER.check_signature(token)):
        try:
            check()
        except TokenRejected:
            pass
    SIGNED_VERIFIER.explain(token)
    if principal is not None and dict(principal.claims) != claims:
        raise AssertionError("the accepted principal does not hold the claims that were signed")
    return principal


MODES = {"raw": check_raw_token, "signed": check_signed_claims}


def write_seeds(directory: str) -> None:
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for number, token in enumerate(seed_tokens()):
        (target / f"seed-{number:02d}.jwt").write_text(token)


def main(argv: list[str]) -> None:
    if "--write-seeds" in argv:
        write_seeds(argv[argv.index("--write-seeds") + 1])
        return
    modes = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--mode=")]
    if len(modes) != 1 or modes[0] not in MODES:
        sys.exit("usage: python -m tests.fuzz.fuzz_token_verification --mode=raw|signed [libFuzzer flags] "
                 "[CORPUS_DIR...] | --write-seeds DIR")
    if modes[0] == "raw":
        prime_raw_mode()
    check_one_input = MODES[modes[0]]

    def test_one_input(data: bytes) -> None:
        check_one_input(data)
    # libFuzzer starts -jobs/-fork children by running argv[0] with the flags through the shell, and ignores flags
    # that start with "--": so argv[0] is this interpreter running this module, and --mode stays for the children.
    atheris.Setup([f"{shlex.quote(sys.executable)} -m tests.fuzz.fuzz_token_verification", *argv[1:]],
                  test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
