"""The labels a decision is counted under, kept low-cardinality: one function that every metric format uses.

A metric label is a time series per distinct value, so only values drawn from bounded sets are ever used: the API
and route keys of the route table, the authorizer kind, the outcome, the stable rejection codes and the issuer names
of the policy. Never a subject, a token id, a raw request path or anything else a caller chose: a value outside
its set becomes "unmatched" (routes), "other" (codes) or "none" (no verified issuer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from lambdas.validation.errors import CODES
from lambdas.validation.route_decision import Outcome

OUTCOMES = tuple(outcome.value for outcome in Outcome)
# Codes an authorizer decides itself, beside the validation module's CODES.
AUTHORIZER_CODES = frozenset({"route_mismatch"})
KNOWN_CODES = frozenset(CODES) | AUTHORIZER_CODES
NO_CODE = "none"
OTHER_CODE = "other"
NO_ISSUER = "none"
UNMATCHED_ROUTE = "unmatched"


@dataclass(frozen=True)
class DecisionLabels:
    api: str
    authorizer: str
    outcome: str
    reason: str
    issuer: str
    route: str

    def as_dict(self) -> dict[str, str]:
        return {"api": self.api, "authorizer": self.authorizer, "outcome": self.outcome, "reason": self.reason,
                "issuer": self.issuer, "route": self.route}


class DecisionLabeller:
    """Labels for the decisions of one API: knows the API's route keys, so a route outside the table is "unmatched"."""

    def __init__(self, api: str, route_keys: Iterable[str]) -> None:
        self.api = api
        self._route_keys = frozenset(route_keys)

    def labels(self, *, authorizer: str, outcome: str, code: str | None, route: str | None,
               principal: Any = None) -> DecisionLabels:
        """`principal` is the verified Principal or None; only its issuer name (from the policy) is used."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if code is None:
            reason = NO_CODE
        else:
            reason = code if code in KNOWN_CODES else OTHER_CODE
        issuer = getattr(principal, "issuer_name", None) if principal is not None else None
        return DecisionLabels(api=self.api, authorizer=authorizer, outcome=outcome, reason=reason,
                              issuer=issuer if isinstance(issuer, str) and issuer else NO_ISSUER,
                              route=route if route in self._route_keys else UNMATCHED_ROUTE)
