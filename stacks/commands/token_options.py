"""Where `authgate verify` and `authgate explain` get their trust settings: command-line issuers or a policy file.

Both commands build their Verifier here, so the same flags mean the same thing in both and a policy file is read
exactly the way the authorizers read it (through the rendered route table, not a second interpretation of the YAML).
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from lambdas.validation.config import PROFILE_ALIASES, PROFILES, canonical_profile
from stacks.commands.policy_file import UsageError, load_policy_file

# The command line's names for the IssuerConfig settings the validation module's messages name, so an error says
# what the user typed (--leeway), not a Python field (leeway_seconds).
# (A jwks_uri is renamed only where it opens the message: elsewhere it is the discovery document's own member.)
_FLAG_FOR_SETTING = {"allow_insecure_http=True": "--allow-insecure-http", "leeway_seconds": "--leeway",
                     "audiences": "--audience", "token_use": "--token-use"}
_SETTING = re.compile(r"\b(?:" + "|".join(re.escape(name) for name in _FLAG_FOR_SETTING)
                      + r")|^jwks_uri\b|IssuerConfig\(([^)]*)\)(?:\.issuer)?")


def _profile(name: str) -> str:
    """--profile: a profile name or alias, read as the policy file reads `profile:` (one list of names)."""
    try:
        return canonical_profile(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("whom to trust (either --issuer/--audience/--jwks, or --policy [--jwks])")
    group.add_argument("--issuer", action="append", default=[], metavar="URL",
                       help="accepted issuer (exact iss); repeatable")
    group.add_argument("--audience", action="append", default=[], metavar="A",
                       help="accepted audience (Cognito access tokens: the app client id); repeatable")
    group.add_argument("--jwks", metavar="FILE_OR_URL",
                       help="JWKS file or https URL (default: OIDC discovery from the issuer); with --policy it "
                            "replaces the policy issuers' key sources, e.g. to explain a token offline")
    group.add_argument("--algorithms", metavar="ALGS", help="comma-separated allow-list (default RS256)")
    group.add_argument("--profile", default="generic", type=_profile,
                       help=f"IdP profile: {', '.join(PROFILES)} (aliases: {', '.join(PROFILE_ALIASES)})")
    group.add_argument("--token-use", choices=("access", "id", "any"),
                       help="which kind of token to accept (default: access; google profile: id)")
    group.add_argument("--leeway", type=int, metavar="SECONDS",
                       help="clock skew allowed for exp/nbf/iat, 0 to 300 (default 60)")
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


def check_pasted_token(token: str) -> None:
    """Raise TokenRejected (malformed) naming the paste mistake when the token is empty, carries a `Bearer ` prefix,
    quotes or whitespace: the decoder alone would only say that some segment is not base64url."""
    from lambdas.validation import TokenRejected

    bare = "pass the bare token: what follows 'Bearer ' in the Authorization header, on one line, without quotes"
    if not token:
        raise TokenRejected("malformed", "the token is empty", expected="a JWT (three base64url segments joined "
                            "by '.')", found="nothing", hint="pass the token as the argument, or '-' and the token on "
                            "stdin")
    scheme, _, rest = token.partition(" ")
    if scheme.lower() == "bearer":
        raise TokenRejected("malformed", "the token starts with 'Bearer ', the Authorization header's scheme",
                            hint=bare)
    if token[0] in "\"'`" or token[-1] in "\"'`":
        raise TokenRejected("malformed", "the token is wrapped in quotes (they were pasted with it)", hint=bare)
    for index, char in enumerate(token):
        if char.isspace():
            what = "a line break" if char in "\r\n" else "a space" if char == " " else f"whitespace {char!r}"
            raise TokenRejected("malformed", f"the token has {what} at character {index + 1} (a wrapped terminal "
                                "line or an email client may have split it)", hint=bare)


def policy_route_table(args: argparse.Namespace) -> dict[str, Any]:
    """The policy rendered as the route table the authorizers read."""
    from stacks.policy.render import render_route_table

    return render_route_table(load_policy_file(args.policy, args.var, command=f"authgate {args.command}"))


def allowed_algorithms(text: str) -> tuple[str, ...]:
    """--algorithms as a tuple, every name one the validation module can verify (the one check, whether or not
    --signature-only is given)."""
    from lambdas.validation.jwk import SUPPORTED_ALGORITHMS

    names = tuple(a.strip() for a in text.split(","))
    for name in names:
        if name in SUPPORTED_ALGORITHMS:
            continue
        near = [a for a in SUPPORTED_ALGORITHMS if a.lower() == name.lower()]
        why = (f"algorithm names are case-sensitive: did you mean {near[0]}?" if near else
               "none and HMAC (HS256, ...) are never allowed: a shared secret cannot be published as a public key"
               if name.lower() == "none" or name.upper().startswith("HS") else "it is not a JWS algorithm")
        raise UsageError(f"--algorithms {text!r}: {name or '(empty)'!r} cannot be allowed ({why}); choose from "
                         f"{', '.join(sorted(SUPPORTED_ALGORITHMS))}")
    return names


def in_cli_terms(message: str) -> str:
    """A validation-module message about IssuerConfig settings, with each setting named by its flag."""
    def flag(match: re.Match) -> str:
        if match.group(0).startswith("IssuerConfig("):
            return f"--issuer {match.group(1)}" if match.group(1) else "--issuer"
        return "--jwks" if match.group(0) == "jwks_uri" else _FLAG_FOR_SETTING[match.group(0)]
    return _SETTING.sub(flag, message)


def build_verifier(args: argparse.Namespace, route_table: dict[str, Any] | None = None):
    """A Verifier for the trust flags, plus the issuer names to accept (None: all of them)."""
    from lambdas.validation import IssuerConfig, Verifier

    if args.policy:
        if args.issuer or args.audience:
            raise UsageError("--policy already says whom to trust; drop --issuer/--audience, or drop --policy")
        table = route_table if route_table is not None else policy_route_table(args)
        names = list(table["issuers"])
        if args.issuer_name:
            if args.issuer_name not in table["issuers"]:
                raise UsageError(f"--issuer-name {args.issuer_name!r} is not an issuer of {args.policy} used by its "
                                 f"routes; choose one of: {', '.join(names) or '(none)'}")
            names = [args.issuer_name]
        try:
            configs = [IssuerConfig.from_route_table(name, _with_keys_from_flag(table["issuers"][name], args))
                       for name in names]
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
        options["algorithms"] = allowed_algorithms(args.algorithms)
    if args.token_use:
        options["token_use"] = None if args.token_use == "any" else args.token_use
    if args.leeway is not None:
        options["leeway_seconds"] = args.leeway
    try:
        return Verifier([IssuerConfig(issuer, name=issuer, **options) for issuer in args.issuer]), None
    except ValueError as exc:  # bad settings, or a --jwks file that cannot be read as a JWKS
        raise UsageError(in_cli_terms(str(exc))) from None


def _with_keys_from_flag(entry: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A policy issuer's route-table entry with its key source replaced by --jwks (when given)."""
    if not args.jwks:
        return entry
    entry = {k: v for k, v in entry.items() if k not in ("jwks", "jwks_uri", "jwks_file")}
    entry.update(key_options(args.jwks))
    if args.allow_insecure_http:
        entry["allow_insecure_http"] = True
    return entry


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
        raise UsageError(f"--jwks {args.jwks}: {in_cli_terms(str(exc))}") from None
