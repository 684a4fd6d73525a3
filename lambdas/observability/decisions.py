"""The labels a decision is counted under, kept low-cardinality: one function that every metric format uses.

A metric label is a time series per distinct value, so only values drawn from bounded sets are ever used: the API
and route keys of the route table, the authorizer kind, the outcome, the stable rejection codes and the issuer names
of the policy. Never a subject, a token id, a raw request path or anything else a caller chose: a value outside
its set becomes "unmatched" (routes), "other" (outcomes, codes) or "none" (no verified issuer).
"""
from __future__ import annotations

from typing import Iterable

from lambdas.validation.errors import CODES
from lambdas.validation.records import Record, set_field
from lambdas.validation.route_decision import Outcome

# The route decision's outcomes, and the forward-auth service's answer to a check request naming no single request.
OUTCOMES = (*(outcome.value for outcome in Outcome), "bad_request")
OTHER_OUTCOME = "other"
# Codes an entry point decides itself (authorizers, forward-auth), beside the validation module's CODES.
AUTHORIZER_CODES = frozenset({"route_mismatch", "bad_check_request", "internal_error"})
KNOWN_CODES = frozenset(CODES) | AUTHORIZER_CODES
NO_CODE = "none"
OTHER_CODE = "other"
NO_ISSUER = "none"
UNMATCHED_ROUTE = "unmatched"


class DecisionLabels(Record):
    """The labels of one decision (built on every decision: a Record, which costs nothing at import)."""

    __slots__ = ("api", "authorizer", "outcome", "reason", "issuer", "route")

    def __init__(self, api: str, authorizer: str, outcome: str, reason: str, issuer: str, route: str) -> None:
        set_field(self, "api", api)
        set_field(self, "authorizer", authorizer)
        set_field(self, "outcome", outcome)
        set_field(self, "reason", reason)
        set_field(self, "issuer", issuer)
        set_field(self, "route", route)

    def as_dict(self) -> dict[str, str]:
        return {"api": self.api, "authorizer": self.authorizer, "outcome": self.outcome, "reason": self.reason,
                "issuer": self.issuer, "route": self.route}


class DecisionLabeller:
    """Labels for the decisions of one API: knows the API's route keys, so a route outside the table is "unmatched"."""

    def __init__(self, api: str, route_keys: Iterable[str]) -> None:
        self.api = api
        self._route_keys = frozenset(route_keys)

    def labels(self, *, authorizer: str, outcome: str, code: str | None, route: str | None,
               issuer_name: str | None = None) -> DecisionLabels:
        """`issuer_name` is the policy name of the issuer that verified the token, None when none did."""
        if outcome not in OUTCOMES:
            outcome = OTHER_OUTCOME  # a metric label must never fail the decision it describes
        if code is None:
            reason = NO_CODE
        else:
            reason = code if code in KNOWN_CODES else OTHER_CODE
        return DecisionLabels(api=self.api, authorizer=authorizer, outcome=outcome, reason=reason,
                              issuer=issuer_name if isinstance(issuer_name, str) and issuer_name else NO_ISSUER,
                              route=route if route in self._route_keys else UNMATCHED_ROUTE)
