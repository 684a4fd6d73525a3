"""Where `authgate verify` and `authgate explain` get their trust settings: command-line issuers or a policy file.

Both commands build their Verifier here, so the same flags mean the same thing in both and a policy file is read
exactly the way the authorizers read it (through the rendered route table, not a second interpretation of the YAML).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


class UsageError(Exception):
    """The command line cannot work as given; the message says what to change. Exit status 2."""


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("whom to trust (either --issuer/--audience/--jwks, or --policy)")
    group.add_argument("--issuer", action="append", default=[], metavar="URL",
                       help="accepted issuer (exact iss); repeatable")
    group.add_argument("--audience", action="append", default=[], metavar="A",
                       help="accepted audience (Cognito access tokens: the app client id); repeatable")
    group.add_argument("--jwks", metavar="FILE_OR_URL",
                       help="JWKS file or https URL (default: OIDC discovery from the issuer)")
    group.add_argument("--algorithms", metavar="ALGS", help="comma-separated allow-list (default RS256)")
    group.add_argument("--profile", default="generic",
                       help="IdP profile: generic, cognito, entra, google, okta, auth0, keycloak, kubernetes")
    group.add_argument("--token-use", choices=("access", "id", "any"),
                       help="which kind of token to accept (default: access; google profile: id)")
    group.add_argument("--leeway", type=int, metavar="SECONDS", help="clock skew allowed for exp/nbf/iat (default 60)")
    group.add_argument("--allow-insecure-http", action="store_true",
                       help="allow an http:// JWKS or discovery URL on a loopback host (local development only)")
    group.add_argument("--policy", metavar="FILE", help="an auth policy YAML file: trust its issuers")
    group.add_argument("--issuer-name", metavar="NAME", help="with --policy: only this issuer of the policy")
    group.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                       help="with --policy: fill a ${NAME} placeholder (e.g. LOCAL_ISSUER_URL=...)")


def read_token(value: str | None) -> str:
    """The token argument; '-' reads it from stdin (keeps it out of shell history and the process list)."""
    if value is None:
        raise UsageError("give a TOKEN (or '-' to read it from stdin), or --batch FILE.jsonl")
    token = sys.stdin.read() if value == "-" else value
    return token.strip()


def policy_route_table(args: argparse.Namespace) -> dict[str, Any]:
    """The policy rendered as the route table the authorizers read."""
    from stacks.policy import PolicyError, load_policy
    from stacks.policy.render import render_route_table

    from stacks.commands.render import parse_variables

    try:
        variables = parse_variables(args.var)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        policy = load_policy(args.policy, variables=variables)
    except PolicyError as exc:
        raise UsageError(f"the policy is not valid:\n{exc}") from None
    return render_route_table(policy)


def build_verifier(args: argparse.Namespace, route_table: dict[str, Any] | None = None):
    """A Verifier for the trust flags, plus the issuer names to accept (None: all of them)."""
    from lambdas.validation import IssuerConfig, Verifier

    if args.policy:
        if args.issuer or args.audience or args.jwks:
            raise UsageError("--policy already says whom to trust; drop --issuer/--audience/--jwks, or drop --policy")
        table = route_table if route_table is not None else policy_route_table(args)
        names = list(table["issuers"])
        if args.issuer_name:
            if args.issuer_name not in table["issuers"]:
                raise UsageError(f"--issuer-name {args.issuer_name!r} is not an issuer of {args.policy} used by its "
                                 f"routes; choose one of: {', '.join(names) or '(none)'}")
            names = [args.issuer_name]
        try:
            configs = [IssuerConfig.from_route_table(name, table["issuers"][name]) for name in names]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return Verifier(configs), names
    if args.issuer_name:
        raise UsageError("--issuer-name selects an issuer of a policy; add --policy FILE")
    if not args.issuer:
        raise UsageError("say whom to trust: --issuer URL --audience A [--jwks FILE_OR_URL], or --policy FILE")
    if not args.audience:
        raise UsageError("give --audience (the API the token must be for): without one, a token minted for any other "
                         "API of the same issuer would pass")
    options: dict[str, Any] = {"audiences": tuple(args.audience), "profile": args.profile,
                               "allow_insecure_http": args.allow_insecure_http}
    options.update(key_options(args.jwks))
    if args.algorithms:
        options["algorithms"] = tuple(a.strip() for a in args.algorithms.split(",") if a.strip())
    if args.token_use:
        options["token_use"] = None if args.token_use == "any" else args.token_use
    if args.leeway is not None:
        options["leeway_seconds"] = args.leeway
    try:
        return Verifier([IssuerConfig(issuer, name=issuer, **options) for issuer in args.issuer]), None
    except ValueError as exc:  # bad settings, or a --jwks file that cannot be read as a JWKS
        raise UsageError(str(exc)) from None


def key_options(jwks: str | None) -> dict[str, Any]:
    """IssuerConfig key settings for --jwks: a URL is fetched (and cached), a file is read by the Verifier."""
    if not jwks:
        return {}
    if jwks.startswith(("https://", "http://")):
        return {"jwks_uri": jwks}
    return {"jwks_file": jwks}


def key_source(args: argparse.Namespace):
    """The key source for --signature-only, which reads no claims and so has no issuer to discover keys from."""
    from lambdas.validation import StaticKeySource

    if not args.jwks:
        raise UsageError("--signature-only needs --jwks FILE_OR_URL: with no claims read there is no issuer to "
                         "discover keys from")
    options = key_options(args.jwks)
    try:
        if "jwks_uri" in options:
            from lambdas.validation.jwks_cache import JwksCache
            return JwksCache(options["jwks_uri"], allow_insecure_http=args.allow_insecure_http)
        return StaticKeySource.from_file(options["jwks_file"])
    except ValueError as exc:
        raise UsageError(f"--jwks {args.jwks}: {exc}") from None
