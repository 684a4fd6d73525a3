"""How every command reads a policy file: one exit status for an unusable command line or policy, warnings shown.

Exit statuses shared by all commands: 0 success, 1 the thing checked failed (a token rejected, a cdk-nag finding),
2 the command cannot run as given (a usage error, or a policy file that is not valid).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.policy import AuthPolicy

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line cannot work as given; the message says what to change. Exit status 2."""


def parse_variables(pairs: list[str]) -> dict[str, str]:
    """--var NAME=VALUE arguments as a dict (UsageError names the malformed one)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: write it as NAME=VALUE")
        out[name] = value
    return out


def load_policy_file(path: str, var_pairs: list[str], *, command: str) -> "AuthPolicy":
    """The validated policy, its warnings printed to stderr; UsageError (exit 2) listing every problem if invalid."""
    from stacks.policy import PolicyError, load_policy

    variables = parse_variables(var_pairs)
    try:
        policy = load_policy(path, variables=variables)
    except PolicyError as exc:
        raise UsageError(f"the policy is not valid:\n{exc}") from None
    print_policy_warnings(policy, command=command)
    return policy


def print_policy_warnings(policy: "AuthPolicy", *, command: str) -> None:
    for warning in policy.warnings:
        print(f"{command}: warning: {warning}", file=sys.stderr)
