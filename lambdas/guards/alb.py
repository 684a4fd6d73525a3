"""Behind an ALB with authenticate-oidc: verify `x-amzn-oidc-data` and the access token in `x-amzn-oidc-accesstoken`.

`x-amzn-oidc-data` is a JWT the load balancer signs with ES256. Its parts are base64url *with* '=' padding (not what
RFC 7515 says), the header names the `signer` (the ALB's ARN), and the public key is a PEM file at
https://public-keys.auth.elb.<region>.amazonaws.com/<kid>, fetched once per kid and cached. Anyone who can reach the
target directly can forge these headers, so the signature and the signer are checked on every request; the access
token (the IdP's own token) goes through the shared Verifier like any bearer token.
"""
from __future__ import annotations

import base64
import re
import threading
import time
from typing import Any, Callable

from lambdas.validation.claims import numeric_date
from lambdas.validation.compact import decode_token
from lambdas.validation.errors import TokenRejected
from lambdas.validation.fetcher import FetchError, HttpFetcher, check_key_url
from lambdas.validation.jwk import JsonWebKey, parse_jwk
from lambdas.validation.principal import build_principal
from lambdas.validation.profiles import PROFILES

from .identity_header import unpadded_b64url
from .require import header_value

DATA_HEADER = "x-amzn-oidc-data"
ACCESS_TOKEN_HEADER = "x-amzn-oidc-accesstoken"
IDENTITY_HEADER = "x-amzn-oidc-identity"
MAX_DATA_BYTES = 16 * 1024
MAX_KEY_BYTES = 4096
# A kid the endpoint does not know is remembered for a while: anyone who reaches the target can name a fresh kid on
# every request, and each would otherwise cost a fetch made under the one key lock.
UNKNOWN_KID_SECONDS = 60
MAX_UNKNOWN_KIDS = 1024
# kids are UUIDs today; anything else is refused before it reaches a URL path. Whole-string matches use fullmatch
# (a `$` would let a final newline through) and ASCII classes (`\d` is any Unicode digit).
_KID = re.compile(r"[A-Za-z0-9-]{1,128}")
_ALB_ARN = re.compile(r"arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):[0-9]{12}:loadbalancer/app/[^/\s]+/[0-9a-f]+")


def decode_alb_data(data: str) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signing input, signature) of x-amzn-oidc-data through the strict token decoder. The ALB pads
    its base64url with '=' (RFC 7515 does not): the padding is checked and removed for decoding, and the signature
    covers the segments as sent."""
    parts = data.split(".")
    if len(parts) != 3:
        raise TokenRejected("malformed", f"{DATA_HEADER} is not a three-part JWT")
    segments = [unpadded_b64url(part, f"the {what} of {DATA_HEADER}")
                for part, what in zip(parts, ("header", "payload", "signature"))]
    try:
        header, claims, _, signature = decode_token(b".".join(segments))
    except TokenRejected as exc:
        raise TokenRejected(exc.code, f"{DATA_HEADER}: {exc.message}", expected=exc.expected, found=exc.found,
                            hint=exc.hint) from None
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


class AlbPublicKeys:
    """ALB signing keys by kid from the regional endpoint, each fetched once and kept (ALB keys do not change)."""

    def __init__(self, region: str, *, endpoint: str | None = None, fetcher: Any = None, timeout: float = 1.0,
                 allow_insecure_http: bool = False) -> None:
        self.endpoint = (endpoint or f"https://public-keys.auth.elb.{region}.amazonaws.com").rstrip("/")
        check_key_url(self.endpoint + "/", allow_insecure_http=allow_insecure_http, what="ALB key endpoint")
        self.fetcher = fetcher or HttpFetcher(allow_insecure_http=allow_insecure_http)
        self.timeout = timeout
        self._keys: dict[str, JsonWebKey] = {}
        self._unknown: dict[str, float] = {}   # kid -> monotonic time its 404 stops being trusted
        self._lock = threading.Lock()

    def get(self, kid: str) -> JsonWebKey:
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not _KID.fullmatch(kid):
            raise TokenRejected("unknown_kid", f"{DATA_HEADER} names a kid that is not an ALB key id",
                                found=kid[:64])
        with self._lock:  # one fetch per kid even when many requests arrive together
            key = self._keys.get(kid)
            if key is None:
                if self._unknown.get(kid, 0.0) > time.monotonic():
                    raise TokenRejected("unknown_kid", f"the ALB key endpoint has no key {kid!r}", found=kid)
                try:
                    key = self._fetch(kid)
                except TokenRejected as exc:
                    if exc.code == "unknown_kid":
                        if len(self._unknown) >= MAX_UNKNOWN_KIDS:
                            self._unknown.clear()
                        self._unknown[kid] = time.monotonic() + UNKNOWN_KID_SECONDS
                    raise
                self._keys[kid] = key
        return key

    def _fetch(self, kid: str) -> JsonWebKey:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        url = f"{self.endpoint}/{kid}"
        try:
            result = self.fetcher.fetch(url, timeout=self.timeout, max_bytes=MAX_KEY_BYTES)
        except FetchError as exc:
            raise TokenRejected("jwks_unavailable", f"the ALB public key could not be fetched: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any transport failure means no key: fail closed
            raise TokenRejected("jwks_unavailable", f"the ALB public key could not be fetched ({type(exc).__name__})"
                                ) from None
        if result.status == 404:
            raise TokenRejected("unknown_kid", f"the ALB key endpoint has no key {kid!r}", found=kid)
        if result.status != 200:
            raise TokenRejected("jwks_unavailable", f"the ALB key endpoint answered HTTP {result.status} for {kid!r}")
        try:
            public_key = load_pem_public_key(result.body)
        except ValueError:
            raise TokenRejected("jwks_unavailable", f"the ALB key endpoint's answer for {kid!r} is not a PEM "
                                "public key") from None
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise TokenRejected("jwks_unavailable", f"the ALB key {kid!r} is not a P-256 key")
        numbers = public_key.public_numbers()
        b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()  # noqa: E731
        return parse_jwk({"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y), "kid": kid,
                          "alg": "ES256"})


class AlbOidcGuard:
    """Verifies the ALB's user-claims header and, when a verifier is given, the forwarded access token.

    alb_arn        the load balancer's ARN: the `signer` the header must name
    verifier       the shared Verifier for the IdP's access token (x-amzn-oidc-accesstoken); None skips it
    keys           AlbPublicKeys (defaults to the ALB's region from the ARN)
    clock          seconds since the epoch; leeway_seconds tolerated on `exp`
    match_subject  require the access token's sub to equal the user claims' sub
    """

    def __init__(self, alb_arn: str, *, verifier: Any = None, keys: AlbPublicKeys | None = None,
                 clock: Callable[[], float] = time.time, leeway_seconds: int = 60, match_subject: bool = True) -> None:
        match = _ALB_ARN.fullmatch(alb_arn) if isinstance(alb_arn, str) else None
        if not match:
            raise ValueError(f"alb_arn must be an application load balancer ARN like arn:aws:elasticloadbalancing:"
                             f"eu-west-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188, got {alb_arn!r}")
        self.alb_arn = alb_arn
        self.keys = keys or AlbPublicKeys(match.group(1))
        self.verifier = verifier
        self.clock = clock
        self.leeway_seconds = leeway_seconds
        # Some IdPs (Entra) put a pairwise sub in access tokens that differs from the userinfo sub: turn this off there.
        self.match_subject = match_subject

    def user_claims(self, headers: Any) -> dict:
        """The verified claims of `x-amzn-oidc-data`, or TokenRejected."""
        data = header_value(headers, DATA_HEADER)
        if not data:
            raise TokenRejected("malformed", f"the request has no {DATA_HEADER} header",
                                hint="the target must only be reachable through the ALB's authenticate-oidc rule")
        if len(data) > MAX_DATA_BYTES:
            raise TokenRejected("token_too_large", f"{DATA_HEADER} exceeds {MAX_DATA_BYTES} bytes")
        header, claims, signing_input, signature = decode_alb_data(data.strip())
        if header.get("alg") != "ES256":
            raise TokenRejected("alg_not_allowed", f"{DATA_HEADER} must be ES256-signed", expected="ES256",
                                found=str(header.get("alg"))[:20])
        if header.get("signer") != self.alb_arn:
            raise TokenRejected("unknown_issuer", f"{DATA_HEADER} was signed by another load balancer",
                                expected=self.alb_arn, found=str(header.get("signer"))[:200],
                                hint="configure the guard with the ARN of the ALB in front of this target")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("unknown_kid", f"{DATA_HEADER} has no kid")
        if not self.keys.get(kid).verify("ES256", signing_input, signature):
            raise TokenRejected("bad_signature", f"the {DATA_HEADER} signature does not verify")
        # The ALB writes exp into the header and the claims; either must be a NumericDate (RFC 7519 2).
        exp = numeric_date(claims, "exp") if "exp" in claims else numeric_date(header, "exp")
        if exp is None:
            raise TokenRejected("missing_claim", f"{DATA_HEADER} has no numeric exp")
        if self.clock() > exp + self.leeway_seconds:
            raise TokenRejected("expired", f"{DATA_HEADER} has expired", expected=f"exp after {int(self.clock())}",
                                found=int(exp))
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenRejected("missing_claim", f"{DATA_HEADER} has no sub")
        identity = header_value(headers, IDENTITY_HEADER)
        if identity is not None and identity != claims["sub"]:
            raise TokenRejected("claim_mismatch", f"{IDENTITY_HEADER} does not match the signed sub")
        claims["iss"] = header.get("iss", claims.get("iss"))
        claims["client"] = header.get("client")
        return claims

    def authenticate(self, headers: Any) -> Any:
        """The caller as a Principal. With a verifier: the access token's principal, after checking that both
        headers name the same user; without: a principal from the ALB's user claims (no scopes)."""
        claims = self.user_claims(headers)
        if self.verifier is None:
            client, scopes, roles, groups, tenant = PROFILES["generic"].identity(claims, "id")
            return build_principal(claims["sub"], str(claims.get("iss") or ""), "alb", claims.get("client"), (),
                                   scopes, roles, groups, tenant, "id", None, int(claims["exp"]), dict(claims))
        access_token = header_value(headers, ACCESS_TOKEN_HEADER)
        if not access_token:
            raise TokenRejected("malformed", f"the request has no {ACCESS_TOKEN_HEADER} header")
        principal = self.verifier.authenticate(access_token)
        if self.match_subject and principal.subject != claims["sub"]:
            raise TokenRejected("claim_mismatch", "the access token and the ALB user claims name different users")
        return principal
