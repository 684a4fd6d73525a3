"""`authgate explain`: every check a token passes or fails under a policy, with the fix for each failure.

With --api and --route it also checks that route's requirement; without --route it lists the routes of each API the
token may call. Exit status: 0 every check passed, 1 any failed, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from stacks.commands.token_options import (UsageError, add_trust_arguments, build_verifier, policy_route_table,
                                           read_token)

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
        checks = verifier.explain(token, requirement, issuers=issuers)
        routes = _callable_routes(verifier, token, table, args.api) if table is not None and route is None else None
    except UsageError as exc:
        print(f"authgate explain: {exc}", file=sys.stderr)
        return 2
    ok = all(check.passed is not False for check in checks)
    if args.json:
        out: dict[str, Any] = {"valid": ok, "checks": [check.as_dict() for check in checks]}
        if routes is not None:
            out["routes"] = routes
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        _print_human(checks, routes, route)
    return 0 if ok else 1


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


def _callable_routes(verifier, token: str, table: dict[str, Any], only_api: str | None) -> dict[str, Any] | None:
    """For each API: the routes this token may call and, for the others, why not. None when the token is invalid."""
    from lambdas.validation import TokenRejected
    from lambdas.validation.route_decision import decide_for_principal
    from lambdas.validation.route_table import RouteTable

    try:
        principal = verifier.authenticate(token)
    except TokenRejected:
        return None
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
                verdicts[route.route_key] = f"denied ({decision.code}): {decision.rejection.hint or decision.message}"
        out[api_name] = verdicts
    return out


def _print_human(checks, routes, route) -> None:
    if route is not None:
        print(f"route {route.route_key}" + (" (public: no token needed)" if route.public else ""))
    for check in checks:
        print(f"{_MARKS[check.passed]}  {check.name}: {check.detail}")
        if check.passed is False and check.fix:
            print(f"      fix: {check.fix}")
    if routes:
        for api_name, verdicts in routes.items():
            print(f"\nAPI {api_name}:")
            for route_key, verdict in verdicts.items():
                print(f"  {route_key:<32} {verdict}")
