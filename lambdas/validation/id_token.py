"""OIDC ID-token extras (OpenID Connect Core 3.1.3.7, 3.2.2.9): azp, nonce and at_hash, for callers that verify
ID tokens (a client finishing a login, a backend reading ALB/IAP-forwarded identity)."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

from .errors import TokenRejected
from .jwk import b64url_decode

# at_hash uses the hash of the ID token's own alg; Ed25519 signs with SHA-512 internally, so EdDSA uses SHA-512.
_AT_HASH_ALGORITHMS = {"256": "sha256", "384": "sha384", "512": "sha512"}


def access_token_hash(access_token: str, alg: str) -> str:
    """The at_hash an issuer computes for `access_token` in an ID token signed with `alg` (left half of the hash,
    base64url)."""
    name = "sha512" if alg in ("EdDSA", "Ed25519") else _AT_HASH_ALGORITHMS.get(alg[-3:])
    if name is None:
        raise TokenRejected("unsupported_alg", f"no at_hash hash is defined for {alg}")
    digest = hashlib.new(name, access_token.encode("ascii")).digest()
    import base64
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def check_id_token_extras(claims: Mapping[str, Any], alg: str, *, client_id: str | None, nonce: str | None,
                          access_token: str | None) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or ())
    azp = claims.get("azp")
    if azp is not None and type(azp) is not str:
        raise TokenRejected("malformed", "the ID token's azp claim must be a string", found=type(azp).__name__)
    if client_id is not None and client_id not in audiences:
        # OIDC Core 3.1.3.7 step 3: the client's own client_id must be an audience. The issuer-level audience check
        # accepts any configured audience, so an ID token minted for another client of the same issuer would pass.
        raise TokenRejected("invalid_audience", "the ID token was issued for another client: its aud does not "
                            "contain this client's id", expected=client_id, found=[str(a)[:200] for a in audiences[:10]],
                            hint="use the ID token your own client received (OIDC Core 3.1.3.7)")
    if len(audiences) > 1 and azp is None:
        raise TokenRejected("invalid_azp", "the ID token has several audiences but no azp naming the client it was "
                            "issued to", expected="azp", found=None,
                            hint="OIDC Core 3.1.3.7: with multiple audiences the issuer must say which is the client")
    if azp is not None and client_id is not None and azp != client_id:
        raise TokenRejected("invalid_azp", "the ID token was issued to another client (azp)", expected=client_id,
                            found=azp[:200], hint="use the ID token your own client received")
    if nonce is not None:
        found = claims.get("nonce")
        if type(found) is not str or not hmac.compare_digest(found.encode(), nonce.encode("utf-8", "surrogatepass")):
            raise TokenRejected("invalid_nonce", "the ID token's nonce is not the one this login sent"
                                if found is not None else "the ID token carries no nonce, but one was sent",
                                expected="the nonce of this authentication request",
                                found=None if found is None else "a different nonce",
                                hint="replayed or mixed-up login response: start the login again")
    if access_token is not None and "at_hash" in claims:
        at_hash = claims["at_hash"]
        if type(at_hash) is not str:
            raise TokenRejected("malformed", "the ID token's at_hash claim must be a string")
        try:
            b64url_decode(at_hash.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise TokenRejected("invalid_at_hash", "the ID token's at_hash is not base64url") from None
        if type(access_token) is not str or not access_token.isascii():
            # A JWS or opaque OAuth token is ASCII; anything else cannot be what the issuer hashed.
            raise TokenRejected("invalid_at_hash", "the access token given is not an ASCII string, so it cannot be "
                                "the one this ID token was issued with", found=type(access_token).__name__,
                                hint="pass the access_token string from the same token response")
        if not hmac.compare_digest(at_hash, access_token_hash(access_token, alg)):
            raise TokenRejected("invalid_at_hash", "the access token is not the one this ID token was issued with "
                                "(at_hash mismatch)", hint="use the access token from the same token response")
