"""`authgate explain`: every check a token passes or fails under a policy, with the fix for each failure.

With --api and --route it also checks that route's requirement; without --route it lists the routes of each API the
token may call. Exit status: 0 every check passed, 1 any failed, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from stacks.commands.token_options import (UsageError, add_trust_arguments, build_verifier, check_pasted_token,
                                           policy_route_table, read_token)

_MARKS = {True: "PASS", False: "FAIL", None: "SKIP"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", nargs="?", metavar="TOKEN", help="the JWT ('-' reads it from stdin)")
    parser.add_argument("--api", metavar="NAME", help="with --policy: the API whose routes to check against")
    parser.add_argument("--route", metavar="ROUTE_KEY", help='with --api: one route, e.g. "GET /orders/{id}"')
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    add_trust_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        token = read_token(args.token)
        table = policy_route_table(args) if args.policy else None
        verifier, issuers = build_verifier(args, table)
        route = _route(args, table)
        requirement = route.requirement if route is not None and not route.public else None
        if route is not None and not route.public:
            issuers = [name for name in route.issuers if issuers is None or name in issuers]
        report = _explain(verifier, token, requirement, issuers)
        checks = report.checks
        if route is not None and not route.public:
            from lambdas.validation.explain import explain_request_checks
            configs = {config.display_name: config for config in verifier.issuers}
            issuer = next((configs[name] for name in route.issuers if name in configs), None)
            if issuer is not None:
                checks.extend(explain_request_checks(route, issuer, token))
        routes = None
        # The routes are listed for a token whose only failure is that its keys could not be had: marked as read
        # from unverified claims, they still show what the token would reach.
        if table is not None and route is None and report.principal is not None and all(
                check.passed is not False or check.name == "signing key" for check in checks):
            routes = _callable_routes(report.principal, table, args.api)
    except UsageError as exc:
        print(f"authgate explain: {exc}", file=sys.stderr)
        return 2
    ok = all(check.passed is not False for check in checks)
    if args.json:
        out: dict[str, Any] = {"valid": ok, "checks": [check.as_dict() for check in checks],
                               "signature_verified": report.signature_verified}
        if routes is not None:
            out["routes"] = routes
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        _print_human(checks, routes, route, signature_verified=report.signature_verified)
    return 0 if ok else 1


def _explain(verifier, token: str, requirement, issuers):
    from lambdas.validation import TokenRejected
    from lambdas.validation.explain import Explanation, explain_report, failed, skipped

    try:
        check_pasted_token(token)
    except TokenRejected as exc:
        return Explanation([failed("token format", exc), skipped("everything else", "the token could not be read")],
                           None, False)
    return explain_report(verifier, token, requirement, issuers=issuers, expected_use=None)


def _route(args: argparse.Namespace, table: dict[str, Any] | None):
    if args.route and not args.api:
        raise UsageError("--route needs --api NAME (the API the route belongs to)")
    if args.api and table is None:
        raise UsageError("--api needs --policy FILE")
    if not args.route:
        if args.api and args.api not in table["apis"]:
            raise UsageError(f"--api {args.api!r} is not in the policy; choose one of: {', '.join(table['apis'])}")
        return None
    from lambdas.validation.route_table import RouteTable
    try:
        api = RouteTable.load(table).api(args.api)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    route = api.route(args.route)
    if route is None:
        raise UsageError(f"--route {args.route!r} is not a route of API {args.api!r}; its routes are: "
                         f"{', '.join(r.route_key for r in api.routes)}")
    return route


def _callable_routes(principal, table: dict[str, Any], only_api: str | None) -> dict[str, Any]:
    """For each API: the routes this caller may call and, for the others, every condition it does not meet."""
    from lambdas.validation.route_decision import decide_for_principal
    from lambdas.validation.route_table import RouteTable

    out: dict[str, Any] = {}
    loaded = RouteTable.load(table)
    for api_name in table["apis"]:
        if only_api and api_name != only_api:
            continue
        verdicts = {}
        api = loaded.api(api_name)
        for route in api.routes:
            decision = decide_for_principal(api, route, principal)
            if route.public:
                verdicts[route.route_key] = "allowed (public)"
            elif decision.allowed:
                verdicts[route.route_key] = "allowed"
            elif decision.code == "unknown_issuer":
                verdicts[route.route_key] = f"denied: issuer {principal.issuer_name} is not accepted here"
            else:
                failures = decision.missing or (decision.rejection,)
                verdicts[route.route_key] = "denied: " + "; ".join(_unmet(exc) for exc in failures)
        out[api_name] = verdicts
    return out


def _unmet(exc) -> str:
    """One unmet condition with what it needs and what the token has, e.g. `insufficient_scope: the token has none of
    the scopes this route accepts (needs one of: orders:write; the token has: orders:read)`."""
    def listed(value) -> str:
        return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    text = f"{exc.code}: {exc.message}"
    if isinstance(exc.expected, (list, tuple)) and exc.code != "wrong_token_use":
        needs = "needs one of" if "none of" in exc.message else "needs"
        text += f" ({needs}: {listed(exc.expected)}; the token has: {listed(exc.found) if exc.found else 'none'})"
    return text


def _print_human(checks, routes, route, *, signature_verified: bool = True) -> None:
    if route is not None:
        print(f"route {route.route_key}" + (" (public: no token needed)" if route.public else ""))
    for check in checks:
        print(f"{_MARKS[check.passed]}  {check.name}: {check.detail}")
        if check.passed is False and check.fix:
            print(f"      fix: {check.fix}")
    if routes:
        if not signature_verified:
            print("\nroutes this token would reach IF its signature is valid (it could not be verified here):")
        for api_name, verdicts in routes.items():
            print(f"\nAPI {api_name}:")
            for route_key, verdict in verdicts.items():
                print(f"  {route_key:<32} {verdict}")
