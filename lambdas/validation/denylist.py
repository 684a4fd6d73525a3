"""The shared denylist: revoked tokens (jti, and Cognito's origin_jti), logged-out sessions (sid) and subjects
whose tokens issued before a time are refused (sub), consulted by `freshness: denylist` routes.

Entries are keyed on what the issuer names (iss plus jti, sid or sub), never on a hash of the token: ECDSA
signatures are malleable, so one token has several valid spellings and a hash would miss all but one. An entry's
value is when the revocation happened: a jti entry refuses that token whatever its iat; a sid or sub entry refuses
tokens issued at or before that time (a later sign-in is a new grant). Entries expire after the issuer's longest
token lifetime, when every token they could refuse has expired anyway.

Lookups are cached per instance for `cache_seconds` (the stated staleness bound: a revocation takes effect on
every instance within that many seconds). A store that cannot be read fails closed (denylist_unavailable).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable, Mapping, Protocol, runtime_checkable

from .errors import TokenRejected

KINDS = ("jti", "sid", "sub")


class DenylistUnavailable(Exception):
    """The denylist store could not be read or written."""


@runtime_checkable
class DenylistStore(Protocol):
    def put(self, key: str, *, revoked_at: float, expires_at: float) -> None:
        """Record `key` as revoked at `revoked_at` until `expires_at` (epoch seconds); a later revocation of the
        same key wins. Raises DenylistUnavailable."""
        ...

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        """revoked_at of each of `keys` that has a live entry. Raises DenylistUnavailable."""
        ...


def entry_key(issuer: str, kind: str, value: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"a denylist entry is for a jti, sid or sub, not {kind!r}")
    return f"{kind}|{issuer}|{value}"


class MemoryDenylistStore:
    """Entries in this process only (tests, the sandbox, one forward-auth replica)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._entries: dict[str, tuple[float, float]] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def put(self, key: str, *, revoked_at: float, expires_at: float) -> None:
        with self._lock:
            known = self._entries.get(key)
            if known is None or known[0] < revoked_at:
                self._entries[key] = (revoked_at, expires_at)

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        now = self._clock()
        with self._lock:
            found = {key: self._entries.get(key) for key in keys}
        return {key: entry[0] for key, entry in found.items() if entry is not None and entry[1] > now}


class Denylist:
    """Records revocations and answers, for one token's claims, whether it is revoked."""

    def __init__(self, store: DenylistStore, *, clock: Callable[[], float] = time.time,
                 max_cached: int = 10_000) -> None:
        self.store = store
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, float]]] = {}
        self._max_cached = max_cached
        self._lock = threading.Lock()

    # ---- recording -------------------------------------------------------------------------------------------
    def revoke(self, issuer: str, kind: str, value: str, *, lifetime_seconds: int, at: float | None = None) -> None:
        """Revoke a token (kind jti), a session (sid) or a subject's earlier tokens (sub) from `at` (default now)."""
        if not isinstance(value, str) or not value:
            raise ValueError(f"a denylist {kind} must be a non-empty string")
        at = self._clock() if at is None else at
        try:
            self.store.put(entry_key(issuer, kind, value), revoked_at=at, expires_at=at + lifetime_seconds)
        except DenylistUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a store's own failure must surface as one type
            raise DenylistUnavailable(f"{type(exc).__name__}: {exc}") from None

    # ---- checking --------------------------------------------------------------------------------------------
    def check(self, issuer: str, claims: Mapping, *, cache_seconds: int) -> None:
        """Raise TokenRejected("revoked") when the token's jti/origin_jti, sid or sub is on the denylist, and
        TokenRejected("denylist_unavailable") when the store cannot be read."""
        wanted: list[tuple[str, str]] = []
        for claim, kind in (("jti", "jti"), ("origin_jti", "jti"), ("sid", "sid"), ("sub", "sub")):
            value = claims.get(claim)
            if isinstance(value, str) and value:
                wanted.append((claim, entry_key(issuer, kind, value)))
        found = self._lookup(tuple(key for _, key in wanted), cache_seconds)
        iat = claims.get("iat")
        issued = iat if type(iat) in (int, float) else None
        for claim, key in wanted:
            revoked_at = found.get(key)
            if revoked_at is None:
                continue
            if claim in ("jti", "origin_jti") or issued is None or issued <= revoked_at:
                what = {"jti": "the token", "origin_jti": "the refresh token this token came from",
                        "sid": "its session (logged out)", "sub": "its subject's earlier tokens"}[claim]
                raise TokenRejected("revoked", f"the token is refused: {what} was revoked", found=claim,
                                    hint="sign in again or obtain a new token")

    def _lookup(self, keys: tuple[str, ...], cache_seconds: int) -> dict[str, float]:
        if not keys:
            return {}
        now = self._clock()
        if cache_seconds > 0:
            with self._lock:
                cached = self._cache.get(keys)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            found = self.store.get_many(keys)
        except Exception as exc:  # noqa: BLE001 - whatever the store raised, the answer is "cannot tell"
            raise TokenRejected("denylist_unavailable", f"the denylist cannot be read ({type(exc).__name__})",
                                hint="retry shortly; routes with freshness: denylist fail closed meanwhile") from None
        if cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= self._max_cached:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                    if len(self._cache) >= self._max_cached:
                        self._cache.clear()
                self._cache[keys] = (now + cache_seconds, found)
        return found


__all__ = ["Denylist", "DenylistStore", "DenylistUnavailable", "MemoryDenylistStore", "entry_key"]
