"""DPoP proofs (RFC 9449): the JWK thumbprint a bound token names (RFC 7638), the request URI as a proof states it,
and the proof checks of RFC 9449 section 4.3.

A DPoP proof is a JWS the client signs with its own key for one request: the public key travels in the proof's
header, so the signature proves possession of the private key, and the access token's `cnf.jkt` says which key that
must be. What makes a stolen proof useless is checked here: the method and URI it was made for, a short iat window,
the hash of the access token it accompanies, and a jti that the replay store has never seen.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import urlsplit

from .compact import check_header, decode_json_object, decode_segment, split_token
from .errors import TokenRejected
from .jwk import b64url_encode, parse_jwk
from .records import Record, set_field
from .replay import ReplayStore, ReplayStoreUnavailable

if TYPE_CHECKING:
    from .dpop_nonce import DpopNonces

DPOP_TYP = "dpop+jwt"
# A proof is a header with one public key and five short claims; 4 KB holds an RSA-4096 key with room to spare.
MAX_PROOF_CHARS = 4096
MAX_JTI_CHARS = 256
# RFC 7638 section 3.2: the required members of each key type, which alone enter the thumbprint.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: what a DPoP-bound token's `cnf.jkt` holds."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError(f"a thumbprint needs an RSA, EC or OKP key, got kty {kty!r}")
    for name in members:
        if not isinstance(jwk.get(name), str):
            raise ValueError(f"the {kty} key has no {name!r} string member, which its thumbprint requires")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(access_token: str) -> str:
    """The proof's `ath`: base64url(SHA-256(the ASCII access token)) (RFC 9449 section 4.2)."""
    return b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest())


def normalise_htu(uri: str) -> str:
    """A request URI as DPoP compares it: without query and fragment, with RFC 3986 syntax- and scheme-based
    normalisation (section 6.2.2 and 6.2.3: case of scheme and host, percent-encoding, dot segments, default port,
    empty path as "/"), as RFC 9449 section 4.3 step 9 prescribes. Raises ValueError for a URI that is not http(s)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URI: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an htu is an absolute http or https URI")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_normalise_escape, parts.path)) or "/"
    return f"{scheme}://{netloc}{path}"


def _normalise_escape(match: re.Match) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.endswith(("/.", "/..")):
        output.append("")
    return "/".join(output)


class DpopProof(Record):
    """A proof that passed every check: the key's thumbprint and the proof's jti and iat."""

    __slots__ = ("thumbprint", "jti", "issued_at")

    def __init__(self, thumbprint: str, jti: str, issued_at: float) -> None:
        set_field(self, "thumbprint", thumbprint)
        set_field(self, "jti", jti)
        set_field(self, "issued_at", issued_at)


def invalid_proof(message: str, *, hint: str | None = None, found: object = None) -> TokenRejected:
    return TokenRejected("invalid_dpop_proof", message, found=found,
                         hint=hint or "sign a fresh DPoP proof for this request with the key the token is bound to")


def check_dpop_proof(proof: Any, *, method: str, uri: str, access_token: str, expected_thumbprint: str,
                     algorithms: Sequence[str], max_age_seconds: int, now: float, replay: ReplayStore,
                     nonces: "DpopNonces | None" = None) -> DpopProof:
    """Every check of RFC 9449 section 4.3 (plus the cnf.jkt binding of section 7.1) on the DPoP header of one
    request; raises TokenRejected invalid_dpop_proof (use_dpop_nonce when only the nonce is missing or stale,
    replay_store_unavailable when the replay store cannot record the jti: the caller fails closed).

    method / uri          what the gateway saw (uri as scheme://host/path; the query is ignored)
    access_token          the token the proof accompanies (its hash must be the proof's ath)
    expected_thumbprint   the token's cnf.jkt
    nonces                the server's DPoP nonces when the route requires one (dpop_nonce.DpopNonces), else None:
                          a proof without the current nonce raises DpopNonceRequired, which carries a fresh one
    """
    if isinstance(proof, tuple):
        raise invalid_proof("the request carries more than one DPoP header", hint="send exactly one DPoP proof")
    if not isinstance(proof, str) or not proof:
        raise invalid_proof("the request carries no DPoP proof header", hint="send the DPoP header (RFC 9449 4.1)")
    if len(proof) > MAX_PROOF_CHARS:
        raise invalid_proof(f"the DPoP proof is {len(proof)} characters, more than {MAX_PROOF_CHARS}")
    try:
        header_segment, payload_segment, signature_segment = split_token(proof)
        header = decode_json_object(decode_segment(header_segment, "header"), "header")
        check_header(header)
        claims = decode_json_object(decode_segment(payload_segment, "claims set"), "claims set")
        signature = decode_segment(signature_segment, "signature")
    except TokenRejected as exc:
        raise invalid_proof(f"the DPoP proof is not a well-formed JWT: {exc.message}") from None
    typ = header.get("typ")
    if typ is None:
        raise invalid_proof(f"the DPoP proof has no typ header; it must be {DPOP_TYP!r}")
    if typ != DPOP_TYP:
        raise invalid_proof(f"the DPoP proof's typ is {typ[:40]!r}, not {DPOP_TYP!r}", found=typ[:40])
    alg = header["alg"]
    if alg not in algorithms:
        raise invalid_proof(f"the DPoP proof is signed with {alg}, which this issuer's DPoP settings do not allow",
                            found=alg, hint=f"sign proofs with one of {', '.join(algorithms)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise invalid_proof('the DPoP proof header has no "jwk" object (the public key that signed it)')
    try:
        key = parse_jwk(jwk)  # refuses private members and symmetric keys
        thumbprint = jwk_thumbprint(jwk)
    except ValueError as exc:
        raise invalid_proof(f"the DPoP proof's jwk is not an acceptable public key: {exc}") from None
    if not key.verify(alg, header_segment + b"." + payload_segment, signature):
        raise invalid_proof(f"the DPoP proof's {alg} signature does not verify with the key in its header")
    if thumbprint != expected_thumbprint:
        raise invalid_proof("the DPoP proof is signed by another key than the one the access token is bound to "
                            "(cnf.jkt)", found=thumbprint[:16],
                            hint="sign the proof with the key the token was issued for")
    htm = claims.get("htm")
    if htm != method.upper():
        raise invalid_proof(f"the DPoP proof is for method {str(htm)[:16]!r}, the request is {method.upper()}",
                            found=str(htm)[:16])
    htu = claims.get("htu")
    try:
        same_uri = isinstance(htu, str) and normalise_htu(htu) == normalise_htu(uri)
    except ValueError:
        same_uri = False
    if not same_uri:
        raise invalid_proof("the DPoP proof's htu is not this request's URI (scheme, host and path)",
                            found=str(htu)[:200] if isinstance(htu, str) else None)
    iat = claims.get("iat")
    if type(iat) not in (int, float) or abs(now - iat) > max_age_seconds:
        raise invalid_proof(f"the DPoP proof's iat is missing or more than {max_age_seconds} s from now",
                            hint="make a new proof for every request, with the current time")
    jti = claims.get("jti")
    if type(jti) is not str or not jti or len(jti) > MAX_JTI_CHARS:
        raise invalid_proof(f"the DPoP proof has no jti string of at most {MAX_JTI_CHARS} characters")
    if claims.get("ath") != access_token_hash(access_token):
        raise invalid_proof("the DPoP proof's ath is not the hash of the access token it came with",
                            hint="compute ath over the exact access token sent in Authorization")
    if nonces is not None:
        nonces.check(claims.get("nonce"))  # before the jti is recorded: the retry with the nonce is a new proof
    # Recorded last, so a proof that fails any other check cannot spend a legitimate client's jti.
    replay_key = "dpop:" + hashlib.sha256(f"{thumbprint}\n{jti}".encode("utf-8")).hexdigest()
    try:
        first = replay.first_use(replay_key, expires_at=now + 2 * max_age_seconds)
    except ReplayStoreUnavailable as exc:
        raise TokenRejected("replay_store_unavailable", f"the DPoP replay store cannot record the proof: {exc}",
                            hint="retry shortly; the request is refused while replays cannot be ruled out") from None
    if not first:
        raise invalid_proof("the DPoP proof was already used (its jti was seen before)",
                            hint="a proof is single-use: sign a new one for every request")
    return DpopProof(thumbprint=thumbprint, jti=jti, issued_at=float(iat))


def www_authenticate_dpop(rejection: TokenRejected | None, algorithms: Sequence[str]) -> str:
    """The WWW-Authenticate challenge for a DPoP route (RFC 9449 section 7.1): the scheme, the error, the algs."""
    parts = [f'algs="{" ".join(algorithms)}"']
    if rejection is not None:
        error = rejection.code if rejection.code in ("invalid_dpop_proof", "use_dpop_nonce") else "invalid_token"
        parts.insert(0, f'error="{error}"')
    return "DPoP " + ", ".join(parts)


__all__ = ["DPOP_TYP", "DpopProof", "access_token_hash", "check_dpop_proof", "jwk_thumbprint", "normalise_htu",
           "www_authenticate_dpop"]
