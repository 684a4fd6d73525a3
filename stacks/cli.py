"""The `authgate` command line: a thin dispatcher; each subcommand lives in its own module under stacks/commands.

Subcommand modules expose `add_arguments(parser)` and `run(args) -> int` and import heavy libraries (CDK, Pulumi,
the policy model) inside `run`, so `authgate verify` starts as fast as the validation module itself.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Order is the order `authgate --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("stacks.commands.verify", "verify one token, or a JSONL batch, against issuers or a policy"),
    "explain": ("stacks.commands.explain", "show every check a token passes or fails under a policy, with fixes"),
    "render": ("stacks.commands.render", "render a policy as a route table, OpenAPI, APIM XML, NGINX or Kubernetes "
               "manifests"),
    "serve": ("stacks.commands.serve", "run the forward-auth decision service for in-cluster proxies (uvicorn)"),
    "synth": ("stacks.commands.synth", "synthesize the AWS CDK stacks and say which authorizer each route uses"),
    "demo": ("stacks.commands.demo", "run the local sandbox demo end to end (no cloud account needed)"),
    "local": ("stacks.commands.demo", "run the demo, then keep the sandbox running and print ready-to-paste "
              "commands"),
    "completion": ("stacks.commands.completion", "print a shell completion script (bash, zsh or fish)"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("authgate")
    except PackageNotFoundError:   # run from a checkout that was never installed
        return "(not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authgate", description="One auth policy, every gateway.",
                                     epilog="exit status: 0 success, 1 a check failed (a token rejected, a cdk-nag "
                                            "finding), 2 the command cannot run as given (a usage error or an "
                                            "invalid policy)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        add(command_parser)
        command_parser.set_defaults(_run=getattr(module, f"run_{name}", None) or module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
