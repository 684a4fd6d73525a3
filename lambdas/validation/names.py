"""Collections of names handed to the public API (issuer names, algorithms, audiences): one rule for all of them.

A bare string is refused, never iterated: `name in "partner-admin"` is a substring test, so a string given where a
collection belongs would accept the issuer named "partner" (and frozenset("RS256") is a set of characters).
"""
from __future__ import annotations

from typing import Any


def name_set(value: Any, field: str) -> frozenset[str]:
    """`value` (any iterable of strings) as a frozenset; ValueError saying how to write it for anything else."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{field} must be a list of names, not one string (a string would match its substrings); "
                         f"write {field}=[{value!r}]")
    try:
        names = frozenset(value)
    except TypeError:
        raise ValueError(f"{field} must be a list of names, got {type(value).__name__}") from None
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"{field} must list names as strings, got {sorted(map(repr, names))[:5]}")
    return names
