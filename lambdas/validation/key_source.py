"""Where a Verifier gets an issuer's verification keys: the KeySource protocol and the in-memory StaticKeySource.

The Verifier only ever asks a key source two things: "the key for this kid and alg" and "load your keys now". The
remote source (a JWKS URL with caching, or OIDC discovery) lives in jwks_cache.py / discovery.py and implements the
same two methods, so the verification path never knows whether keys came from memory, a bundled file or the network.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .errors import TokenRejected
from .jwk import JsonWebKey, KeySet


@runtime_checkable
class KeySource(Protocol):
    """A provider of one issuer's signature verification keys."""

    def get_key(self, kid: str | None, alg: str) -> JsonWebKey:
        """The key for `kid` that verifies `alg`. Raises TokenRejected: unknown_kid when no such key exists,
        jwks_unavailable when the keys cannot be had (the caller fails closed)."""
        ...

    def hydrate(self) -> None:
        """Load the keys now (at Lambda init) so the first request does not pay for it."""
        ...


def key_not_found(key_set: KeySet, kid: str | None, alg: str) -> TokenRejected:
    """The rejection for a kid/alg that `key_set` cannot serve, saying which case it is and what to do."""
    shown_kid = _safe_kid(kid)
    if kid is None:
        return TokenRejected(
            "unknown_kid", f"the token has no kid and {key_set.source} does not have exactly one {alg} key",
            expected="a kid header naming one of " + ", ".join(repr(k) for k in key_set.kids[:10]), found=None,
            hint="issue tokens with a kid header, or publish only one key for this algorithm")
    if key_set.has_kid(kid):
        algs = sorted({a for key in key_set.keys if key.kid == kid for a in key.algorithms})
        return TokenRejected(
            "alg_not_allowed", f"key {shown_kid} in {key_set.source} cannot verify {alg} signatures",
            expected=algs, found=alg,
            hint="the token's alg does not match its key's type/curve/alg; the token was not signed by this key")
    reason = key_set.refused.get(kid)
    if reason is not None:
        return TokenRejected(
            "unknown_kid", f"{key_set.source} publishes a key with kid {shown_kid}, but it was refused: "
            f"{reason[:300]}", expected=list(key_set.kids[:20]), found=shown_kid,
            hint="the issuer must replace that key (authgate never verifies with a weak or unusable key); tokens "
                 "signed with one of the accepted keys still verify")
    return TokenRejected(
        "unknown_kid", f"no key with kid {shown_kid} in {key_set.source}",
        expected=list(key_set.kids[:20]), found=shown_kid,
        hint="the token was signed by a key this issuer does not publish (rotated out, or another issuer's key)")


def _safe_kid(kid: str | None) -> str:
    """kid is attacker-controlled: show a bounded, escaped form only."""
    if kid is None:
        return "None"
    return repr(kid[:64]) + ("..." if len(kid) > 64 else "")


class StaticKeySource:
    """Keys known up front: an in-memory JWKS or a JWKS file bundled with the deployment. Never touches the network."""

    __slots__ = ("key_set",)

    def __init__(self, key_set: KeySet) -> None:
        self.key_set = key_set

    @classmethod
    def from_jwks(cls, doc: Any, *, source: str = "in-memory JWKS") -> "StaticKeySource":
        return cls(KeySet.from_jwks(doc, source=source))

    @classmethod
    def from_file(cls, path: str) -> "StaticKeySource":
        """A bundled JWKS file. Raises ValueError naming the file when it cannot be read or is not a JWKS."""
        from .fetcher import parse_json_object  # the one strict reader of key documents, fetched or bundled

        try:
            with open(path, "rb") as handle:
                body = handle.read()
        except OSError as exc:
            raise ValueError(f"cannot read JWKS file {path}: {exc.strerror or exc}") from None
        doc = parse_json_object(body, source=f"JWKS file {path}")
        return cls(KeySet.from_jwks(doc, source=f"JWKS file {path}"))

    def get_key(self, kid: str | None, alg: str) -> JsonWebKey:
        key = self.key_set.find(kid, alg)
        if key is None:
            raise key_not_found(self.key_set, kid, alg)
        return key

    def hydrate(self) -> None:
        """Nothing to load: the keys are already in memory."""

    def __repr__(self) -> str:
        return f"StaticKeySource({self.key_set!r})"
