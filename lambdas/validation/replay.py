"""Single-use records: the interface the DPoP proof check (and logout token jti check) writes through, and the
in-memory store for one process. The DynamoDB store every authorizer instance shares is in dynamodb_store.py."""
from __future__ import annotations

import threading
import time
from typing import Callable, Protocol, runtime_checkable


class ReplayStoreUnavailable(Exception):
    """The store could not say whether a key was seen before; the caller refuses the request (fail closed)."""


@runtime_checkable
class ReplayStore(Protocol):
    def first_use(self, key: str, *, expires_at: float) -> bool:
        """Record `key` until `expires_at` (epoch seconds) and return True, or return False when it is already
        recorded and not yet expired. Atomic: of two concurrent calls with one key, exactly one gets True. Raises
        ReplayStoreUnavailable when it cannot tell."""
        ...


class MemoryReplayStore:
    """Keys remembered in this process only: right for tests and a single process (one forward-auth replica), not
    for Lambda, where every concurrent execution environment has its own memory (use the DynamoDB store there).

    Bounded: when `max_entries` live keys are held, a new key is refused as unavailable rather than an old one
    forgotten, since forgetting a key early is what would let its proof be replayed."""

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._expiry: dict[str, float] = {}
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def first_use(self, key: str, *, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            known = self._expiry.get(key)
            if known is not None and known > now:
                return False
            if len(self._expiry) >= self._max_entries:
                self._expiry = {k: e for k, e in self._expiry.items() if e > now}
                if len(self._expiry) >= self._max_entries:
                    raise ReplayStoreUnavailable(f"the in-memory replay store holds {self._max_entries} live "
                                                 f"entries; refusing rather than forgetting one")
            self._expiry[key] = expires_at
            return True
