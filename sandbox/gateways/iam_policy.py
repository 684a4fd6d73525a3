"""Evaluating the IAM policy a Lambda authorizer returns, as API Gateway does: explicit Deny wins, then Allow,
else deny. Resources are execute-api ARNs with `*` and `?` wildcards, matched by the authorizers' own linear-time glob
matcher (a caller-chosen path must not make the gateway's evaluation backtrack either)."""
from __future__ import annotations

from typing import Any, Mapping

from lambdas.authorizers.iam_policy import glob_matches

INVOKE_ACTIONS = ("execute-api:Invoke", "execute-api:*", "*")


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_effect(document: Mapping[str, Any] | None, method_arn: str) -> str:
    """"Allow", "Deny" (explicit) or "NoMatch" for `method_arn` under `document`."""
    if not isinstance(document, Mapping):
        return "NoMatch"
    allowed = False
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, Mapping):
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in INVOKE_ACTIONS for a in actions):
            continue
        if not any(glob_matches(str(r), method_arn) for r in _as_list(statement.get("Resource"))):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow":
            allowed = True
    return "Allow" if allowed else "NoMatch"


def policy_allows(document: Mapping[str, Any] | None, method_arn: str) -> bool:
    return policy_effect(document, method_arn) == "Allow"
