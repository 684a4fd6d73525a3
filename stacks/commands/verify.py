"""`authgate verify`: is this token (or each token of a JSONL batch) valid for these issuers, audiences and scopes?

Exit status: 0 every token valid, 1 any token rejected, 2 the command line or the policy cannot be used.
Output never contains a token or a signature: a rejected token is reported by its code, message and fix.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterator

from stacks.commands.token_options import (UsageError, add_trust_arguments, allowed_algorithms, build_verifier,
                                           check_pasted_token, key_source, read_token)

DEFAULT_SIGNATURE_ALGORITHMS = "RS256"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", nargs="?", metavar="TOKEN", help="the JWT ('-' reads it from stdin)")
    parser.add_argument("--batch", metavar="FILE.jsonl",
                        help='one JSON object per line with a "token" member and optionally an "id" (\'-\' for '
                             'stdin); writes one JSON result per non-blank line, in order: {"line": N, "id": ..., '
                             '"valid": ..., "code": ..., "claims": {...}}; blank lines are skipped')
    parser.add_argument("--scope", action="append", default=[], metavar="S",
                        help="a scope the token must carry (any-of when repeated)")
    parser.add_argument("--scope-all", action="append", default=[], metavar="S",
                        help="a scope the token must carry (all-of when repeated)")
    parser.add_argument("--role", action="append", default=[], metavar="R",
                        help="a role the token must carry (any-of when repeated)")
    parser.add_argument("--role-all", action="append", default=[], metavar="R",
                        help="a role the token must carry (all-of when repeated)")
    parser.add_argument("--group", action="append", default=[], metavar="G",
                        help="a group the token must carry (any-of when repeated)")
    parser.add_argument("--group-all", action="append", default=[], metavar="G",
                        help="a group the token must carry (all-of when repeated)")
    parser.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE",
                        help="claim NAME must hold VALUE (repeat with the same NAME for any-of those values; "
                             "different NAMEs must all hold)")
    parser.add_argument("--signature-only", action="store_true",
                        help="check the JWS structure, header rules and signature only, no claims (needs --jwks)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trust_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        check = _checker(args)
        if args.batch:
            if args.token:
                raise UsageError("give either TOKEN or --batch FILE, not both")
            return _run_batch(args.batch, check)
        result = check(read_token(args.token))
    except UsageError as exc:
        print(f"authgate verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(_human(result))
    return 0 if result["valid"] else 1


def _checker(args: argparse.Namespace):
    """A function token -> result dict, built once so a batch shares one Verifier and its key cache."""
    from lambdas.validation import TokenRejected, verify_jws

    claims = _claim_rules(args.claim)
    if args.signature_only:
        asked = [flag for flag, given in (("--scope", args.scope), ("--scope-all", args.scope_all),
                                          ("--role", args.role), ("--role-all", args.role_all),
                                          ("--group", args.group), ("--group-all", args.group_all),
                                          ("--claim", args.claim)) if given]
        if asked:
            raise UsageError(f"--signature-only reads no claims, so {'/'.join(asked)} cannot be checked")
        algorithms = allowed_algorithms(args.algorithms or DEFAULT_SIGNATURE_ALGORITHMS)
        keys = key_source(args)

        def check_signature(token: str) -> dict[str, Any]:
            try:
                check_pasted_token(token)
                header, payload = verify_jws(token, keys, algorithms=algorithms)
            except TokenRejected as exc:
                return _rejected(exc)
            return {"valid": True, "code": "ok", "header": header, "claims": _json_or_none(payload)}
        return check_signature

    verifier, issuers = build_verifier(args)

    def check_token(token: str) -> dict[str, Any]:
        try:
            check_pasted_token(token)
            principal = verifier.verify(token, tuple(args.scope), scopes_all=tuple(args.scope_all),
                                        roles=tuple(args.role), roles_all=tuple(args.role_all),
                                        groups=tuple(args.group), groups_all=tuple(args.group_all),
                                        claims=claims or None, issuers=issuers)
        except TokenRejected as exc:
            return _rejected(exc)
        return {"valid": True, "code": "ok", "claims": dict(principal.claims),
                "principal": {"subject": principal.subject, "issuer": principal.issuer,
                              "issuer_name": principal.issuer_name, "client_id": principal.client_id,
                              "scopes": list(principal.scopes), "roles": list(principal.roles),
                              "groups": list(principal.groups), "tenant": principal.tenant,
                              "token_use": principal.token_use}}
    return check_token


def _claim_rules(pairs: list[str]) -> dict[str, list[str]]:
    """--claim NAME=VALUE flags as claim name -> allowed values."""
    rules: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--claim {pair!r}: write it as NAME=VALUE, e.g. --claim tenant=acme")
        rules.setdefault(name.strip(), []).append(value)
    return rules


def _rejected(exc: Any) -> dict[str, Any]:
    return {"valid": False, "code": exc.code, "status": exc.status, "error": exc.as_dict(), "claims": {}}


def _json_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _batch_lines(path: str) -> Iterator[tuple[int, str]]:
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    try:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line
    finally:
        if handle is not sys.stdin:
            handle.close()


def _run_batch(path: str, check) -> int:
    try:
        lines = list(_batch_lines(path))
    except OSError as exc:
        raise UsageError(f"--batch {path}: cannot read it ({exc.strerror or exc})") from None
    all_valid = True
    for number, line in lines:
        item: Any = None
        try:
            item = json.loads(line)
            token = item["token"]
            if not isinstance(token, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            result: dict[str, Any] = {"valid": False, "code": "bad_input", "claims": {},
                                      "error": {"code": "bad_input", "message": f"{path}:{number}: expected a JSON "
                                                "object with a string \"token\" member"}}
        else:
            result = check(token.strip())
        # Which input each result answers: its line number, and the caller's own id when the line has one.
        result["line"] = number
        if isinstance(item, dict) and "id" in item:
            result["id"] = item["id"]
        all_valid = all_valid and result["valid"]
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0 if all_valid else 1


def _human(result: dict[str, Any]) -> str:
    if not result["valid"]:
        error = result["error"]
        lines = [f"REJECTED ({error['code']}, HTTP {result['status']}): {error['message']}"]
        for label in ("expected", "found"):
            if label in error:
                lines.append(f"  {label}: {error[label]}")
        if error.get("hint"):
            lines.append(f"  fix: {error['hint']}")
        return "\n".join(lines)
    if "principal" not in result:
        return f"VALID signature ({result['header'].get('alg')}, kid {result['header'].get('kid')!r})"
    p = result["principal"]
    lines = [f"VALID {p['token_use']} token for subject {p['subject']!r} from {p['issuer']}"]
    for label, value in (("client", p["client_id"]), ("scopes", " ".join(p["scopes"])),
                         ("roles", " ".join(p["roles"])), ("groups", " ".join(p["groups"])),
                         ("tenant", p["tenant"])):
        if value:
            lines.append(f"  {label}: {value}")
    return "\n".join(lines)
